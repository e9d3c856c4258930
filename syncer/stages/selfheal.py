"""Self-heal decisions on Docker events. Pure: the watcher feeds it events and list rows.

A decision is made on a state Docker has finished changing: each event names the state its
container must be seen in (stopped, gone, paused) before a re-plan can see the fault —
on Docker 20.10 the container list can still say `running` when `die` arrives, so a plan
made at once would find nothing to heal. Events caused by syncer's own actions are
recognised by container id (the ids the apply stops, removes or creates), never by name.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from syncer.core.labels import KIND
from syncer.core.record import Record

# What each event means, and the state the container list must show before planning.
# `kill`, `stop` and `oom` are not faults in themselves: a signal may be survived (`docker
# kill -s HUP` reloads many servers), and a main process that exits, whatever ended it, is
# reported by the `die` that follows them (Docker emits it from the exit itself).
Expect = Literal["stopped", "gone", "paused"]
_EXPECT: dict[str, Expect] = {"die": "stopped", "destroy": "gone", "pause": "paused"}
_FOLLOWED_BY_DIE = frozenset({"kill", "stop", "oom"})
UNHEALTHY = "health_status: unhealthy"
POLICIES = ("report", "restart")


@dataclass(frozen=True, repr=False, eq=False)
class Verdict(Record):
    """What to do about one event."""

    what: Literal["ignore", "note", "heal", "unhealthy"]  # note: worth a log line, nothing to do
    action: str = ""
    container_id: str = ""
    name: str = ""
    definition: str | None = None
    expect: Expect | None = None  # heal: the state to wait for before the re-plan
    why: str = ""


def read_event(event: Mapping[str, Any], own: Container[str]) -> Verdict:
    """The verdict on one event of the project's event stream (`own`: ids syncer acts on)."""
    action = str(event.get("Action") or event.get("status") or "")
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    ident = str(actor.get("ID") or event.get("id") or "")
    name, definition = str(attrs.get("name", "?")), attrs.get("syncer.definition")

    def verdict(what: Literal["ignore", "note", "heal", "unhealthy"], why: str = "",
                expect: Expect | None = None) -> Verdict:
        return Verdict(what, action, ident, name, definition, expect, why)

    # a Swarm service removed behind syncer's back is the one service event that is a fault
    # (Swarm itself replaces failed tasks); its id is a service's, so no container is listed
    service = event.get("Type") == "service"
    known = action in _EXPECT or action in _FOLLOWED_BY_DIE or action.startswith(UNHEALTHY)
    if (action != "remove") if service else not known:
        return verdict("ignore", "not a fault")
    if ident and ident in own:
        return verdict("ignore", "syncer's own action")
    if service:
        return verdict("heal", expect="gone")
    if action in _FOLLOWED_BY_DIE:
        return verdict("note", "the `die` that follows, if the container ends, is the fault")
    if attrs.get(KIND) == "job" and action == "die":
        return verdict("ignore", "a job ending is what a job does: not drift, never self-healed")
    if action.startswith(UNHEALTHY):
        return verdict("unhealthy")
    return verdict("heal", expect=_EXPECT[action])


def settled(expect: Expect, row: Mapping[str, Any] | None) -> bool:
    """True when the list row of the container (None: absent) shows the state `expect`."""
    if row is None:
        return expect != "paused"  # gone also means no longer running
    state = str(row.get("State", ""))
    if expect == "gone":
        return False
    if expect == "paused":
        return state == "paused"
    # exited, dead, or restarting by its own restart policy; not `removing`: a `docker rm -f`
    # is under way, and the plan should find the container gone (a create), not half-removed
    return state not in ("running", "removing")


def unhealthy_policy(self_heal: Mapping[str, Any] | None) -> str:
    """A definition's `self_heal.unhealthy` ("report", the default, or "restart")."""
    value = (self_heal or {}).get("unhealthy", "report")
    return str(value) if value in POLICIES else "report"
