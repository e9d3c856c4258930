"""Watch's holds on a spec that failed and was rolled back (stages/backoff.py decides), read
from the store while an apply plans: engine/deploy.py passes one to `planned`."""

from __future__ import annotations

from syncer.adapters.store import Store
from syncer.core.clock import epoch, now
from syncer.core.model import ContainerSpec, Desired
from syncer.engine.project import at_revisions
from syncer.stages.backoff import Hold, holding
from syncer.stages.plan import Known, definition_hash


class Holds:
    """Watch's holds for one apply (stages/backoff.py), read from the store as it plans: the
    definitions whose wanted revision failed and was rolled back lately are planned at the
    revision they last deployed successfully. A base wait of 0: nothing is held."""

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
        failures = {d: (n, epoch(last)) for d, (n, last) in self.store.failures_of(wanted).items()}
        last_good = {d: r for d, r in failed.items() if r}
        self.held = holding(failures, wanted, last_good, now=now(), base=self.base)
        return at_revisions(self.store, desired, {d: h.revision for d, h in self.held.items()})

    def until(self) -> dict[str, float]:
        """When each held definition is tried again (seconds since the epoch)."""
        return {d: h.until for d, h in self.held.items()}
