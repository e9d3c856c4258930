"""`depends_on: {db: {restart: true}}`: a definition is restarted once its dependency is new,
as Compose restarts a service after it updates the dependency (a process that connects only at
start-up then finds the new one). Pure.

A running container of the dependent that the plan leaves alone is restarted when the plan
creates, recreates, updates (a Swarm service rolled) or runs (a job: migrations, say) the
dependency, and, on a container server, when a container of the dependency was made after the
dependent last started (a restart an earlier apply skipped or did not finish, a dependency
rolled back or made anew by self-heal). A dependency that only started again (Docker's restart
policy, a self-heal's start, `instances restart`) restarts nothing, as under Compose. A
dependent the plan changes anyway is started afresh by that change; one that is stopped, held
or exited stays so. Waves by `depends_on` put the restart after the dependency is up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from syncer.core.model import Action, ContainerSpec, Desired, LiveContainer, Observed
from syncer.stages.networks import instant, sharers

UPDATES = ("create", "recreate", "update", "run")
RUNNING = ("running", "restarting")


class Restarting:
    """Which definitions restart with which (from the desired containers): what observe
    inspects for the times the pending rule compares."""

    def __init__(self, desired: Iterable[ContainerSpec]) -> None:
        self.dependents = {c.definition: c.restarts_with for c in desired if c.restarts_with}
        self.dependencies = {d for deps in self.dependents.values() for d in deps}

    def __bool__(self) -> bool:
        return bool(self.dependents)

    def involves(self, c: LiveContainer) -> bool:
        """Whether the plan needs `c`'s start and creation times."""
        return c.definition in self.dependents or c.definition in self.dependencies


def judged_with(desired: Iterable[ContainerSpec], definition: str) -> set[str]:
    """The containers (of other definitions) a plan of `definition` alone judges too: those
    sharing its network, and those that restart with it."""
    desired = list(desired)
    return sharers(desired, definition) | {c.name for c in desired if definition in c.restarts_with}


def after_dependencies(actions: Sequence[Action], desired: Desired, observed: Observed) -> list[Action]:
    """`actions`, each `noop` of a running container whose definition restarts with a
    dependency that is new (see above) made a `restart`, its cause naming that dependency."""
    restarts = Restarting(desired.containers).dependents
    if not restarts:
        return list(actions)
    updated: dict[str, str] = {}
    for a in actions:
        if a.action in UPDATES and a.definition:
            updated.setdefault(a.definition, a.action)
    live: dict[str, tuple[str, LiveContainer | None]] = {
        c.id: (s.kind, c) for s in observed.servers.values() for c in s.managed}
    made: dict[str, tuple[str, str]] = {}  # dependency → its newest container's creation time
    for kind, c in live.values():
        if c is not None and kind != "swarm" and c.made_at and c.definition:
            made[c.definition] = max(made.get(c.definition, ("", "")), instant(c.made_at))
    out = []
    for a in actions:
        kind, c = live.get(a.container_id, ("", None))
        if a.action == "noop" and c is not None and (c.replicas != 0 if kind == "swarm" else c.state in RUNNING):
            why = [f"{d} ({updated[d]})" for d in restarts.get(a.definition, ()) if d in updated]
            if not why and kind != "swarm" and c.started_at:
                why = [f"{d} (made after it started)" for d in restarts.get(a.definition, ())
                       if made.get(d, ("", "")) > instant(c.started_at)]
            if why:
                a = replace(a, action="restart",
                            cause=f"restarted after its dependency {', '.join(why)}: depends_on restart: true")
        out.append(a)
    return out
