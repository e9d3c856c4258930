"""Watch's back-off for a spec that failed: held at the revision that last deployed, or deferred.

A deployment that failed its health gate and was rolled back leaves the old container (or
the service's previous spec) running, and the repository still asks for the failing spec.
Trying it again at every cycle (each resync, each commit that does not touch it) would stop
what runs and roll it back again and again. So watch holds such a definition at the revision
that last deployed successfully — as a rollback pins one — until a wait has passed: `base`
after the first failure, doubling with each further one, at most `CAP` times `base`; then
it tries the spec once more.

While held, the definition is planned against that revision: what runs is in sync, a
container killed meanwhile is started again, a replica removed is made again, a Swarm
service changed by hand is rolled back to it — self-heal does not wait.

A job that failed, and a definition whose deployments all failed (its first one: nothing to
roll back to), have no earlier revision to hold at: each cycle would run the job again, or
create the container again and wait out its health timeout. Watch defers them for the same
wait: their actions are planned, marked, and left undone (noop) until it ends.

Never held or deferred: a definition whose spec changed since (a new spec is tried at once),
and any apply someone asked for (`syncer apply`, POST /sync).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from syncer.core.clock import iso
from syncer.core.model import Action, Plan
from syncer.core.record import Record, record

CAP = 12  # the longest wait, in units of the base wait (5 minutes → 1 hour)
MAKES = ("create", "recreate", "run", "update", "restart")  # what a dependent of a deferred one waits to do


@record
class Hold(Record):
    """One held definition: the revision it is held at (None: deferred, nothing to hold it at),
    until when, after how many failures; `job`: a job's run failed."""

    revision: int | None
    until: float
    failures: int
    job: bool = False
    after: str = ""  # deferred because this dependency is (its own failures: none)


def wait_after(failures: int, base: float) -> float:
    """Seconds between the `failures`-th failure of one spec and its next try."""
    return min(base * (1 << max(0, failures - 1)), base * CAP)


def holding(failures: Mapping[str, tuple[int, bool, float]], wanted: Mapping[str, int],
            last_good: Mapping[str, int], *, now: float, base: float, jobs: Collection[str] = (),
            deps: Mapping[str, Collection[str]] | None = None) -> dict[str, Hold]:
    """The definitions to hold or defer. `failures`: definition → (how many deployments of
    the revision it wants, `wanted`, failed since it last deployed successfully, whether one
    of them rolled back, when the last one ended); `last_good`: the revision each last
    deployed successfully; `jobs`: the definitions that are jobs. A rolled-back spec is held
    at its last good revision; a job, or a definition that never deployed, is deferred, and so
    is, until the same moment, whatever depends on it (`deps`: definition → its depends_on),
    which it would otherwise be made without."""
    out = {}
    for name, (count, rolled_back, last) in failures.items():
        until = last + wait_after(count, base)
        if base <= 0 or now >= until:
            continue
        back = last_good.get(name)
        if name in jobs or back is None:
            out[name] = Hold(None, until, count, job=name in jobs)
        elif rolled_back and back < wanted[name]:
            out[name] = Hold(back, until, count)
    return _dependents(out, deps or {})


def _dependents(held: dict[str, Hold], deps: Mapping[str, Collection[str]]) -> dict[str, Hold]:
    """`held` with each definition that depends (also through others) on a deferred one
    deferred until it is."""
    grew = True
    while grew:
        grew = False
        for name, needs in sorted(deps.items()):
            first = next((d for d in sorted(needs) if d in held and held[d].revision is None), None)
            if name not in held and first is not None:
                held[name] = Hold(None, held[first].until, 0, after=held[first].after or first)
                grew = True
    return held


def mark(plan: Plan, held: Mapping[str, Hold]) -> Plan:
    """The plan of the held definitions (made against their revision `Hold.revision`) saying
    so: each of their actions at that revision, its cause naming the hold. A deferred one's
    actions are noops, their causes naming the wait."""
    if not held:
        return plan

    def hold(a: Action) -> Action:
        h = held[a.definition]
        times = "once" if h.failures == 1 else f"{h.failures} times"
        when = f"watch tries it again at {iso(h.until)} (at once when it changes; `syncer apply` tries it now)"
        if h.after:  # (what runs of it is left as it is: started again, healed)
            return a if a.action not in MAKES else replace(
                a, action="noop", cause=f"{a.cause}; deferred: it depends on {h.after}, whose deployment failed; {when}")
        if h.revision is None:
            what = "the job failed" if h.job else "its first deployment failed"
            return replace(a, action="noop", cause=f"{a.cause}; deferred: {what} {times}; {when}")
        why = f"held at revision {h.revision}: the repository's spec failed and was rolled back {times}; {when}"
        return replace(a, revision=h.revision, cause=f"{a.cause}; {why}")

    return replace(plan, actions=tuple(hold(a) if a.definition in held else a for a in plan.actions))
