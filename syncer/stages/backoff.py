"""Watch's back-off for a spec that failed and was rolled back.

A deployment that failed its health gate and was rolled back leaves the old container (or
the service's previous spec) running, and the repository still asks for the failing spec.
Trying it again at every cycle (each resync, each commit that does not touch it) would stop
what runs and roll it back again and again. So watch holds such a definition: while every
one of its changes would replace something that runs by the spec that was rolled back, its
actions become `noop` ("held") until a wait has passed — `base` after the first failure,
doubling with each further one, at most `CAP` times `base` — and then tries once more.

A container of a held definition that stopped meanwhile (killed behind syncer's back) is
started again as it ran: self-heal does not wait, and trying the failing spec on it would
leave it stopped (a recreate restores the old container as it was). Never held: a definition
whose spec changed since (a new spec is tried at once), one with a container gone, a Swarm
service changed by hand, and any apply someone asked for (`syncer apply`, POST /sync).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from syncer.core import labels as L
from syncer.core.clock import iso
from syncer.core.model import Action, LiveContainer, Observed, Plan
from syncer.stages.plan import RUNNING_STATES, STARTABLE_STATES

CAP = 12  # the longest wait, in units of the base wait (5 minutes → 1 hour)


def wait_after(failures: int, base: float) -> float:
    """Seconds between the `failures`-th rolled-back failure of one spec and its next try."""
    return min(base * (1 << max(0, failures - 1)), base * CAP)


def hold_failed(plan: Plan, observed: Observed, failures: Mapping[str, tuple[int, float]], *,
                now: float, base: float) -> tuple[Plan, dict[str, float]]:
    """`plan` with the actions of each held definition made `noop`, and when each held one is
    tried again (definition → seconds since the epoch). `failures`: definition → (how many
    deployments of the spec the plan asks for failed and were rolled back since its last
    success, when the last one ended)."""
    if base <= 0 or not failures:
        return plan, {}
    live = {(server, c.id): c for server, s in observed.servers.items() for c in s.managed}
    by_def: dict[str, list[Action]] = {}
    for a in plan.actions:
        if a.action != "noop":
            by_def.setdefault(a.definition, []).append(a)
    held: dict[str, float] = {}
    instead: dict[int, Action] = {}  # id() of an action of the plan → what is done instead
    for name, actions in by_def.items():
        if name not in failures:
            continue
        count, last = failures[name]
        until = last + wait_after(count, base)
        if now >= until:
            continue
        kept = [(a, _held(a, live.get((a.server, a.container_id)), _cause(count, until))) for a in actions]
        if all(b is not None for _, b in kept):
            held[name] = until
            instead.update((id(a), b) for a, b in kept if b is not None)
    if not held:
        return plan, {}
    return replace(plan, actions=tuple(instead.get(id(a), a) for a in plan.actions)), held


def _held(a: Action, live: LiveContainer | None, cause: str) -> Action | None:
    """What a held definition does instead of `a`, which would replace `live` (a container, a
    service) that runs another spec than the one `a` asks for, as a rolled-back deployment
    leaves it: nothing, or — for a container that stopped meanwhile — start it again as it
    ran (self-heal does not wait). None: `a` is not held (a create, a removal, a live object
    already at the spec)."""
    if live is None or live.definition != a.definition or live.labels.get(L.SPEC_HASH) == a.spec_hash:
        return None
    if a.action == "update" or (a.action == "recreate" and live.state in RUNNING_STATES):  # (Swarm keeps tasks running)
        return replace(a, action="noop", cause=cause)
    if a.action == "recreate" and live.state in STARTABLE_STATES:
        revision = live.labels.get(L.REVISION, "")
        return replace(a, action="start", cause=f"{cause}; started again as it ran",
                       revision=int(revision) if revision.isdigit() else a.revision,
                       spec_hash=live.labels.get(L.SPEC_HASH, ""))
    return None


def _cause(count: int, until: float) -> str:
    times = "once" if count == 1 else f"{count} times"
    return (f"held: this spec failed and was rolled back {times}; watch tries it again at {iso(until)}"
            " (at once when it changes; `syncer apply` tries it now)")
