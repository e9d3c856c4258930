"""What an interrupted apply left unverified: the health gate is passed again.

An apply killed (kill -9, power loss, a store that failed under it) while it waited for a
container it had just created, recreated or started to turn healthy left that container
running with the spec git asks for: the plan alone calls it in sync, and nobody ever judged
its health. Docker's verdict came later, with nobody waiting for it (a probe that never
passes leaves an unhealthy container counted as deployed, its dependents made without it).

So a definition whose latest deployment, at the revision it is planned at, did not end has
each of its running containers planned as a `start`: Docker answers 304 for one that runs,
and the apply waits for it (running, and healthy where it has a healthcheck) as for any
start — its dependents after it. The gate's verdict is recorded as a deployment; it is
then in sync or failed as for any deployment (a container that fails it is not recreated:
its spec is what git says).

Not gated again: a Swarm service (Swarm's own update monitor judged it), a job (its run is
judged by its exit), a container that is not running (the plan starts it already, or leaves
it as an operator or its restart policy did).

A recreate killed in the same wait left more: the new container under its temporary name
(`<name>_syncer-new`, engine/containers.py), the old one stopped. When that leftover runs the
spec and revision the plan wants, it is adopted (`adopt`): the recreate (or, the old one gone
already, the create) says so in its cause and carries the reason `name: "<name>_syncer-new"
-> "<name>"`; the apply gates the leftover's health (it may not be healthy yet), then
removes the old container and renames it, as the interrupted recreate would have. No second
container is made, and no health wait starts from nothing. A leftover of another spec or
revision, or one not running, unhealthy or off its networks, is removed first as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, Desired, LiveContainer, Observed, Plan, Reason
from syncer.stages.outside import lost_networks

CAUSE = "its deployment was interrupted before its health was confirmed: waiting for it again"


def gate_again(plan: Plan, desired: Desired, observed: Observed, interrupted: Mapping[str, int]) -> Plan:
    """`plan` with the noops of the running containers of each definition in `interrupted`
    (definition → the revision its latest deployment, which did not end, was at) planned at
    that revision turned into `start`s; the same plan object when there are none."""
    if not interrupted:
        return plan
    jobs = {c.definition for c in desired.containers if c.is_job}
    running = {(s.server, c.id) for s in observed.servers.values() if s.kind != "swarm"
               for c in s.managed if c.state == "running"}

    def gated(a: Action) -> bool:
        return (a.action == "noop" and interrupted.get(a.definition) == a.revision and a.definition not in jobs
                and (a.server, a.container_id) in running)

    if not any(gated(a) for a in plan.actions):
        return plan
    return replace(plan, actions=tuple(replace(a, action="start", cause=CAUSE) if gated(a) else a
                                       for a in plan.actions))


ADOPTING = ("create", "recreate")  # the actions an interrupted recreate's leftover can finish


def adopt(actions: list[Action], desired: Iterable[ContainerSpec], managed: Iterable[LiveContainer]
          ) -> tuple[list[Action], set[str]]:
    """`actions` (one server's) with each create or recreate whose `<name>_syncer-new` leftover
    runs the wanted spec at the planned revision marked to adopt it (see above), and the ids of
    the leftovers adopted (not to be removed)."""
    specs = {c.name: c for c in desired}
    aside = {c.name: c for c in managed if c.name.endswith(L.TEMP_SUFFIX)}
    out, adopted = [], set()
    for a in actions:
        left, c = aside.get(L.temp_name(a.container)), specs.get(a.container)
        if left is None or c is None or a.action not in ADOPTING or not _fits(left, a, c):
            out.append(a)
            continue
        adopted.add(left.id)
        out.append(replace(a, cause=f"{a.cause}; finishing an interrupted recreate: {left.name} already runs the"
                                    " wanted spec", reasons=(Reason("name", left.name, a.container), *a.reasons)))
    return out, adopted


def _fits(left: LiveContainer, a: Action, c: ContainerSpec) -> bool:
    """The leftover is what this action would make: same definition, replica, spec and
    revision; running (so its networks were joined and its files written before its start),
    on its networks and not unhealthy. Not for a replica renamed by hand (its own recreate)."""
    return (not c.is_job and (left.definition, left.replica) == (a.definition, a.replica)
            and left.labels.get(L.SPEC_HASH) == a.spec_hash and left.labels.get(L.REVISION) == str(a.revision)
            and left.state == "running" and left.health != "unhealthy" and not lost_networks(c.spec, left)
            and not any(r.field == "name" for r in a.reasons))


def adopts(a: Action) -> bool:
    """True when the action finishes an interrupted recreate with its leftover (`adopt`)."""
    return a.action in ADOPTING and any(r.field == "name" and r.before == L.temp_name(a.container)
                                        for r in a.reasons)
