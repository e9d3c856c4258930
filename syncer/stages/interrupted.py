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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from syncer.core.model import Action, Desired, Observed, Plan

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
