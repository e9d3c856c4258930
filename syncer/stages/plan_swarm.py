"""The plan of a Swarm server: one service per definition (Swarm keeps its replicas), made,
updated (Swarm rolls it), or run once per spec (a job). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, LiveContainer, LiveNetwork, Reason, ServerState
from syncer.stages.plan_shared import absent_job, conflict, job, spec_reasons
from syncer.stages.swarm import TASK_HASH, live_mode, service_mode, task_hash
from syncer.stages.swarm_drift import drifted
from syncer.stages.swarm_drift import reasons as drift_reasons
from syncer.stages.swarm_status import noop_cause


def service_actions(server: str, desired: list[ContainerSpec], state: ServerState,
                    revisions: Mapping[str, int], held: frozenset[str], ran: Mapping[str, int]) -> list[Action]:
    """A Swarm server: create the services that are absent, update the changed ones, run a
    job once per spec hash; a name held by a service syncer does not manage (or another
    project's) is a conflict, not Docker's error at apply time."""
    live = {c.name: c for c in state.managed}
    taken = {c.name: c for c in state.name_holders}
    out = []
    for c in desired:
        base: dict[str, Any] = dict(server=server, definition=c.definition, container=c.name,
                                    revision=revisions[c.definition], spec_hash=c.spec_hash)
        current = live.get(c.name)
        if current is None and c.name in taken:
            out.append(conflict(taken[c.name], "a service", base))
        elif current is None:
            out.append(absent_job(base, ran, "service") if c.is_job
                       else Action("create", cause="service absent", **base))
        elif live_mode(current) != service_mode(c):  # a job, a global or a replicated service
            out.append(_mode_change(c, current, {"container_id": current.id, **base}))
        elif c.is_job:
            out.append(job(c, current, {"container_id": current.id, **base}))
        else:
            out.append(_service(c, current, {"container_id": current.id, **base}, c.name in held, state.networks))
    return out


def _mode_change(c: ContainerSpec, live: LiveContainer, ident: dict[str, Any]) -> Action:
    """A service turned into a job, a global one or back: Swarm refuses a mode change on update,
    so the service is removed and made again (a job by `run`, which removes its earlier service)."""
    before, after = live_mode(live), service_mode(c)
    reasons = (Reason("mode", before, after), *(r for r in spec_reasons(live, c.spec) if r.field != "mode"))
    cause = "mode changed: Swarm cannot update a service's mode; the service is removed and made again"
    return Action("run" if c.is_job else "recreate", cause=cause, reasons=reasons, **ident)


def _service(c: ContainerSpec, live: LiveContainer, ident: dict[str, Any], held: bool,
             nets: tuple[LiveNetwork, ...]) -> Action:
    if live.labels.get(L.SPEC_HASH) != c.spec_hash:
        return Action("update", cause="spec changed: Swarm rolls the service",
                      reasons=tuple(spec_reasons(live, c.spec)), **ident)
    wants = task_hash(c, live.image if "@" in live.image else "")  # the tasks this syncer makes of the spec
    if live.labels.get(TASK_HASH, wants) != wants:  # made by an earlier syncer, which carried less of it
        return Action("update", cause="an earlier syncer carried less of this spec to Swarm: Swarm rolls it",
                      reasons=(Reason("task template", live.labels[TASK_HASH], wants),), **ident)
    wanted = int(c.spec.get("replicas", 1))
    scaled = (Reason("replicas", live.replicas, wanted),) if live.replicas is not None and live.replicas != wanted \
        and not (held and live.replicas == 0) else ()
    if drift := drifted(c, live, nets):  # `docker service update --env-add ...`: back to the spec planned
        return Action("update", cause="changed outside syncer: Swarm rolls it back to syncer's spec",
                      reasons=(*drift_reasons(drift), *scaled), **ident)
    if held and live.replicas == 0:
        return Action("noop", cause="held at 0 replicas by an operator (start it through syncer)", **ident)
    if scaled:
        return Action("update", cause=f"scaled to {live.replicas} outside syncer: back to {wanted}", reasons=scaled,
                      **ident)
    # nothing to write; a service short of tasks says so, and what Swarm does about it
    return Action("noop", cause=noop_cause(live.state, live.status), **ident)
