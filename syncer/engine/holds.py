"""Watch's holds on a spec that failed (stages/backoff.py decides), read from the store while
an apply plans: engine/deploy.py passes one to `planned`, and asks `held_after` once it ran."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from syncer.adapters.store import Store
from syncer.core.clock import epoch, now
from syncer.core.model import ContainerSpec, Desired
from syncer.engine.revisions import at_revisions
from syncer.stages.backoff import Hold, holding
from syncer.stages.plan import Known, definition_hash

if TYPE_CHECKING:
    from syncer.engine.deploy import ApplyReport


class Holds:
    """Watch's holds for one apply (stages/backoff.py), read from the store as it plans: the
    definitions whose wanted revision failed and was rolled back lately are planned at the
    revision they last deployed successfully; a job that failed lately, or a definition that
    never deployed, is deferred (planned as it is, marked, left undone). A base wait of 0:
    nothing is held."""

    def __init__(self, store: Store, base: float) -> None:
        self.store, self.base = store, base
        self.held: dict[str, Hold] = {}

    def __call__(self, desired: Desired, known: Known) -> Desired:
        if self.base <= 0:
            return desired
        failed = self.store.failed_definitions()
        if not failed:
            return desired
        mine: dict[str, list[ContainerSpec]] = {}
        for c in desired.containers:
            if c.definition in failed:
                mine.setdefault(c.definition, []).append(c)
        wanted = {name: known[name][0] for name, containers in mine.items()  # (a spec changed since is a new
                  if name in known and known[name][1] == definition_hash(containers)}  # revision: tried at once)
        failures = {d: (n, back, epoch(last)) for d, (n, back, last) in self.store.failures_of(wanted).items()}
        last_good = {d: r for d, r in failed.items() if r}
        jobs = {name for name, containers in mine.items() if any(c.is_job for c in containers)}
        deps = {c.definition: c.depends_on for c in desired.containers if c.depends_on}
        self.held = holding(failures, wanted, last_good, now=now(), base=self.base, jobs=jobs, deps=deps)
        at = {d: h.revision for d, h in self.held.items() if h.revision is not None}  # (a deferred one: as it is)
        return at_revisions(self.store, desired, at)


def held_after(store: Store, base: float, report: ApplyReport) -> ApplyReport:
    """The report with the holds its failures began (or, for a held spec tried again, began
    anew with a longer wait): watch queues their next try now, not when some later cycle
    happens to plan them."""
    if base <= 0 or report.desired is None or all(r.ok for r in report.results):
        return report
    hold = Holds(store, base)
    hold(report.desired, store.latest_revisions())  # (a spec held in this apply was not tried: its hold stands)
    return replace(report, held={**report.held, **hold.held})
