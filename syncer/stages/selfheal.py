"""Self-heal decisions on Docker events. Pure: the watcher feeds it events and list rows.

A decision is made on a state Docker has finished changing: each event names the state its
container must be seen in (stopped, gone, paused) before a re-plan can see the fault —
on Docker 20.10 the container list can still say `running` when `die` arrives, so a plan
made at once would find nothing to heal. Events caused by syncer's own actions are
recognised by container id (the ids the apply stops, removes or creates), never by name.

A container that ends on its own (its `die` follows no `kill` from anyone: `docker stop`
and `docker kill` send one) is treated as its restart policy says: one whose spec says
`restart: "no"` or `on-failure` and that exited 0 has finished, and is left exited (a
one-shot); any other is healed, at once the first time and then backing off while it keeps
crashing (`crash_delay`), as Docker's own restart policies do.

Some faults leave nothing to wait for: a container renamed by hand (its `rename` event; the
one that ends syncer's own recreate renames the new container from its temporary name), and
a container taken off one of the project's networks (`docker network disconnect`, a network
event: it names the network and the container's id, not its labels — the watcher asks the
engine whose container it is, and whether it is still attached: a container that ends is
released from its networks too, keeping them in its config), and one of the project's
networks removed (`docker network rm`, possible once no running container is on it: its
`destroy` event carries the network's name and driver, not its labels, so the name tells
whose it is, `project_network`; the plan of the whole project says whether it is needed).
Docker sends some of these twice (each `disconnect`, a few milliseconds apart): the watcher
gathers a burst of them into one request (daemon/bursts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any, Literal

from syncer.core.labels import KIND, TEMP_SUFFIX, spec_of
from syncer.core.model import LiveContainer
from syncer.core.record import Record, record

# What each event means, and the state the container list must show before planning.
# `kill`, `stop` and `oom` are not faults in themselves: a signal may be survived (`docker
# kill -s HUP` reloads many servers), and a main process that exits, whatever ended it, is
# reported by the `die` that follows them (Docker emits it from the exit itself).
Expect = Literal["stopped", "gone", "paused"]
_EXPECT: dict[str, Expect] = {"die": "stopped", "destroy": "gone", "pause": "paused"}
_FOLLOWED_BY_DIE = frozenset({"kill", "stop", "oom"})
UNHEALTHY = "health_status: unhealthy"
POLICIES = ("report", "restart")
CRASH_RESET_S = 60.0  # a container that stayed up this long after its heal crashes afresh
CRASH_CAP_S = 300.0  # the longest wait between two heals of a crash loop
SWARM_TASK = "com.docker.swarm.task.id"  # a label of every Swarm task's container


@record
class Verdict(Record):
    """What to do about one event."""

    # note: worth a log line, nothing to do; finished: it ended on its own as its restart policy
    # allows; drift: a Swarm service's spec changed by someone else, or a container renamed
    # (re-planned at once); detached: a container (`container_id`) taken off the network `name`;
    # removed: the network `name` (its id `container_id`) removed, by anyone
    what: Literal["ignore", "note", "heal", "unhealthy", "finished", "drift", "detached", "removed"]
    action: str = ""
    container_id: str = ""
    name: str = ""
    definition: str | None = None
    expect: Expect | None = None  # heal: the state to wait for before the re-plan
    why: str = ""
    crashed: bool = False  # heal: it ended on its own (no one's kill or stop): a crash loop backs off
    exit_code: int | None = None  # a die's


def read_event(event: Mapping[str, Any], own: Container[str], signalled: Container[str] = (),
               writes: Callable[[str, int | None], bool] = lambda name, at: False) -> Verdict:
    """The verdict on one event of the project's event stream (`own`: ids syncer acts on;
    `signalled`: ids someone sent a signal lately (`docker kill`, `docker stop`), whose `die` is their doing;
    `writes(name, at)`: whether a Swarm service's event sent at `at` (ns) comes of syncer's own write to it)."""
    action = str(event.get("Action") or event.get("status") or "")
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    ident = str(actor.get("ID") or event.get("id") or "")
    name, definition = str(attrs.get("name", "?")), attrs.get("syncer.definition") or None

    if event.get("Type") == "network":
        return _network_event(action, ident, attrs, own)

    def verdict(what: Literal["ignore", "note", "heal", "unhealthy", "finished", "drift"], why: str = "",
                expect: Expect | None = None, crashed: bool = False) -> Verdict:
        return Verdict(what, action, ident, name, definition, expect, why, crashed, _exit_code(attrs))

    # Swarm's faults are a service removed, or its spec changed (`docker service update`,
    # `scale`, `rollback`), behind syncer's back; Swarm itself replaces failed tasks, and the
    # update events it sends as a roll moves on (`updatestate.*`: updating, completed, its
    # rollback of a failed update) are its own — a rollback that no update led to is someone's
    service = event.get("Type") == "service"
    known = action in _EXPECT or action in _FOLLOWED_BY_DIE or action.startswith(UNHEALTHY) or action == "rename"
    if action == "rename" and str(attrs.get("oldName", "")).endswith(TEMP_SUFFIX):
        return verdict("ignore", "syncer's own recreate: the new container takes its name")
    if service and action == "update" and "updatestate.new" in attrs and not _asked_rollback(attrs):
        return verdict("ignore", "Swarm's own roll")
    if (action not in ("remove", "update")) if service else not known:
        return verdict("ignore", "not a fault")
    # (syncer writes whole specs: a spec change's event may be its write's, an asked rollback never)
    written = service and action == "update" and "updatestate.new" not in attrs and writes(name, _time_ns(event))
    if (ident and ident in own) or written:
        return verdict("ignore", "syncer's own action")
    if attrs.get(SWARM_TASK) and not action.startswith(UNHEALTHY):
        return verdict("note", "a Swarm task's container: Swarm replaces its tasks itself")
    if service:  # its id is a service's: no container to wait for
        return verdict("drift", "changed outside syncer") if action == "update" else verdict("heal", expect="gone")
    if action in _FOLLOWED_BY_DIE:
        return verdict("note", "the `die` that follows, if the container ends, is the fault")
    if action == "rename":  # nothing to wait for: the list has its new name
        return verdict("drift", f"renamed outside syncer (it was {str(attrs.get('oldName', '?')).lstrip('/')})")
    if attrs.get(KIND) == "job" and action == "die":
        return verdict("ignore", "a job ending is what a job does: not drift, never self-healed")
    if action.startswith(UNHEALTHY):
        return verdict("unhealthy")
    if action == "die" and ident not in signalled:  # the main process ended on its own
        restart = _restart_policy(attrs)
        if _exit_code(attrs) == 0 and runs_to_completion(restart):
            return verdict("finished", f"exited 0 on its own, and its restart policy is {restart}: left exited")
        return verdict("heal", expect="stopped", crashed=True)
    return verdict("heal", expect=_EXPECT[action])


def _network_event(action: str, ident: str, attrs: Mapping[str, Any], own: Container[str]) -> Verdict:
    """A network event: a container taken off a network (not by syncer) may be a fault, and so
    may a network removed (no container runs on it then: nothing else tells); a network made or
    joined is not."""
    container, network = str(attrs.get("container", "")), str(attrs.get("name", "?"))
    if action == "destroy" and network != "?":  # (syncer's own, a prune's, costs a plan that finds nothing)
        return Verdict("removed", action, ident, network, why=f"network {network} removed")
    if action != "disconnect" or not container:
        return Verdict("ignore", action, container, network, why="not a fault")
    if container in own:
        return Verdict("ignore", action, container, network, why="syncer's own action")
    return Verdict("detached", action, container, network, why=f"disconnected from network {network}")


def project_network(network: str, project: str) -> bool:
    """Whether `network` is named as syncer names the networks it makes for `project`: the
    project network, or `<project>_<name>` (core/labels.network_name). An external network is
    never made again, and its removal is not followed. By the name's form, not the networks
    syncer.yaml declares now: one declared after watch began is followed too; the price is that
    a project named `<project>_x` has its networks' removals cost this project a plan that finds
    nothing to do (a network event carries no labels to tell them apart)."""
    return network == project or network.startswith(f"{project}_")


def _asked_rollback(attrs: Mapping[str, Any]) -> bool:
    """A service's rollback someone asked for (`docker service rollback`, `update --rollback`):
    Swarm's own begins from a roll under way (`updating`), a requested one from anything else."""
    return attrs.get("updatestate.new") == "rollback_started" and attrs.get("updatestate.old") != "updating"


