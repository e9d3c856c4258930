"""`depends_on: {db: {restart: true}}`: a definition is restarted after an apply updates a
dependency of its, as Compose restarts a service after it updates the dependency (a process
that connects only at start-up then finds the new one). Pure.

An update is a `create`, `recreate`, `update` (a Swarm service rolled) or `run` (a job run
again: migrations, say) of the dependency; what is restarted is each running container (or
Swarm service) of the dependent that the plan leaves alone. A dependent that the plan changes
anyway is started afresh by that change; one that is stopped, held or exited stays so.
Waves by `depends_on` put the restart after the dependency is up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from syncer.core.model import Action, Desired, Observed

UPDATES = ("create", "recreate", "update", "run")
RUNNING = ("running", "restarting")


def after_dependencies(actions: Sequence[Action], desired: Desired, observed: Observed) -> list[Action]:
    """`actions`, each `noop` of a running container whose definition restarts with a
    dependency this plan updates made a `restart`, its cause naming that dependency."""
    restarts = {c.definition: c.restarts_with for c in desired.containers if c.restarts_with}
    if not restarts:
        return list(actions)
    updated: dict[str, str] = {}
    for a in actions:
        if a.action in UPDATES and a.definition:
            updated.setdefault(a.definition, a.action)
    running = {c.id for s in observed.servers.values() for c in s.managed
               if (c.replicas != 0 if s.kind == "swarm" else c.state in RUNNING)}
    out = []
    for a in actions:
        deps = [d for d in restarts.get(a.definition, ()) if d in updated]
        if a.action == "noop" and deps and a.container_id in running:
            said = ", ".join(f"{d} ({updated[d]})" for d in deps)
            a = replace(a, action="restart", cause=f"restarted after its dependency {said}: depends_on restart: true")
        out.append(a)
    return out