def _time_ns(event: Mapping[str, Any]) -> int | None:
    try:
        return int(event["timeNano"])
    except (KeyError, TypeError, ValueError):
        return None


def runs_to_completion(restart: Any) -> bool:
    """A stated restart policy under which an exit 0 is the end (Docker does not restart it):
    `no` and `on-failure[:N]`. None stated: the container is meant to keep running."""
    return str(restart) == "no" or str(restart).startswith("on-failure")


def _exit_code(attrs: Mapping[str, Any]) -> int | None:
    try:
        return int(attrs["exitCode"])
    except (KeyError, TypeError, ValueError):
        return None


def _restart_policy(attrs: Mapping[str, Any]) -> str:
    """The restart policy the container's spec states ("" when it states none: then a main
    process that ends is a fault, whatever its exit code)."""
    return str(spec_of(attrs).get("restart", ""))


def crash_delay(previous: tuple[int, float] | None, now: float) -> tuple[float, tuple[int, float]]:
    """How long to wait before healing a container that ended on its own again, and what to
    remember of it (crashes in a row, when it was healed). The first crash is healed at once;
    each next one within CRASH_RESET_S of the last heal waits twice as long as the one before
    (2 s, 4 s, ... up to CRASH_CAP_S): a crash loop neither hammers the engine nor floods the
    history and the webhooks with a deployment a second, and is still never left down."""
    count = previous[0] + 1 if previous is not None and now - previous[1] < CRASH_RESET_S else 1
    delay = 0.0 if count == 1 else min(2.0 ** (count - 1), CRASH_CAP_S)
    return delay, (count, now + delay)


def finished(c: LiveContainer, marks: Mapping[str, str]) -> bool:
    """True when `c` is the container watch saw end on its own as its restart policy allows
    (`marks`: name → that container's id), and is still exited 0: plans leave it so."""
    return marks.get(c.name) == c.id and c.state == "exited" and c.exit_code == 0


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
