"""Desired × Observed → Plan. Pure: no Docker, no clock, no store.

Every action states its cause in words; field-level reasons come from the spec label the
live container carries, so a plan needs nothing but one list call per server."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from collections.abc import Iterable, Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.errors import DockerUnavailable
from syncer.core.model import (
    Action, ContainerSpec, Desired, LiveContainer, LiveNetwork, Observed, Plan, Reason, ServerState,
)
from syncer.stages import interrupted, networks, outside, restarts, selfheal, tags
from syncer.stages.swarm import TASK_HASH, live_mode, service_mode, task_hash
from syncer.stages.swarm_drift import drifted
from syncer.stages.swarm_drift import reasons as drift_reasons
from syncer.stages.swarm_status import noop_cause
from syncer.stages.files import changed_sources

RUNNING_STATES = ("running", "restarting")
STARTABLE_STATES = ("created", "exited", "paused")  # paused: started again by unpausing

Known = Mapping[str, tuple[int, str]]  # definition → (current revision, definition hash)


def definition_hash(containers: Iterable[ContainerSpec]) -> str:
    """Identity of a definition's whole rendered state: every replica's spec hash."""
    return L.sha256_of(sorted((c.replica, c.spec_hash) for c in containers))


def fingerprint(observed: Observed) -> str:
    """A hash of the live state a plan was computed from (health left out: it flaps)."""
    rows = []
    for name in sorted(observed.servers):
        s = observed.servers[name]
        for c in sorted((*s.managed, *s.name_holders), key=lambda c: (c.name, c.id)):
            rows.append([name, c.name, c.id, c.state, c.labels.get(L.SPEC_HASH, ""),
                         c.labels.get(L.REVISION, ""), *([list(c.networks)] if c.networks else [])])
        rows.extend([name, "network", n.name, n.id] for n in s.networks
                    if n.labels.get(L.PROJECT) == observed.project)
        rows.extend([name, "registry", ref, s.registry[ref].digest] for ref in sorted(s.registry))
    return L.sha256_of(rows)


def plan(desired: Desired, observed: Observed, *, prune: bool, created_at: str,
         known: Known | None = None, dirty: bool = False, held: frozenset[str] = frozenset(),
         declared: networks.Declared | None = None, only: str | None = None,
         finished: Mapping[str, str] | None = None, internal: Iterable[str] = (),
         ipam: Mapping[str, Any] = {}, ran: Mapping[str, int] = {}) -> Plan:
    """The actions that bring the servers from `observed` to `desired` (of the definition
    `only`, when given: see `scoped`).

    `held` names containers an operator stopped through syncer: they stay stopped;
    `finished` (name → container id) the ones watch saw end on their own as their restart
    policy allows: while that container is exited 0, it stays so. A server
    that did not answer gets an `unreachable` action per container wanted there (never
    applied) and nothing else: what runs there is unknown, so nothing is removed.
    `declared` is syncer.yaml's `networks:` (name → external), `internal` the names of
    those it makes `internal: true`, `ipam` their address pools (name → `ipam.config`).
    `ran`: definition → the revision it last deployed successfully (a job's container or
    service removed by hand after its run is not run again: once per spec).
    """
    down = {n: s.error or f"server '{n}': unreachable" for n, s in sorted(observed.servers.items())
            if not s.reachable}
    if down and len(down) == len(observed.servers):  # nothing to plan at all: one clear error (naming the server)
        raise DockerUnavailable("\n".join(e if f"'{n}'" in e else f"server '{n}': {e}" for n, e in down.items()))
    if only is not None:
        desired, observed = scoped(desired, observed, only)
    by_def: dict[str, list[ContainerSpec]] = defaultdict(list)
    for c in desired.containers:
        by_def[c.definition].append(c)
    live_by_def: dict[str, list[LiveContainer]] = defaultdict(list)
    for s in observed.servers.values():
        for live in s.managed:
            live_by_def[live.definition or ""].append(live)
    revisions = {d: _revision(d, cs, live_by_def.get(d, []), known or {}) for d, cs in by_def.items()}
    actions: list[Action] = []
    for server, state in sorted(observed.servers.items()):
        mine = [c for c in desired.containers if c.server == server]
        if server in down:
            actions.extend(_unreachable(server, mine, revisions))
            continue
        if state.kind == "swarm":  # one service per definition: Swarm keeps its replicas
            ours = _service_actions(server, mine, state, revisions, held, ran)
        else:
            ours = networks.shared(_server_actions(server, mine, state.managed, state.name_holders, revisions,
                                                   state.networks, held, finished or {}, ran), mine, state.managed)
        # (an interrupted recreate's leftover of the wanted spec is finished, not made again)
        ours, adopted = interrupted.adopt(tags.follow(ours, mine, state, held) if state.registry else ours,
                                          mine, state.managed)
        actions.extend(ours)
        claimed = {a.container_id for a in ours if a.action == "recreate"} | adopted  # (they go, or stay)
        actions.extend(_removals(server, mine, state.managed, desired, prune, claimed))
    # a Swarm server's overlays are made by the deployments that join them (engine/swarm_apply.py):
    # no `network create` there; the unused ones are removed as on any server. One definition's
    # plan sees only its own containers: whether a network is still used by the others is not
    # known from it, so it removes none
    actions.extend(a for a in networks.actions(desired, observed, declared=declared or {},
                                               prune=prune and only is None, internal=internal, ipam=ipam)
                   if a.action != "network create" or observed.servers[a.server].kind != "swarm")
    actions = restarts.after_dependencies(actions, desired, observed)
    actions.sort(key=lambda a: (a.server, a.definition, a.replica, a.container))
    swarm = frozenset(n for n, s in observed.servers.items() if s.kind == "swarm")
    return Plan(desired.project, desired.commit, dirty, fingerprint(observed), created_at, tuple(actions), down,
                swarm)


def scoped(desired: Desired, observed: Observed, definition: str) -> tuple[Desired, Observed]:
    """What a plan of one definition alone is made from: its containers in both (on a Swarm
    server its service and that service's tasks), and any live container holding one of its
    names (the plan recreates it, as a plan of everything would); with the containers that
    share the network of one of its own (`networks.shared`: a heal that starts it again)."""
    also = restarts.judged_with(desired.containers, definition)
    mine = tuple(c for c in desired.containers if c.definition == definition or c.name in also)
    names = {c.name for c in mine}
    servers = {}
    for name, state in observed.servers.items():
        managed = tuple(c for c in state.managed if c.definition == definition or c.name in names)
        services = {c.name for c in managed}
        servers[name] = replace(state, managed=managed, tasks=tuple(t for t in state.tasks if t.service in services))
    return (replace(desired, containers=mine, definitions=tuple(d for d in desired.definitions if d == definition)),
            Observed(observed.project, servers))


def _unreachable(server: str, desired: list[ContainerSpec], revisions: Mapping[str, int]) -> list[Action]:
    return [Action("unreachable", server, c.definition, c.name, revisions[c.definition],
                   "the server did not answer; nothing will be done", replica=c.replica, spec_hash=c.spec_hash)
            for c in desired]


def next_revision(stored: int, live: Iterable[LiveContainer]) -> int:
    """A new revision's number: above the store's latest and the definition's `syncer.revision`
    labels (a state dir restored from an older copy does not know the revisions applied since,
    and must not give their numbers again); a plan's and a rollback's."""
    return max([stored, *(int(c.labels[L.REVISION]) for c in live if c.labels.get(L.REVISION, "").isdigit())]) + 1


def _revision(name: str, desired: list[ContainerSpec], live: list[LiveContainer], known: Known) -> int:
    if name in known and known[name][1] == definition_hash(desired):
        return known[name][0]  # (the common case: nothing more to work out)
    labelled = next_revision(0, live) - 1  # the highest `syncer.revision` label (0: none)
    live_hashes = sorted((c.replica, c.labels.get(L.SPEC_HASH, "")) for c in live if not _is_aside(c))
    same = live_hashes == sorted((c.replica, c.spec_hash) for c in desired)  # (they run this spec)
    if name in known:
        rev = known[name][0]
        # a store restored from an older copy: what runs this spec keeps the number it was applied at
        return labelled if same and labelled > rev else next_revision(rev, live)
    return labelled if same and labelled > 0 else labelled + 1  # (no store: the labels' revision)


def _missing_labels(spec: Mapping[str, Any], live: LiveContainer) -> tuple[Reason, ...]:
    wanted = spec.get("labels") or {}
    return tuple(Reason(f"labels.{k}", live.labels.get(k), v) for k, v in sorted(wanted.items())
                 if live.labels.get(k) != v)


def _is_aside(c: LiveContainer) -> bool:
    return c.name.endswith(L.TEMP_SUFFIX)


def _server_actions(server: str, desired: list[ContainerSpec], managed: Iterable[LiveContainer],
                    holders: Iterable[LiveContainer], revisions: Mapping[str, int], nets: tuple[LiveNetwork, ...],
                    held: frozenset[str], finished: Mapping[str, str], ran: Mapping[str, int]) -> list[Action]:
    live = {c.name: c for c in managed}
    taken = {c.name: c for c in holders}
    renamed = outside.renamed(desired, live.values(), {*live, *taken})
    out = []
    for c in desired:
        rev = revisions[c.definition]
        base: dict[str, Any] = dict(server=server, definition=c.definition, container=c.name, revision=rev,
                    replica=c.replica, spec_hash=c.spec_hash)
        current = live.get(c.name)
        if current is None:
            if c.name in taken:
                out.append(_conflict(taken[c.name], "a container", base))
            elif c.is_job:
                out.append(_absent_job(base, ran, "container"))
            elif c.name in renamed:  # its own container, renamed by hand: made again under its name
                other = renamed[c.name]
                changes = spec_reasons(other, c.spec) if other.labels.get(L.SPEC_HASH) != c.spec_hash else []
                stay = c.name in held and other.state not in RUNNING_STATES  # (held stopped: so is the new one)
                out.append(Action("recreate", cause=outside.renamed_cause(other, c.name, held=stay),
                                  container_id=other.id, reasons=(Reason("name", other.name, c.name), *changes),
                                  stay_stopped=stay, **base))
            else:
                out.append(Action("create", cause="container absent", **base))
            continue
        out.append(_compare(c, current, base, c.name in held, selfheal.finished(current, finished), nets))
    return out


def _conflict(other: LiveContainer, what: str, base: dict[str, Any]) -> Action:
    owner = other.labels.get(L.PROJECT)
    who = f"project '{owner}'" if owner else f"{what} syncer does not manage"
    return Action("conflict", cause=f"the name is held by {who} ({other.id[:12]}); nothing will be done",
                  container_id=other.id, **base)


def _compare(c: ContainerSpec, live: LiveContainer, base: dict[str, Any], held: bool,
             finished: bool = False, nets: tuple[LiveNetwork, ...] = ()) -> Action:
    ident = {"container_id": live.id, **base}
    if live.definition != c.definition:
        return Action("recreate", cause=f"the name is held by definition '{live.definition}'", **ident)
    if c.is_job:
        return _job(c, live, ident)
    if live.labels.get(L.SPEC_HASH) != c.spec_hash:
        # a container not running says so: after an interrupted recreate, its service is down until this apply
        down = f" (the container is {live.state})" if live.state not in RUNNING_STATES and not held else ""
        return Action("recreate", cause=_changed(live, c) + down, reasons=tuple(spec_reasons(live, c.spec)), **ident)
    missing = _missing_labels(c.spec, live)
    if missing:
        # created by a syncer that hashed the spec's labels but did not apply them
        return Action("recreate", cause="the spec's labels are not on the container", reasons=missing, **ident)
    stopped = live.state in STARTABLE_STATES and not finished  # (one finished is left as it is)
    judged, kept = live.state in RUNNING_STATES or stopped and not held, stopped and held  # (kept: left stopped)
    if lost := outside.network_recreate(c.spec, live, nets, ident, judged=judged, held=kept):
        return lost
    if live.state in RUNNING_STATES:
        cause = "in sync" if live.health != "unhealthy" else "in sync (container reports unhealthy)"
        return Action("noop", cause=cause, **ident)
    if live.state in STARTABLE_STATES and held:
        return Action("noop", cause="held stopped by an operator (start it through syncer)", **ident)
    if finished:
        return Action("noop", cause="exited 0 on its own, as its restart policy allows (start it through syncer"
                      " to run it again)", **ident)
    if live.state in STARTABLE_STATES:
        return Action("start", cause=f"container is {live.state}", **ident)
    return Action("recreate", cause=f"container is {live.state or 'in an unknown state'}", **ident)


def _absent_job(base: dict[str, Any], ran: Mapping[str, int], what: str) -> Action:
    """A job with no container (service): run, unless this revision of it already ran to
    completion (it runs once per spec; its container was removed since, by hand or a prune)."""
    if ran.get(base["definition"]) == base["revision"]:
        return Action("noop", cause=f"job completed (exit 0) at this revision; its {what} was removed since"
                                    " (it runs again when its spec changes)", **base)
    return Action("run", cause="job has not run yet", **base)


def _service_actions(server: str, desired: list[ContainerSpec], state: ServerState,
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
            out.append(_conflict(taken[c.name], "a service", base))
        elif current is None:
            out.append(_absent_job(base, ran, "service") if c.is_job
                       else Action("create", cause="service absent", **base))
        elif live_mode(current) != service_mode(c):  # a job, a global or a replicated service
            out.append(_mode_change(c, current, {"container_id": current.id, **base}))
        elif c.is_job:
            out.append(_job(c, current, {"container_id": current.id, **base}))
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


def _job(c: ContainerSpec, live: LiveContainer, ident: dict[str, Any]) -> Action:
    """A job runs until its spec hash has run successfully once; a finished job is in sync
    (left exited, never self-healed)."""
    if live.labels.get(L.SPEC_HASH) != c.spec_hash:
        return Action("run", cause="job " + _changed(live, c), reasons=tuple(spec_reasons(live, c.spec)), **ident)
    if live.state in RUNNING_STATES:
        return Action("noop", cause="job is running", **ident)
    if live.state == "exited" and live.exit_code == 0:
        return Action("noop", cause="job completed (exit 0)", **ident)
    if live.state == "exited":
        return Action("run", cause=f"the job's last run failed (exit {live.exit_code})", **ident)
    return Action("run", cause=f"job has not run (container is {live.state or 'in an unknown state'})", **ident)


def _changed(live: LiveContainer, c: ContainerSpec) -> str:
    """"spec changed", naming the repository files whose content changed."""
    names = changed_sources(L.spec_of(live.labels), c.spec)
    return "spec changed" + (f" ({', '.join(names)} changed)" if names else "")


def _removals(server: str, desired: list[ContainerSpec], managed: Iterable[LiveContainer],
              everything: Desired, prune: bool, claimed: Iterable[str] = ()) -> list[Action]:
    wanted = {c.name for c in desired}
    defs = {c.definition: c.server for c in everything.containers}
    out = []
    for live in managed:
        if live.name in wanted or live.id in claimed:
            continue
        d = live.definition or "?"
        if _is_aside(live):
            cause = "left over from an interrupted recreate"
        elif own := outside.is_renamed(live, desired):
            cause = f"replica {live.replica} renamed to {live.name} outside syncer ({own} is that replica now)"
        elif d in defs and defs[d] != server:
            cause = f"definition moved to server '{defs[d]}'"
        elif d in defs or d in everything.definitions:
            count = sum(1 for c in everything.containers if c.definition == d)
            cause = f"replica {live.replica} is beyond replicas={count}"
        elif prune:
            cause = "definition removed (prune)"
        else:
            continue
        out.append(Action("remove", server, d, live.name, int(live.labels.get(L.REVISION, "0") or 0),
                          cause, replica=live.replica, container_id=live.id,
                          spec_hash=live.labels.get(L.SPEC_HASH, "")))
    return out


def spec_reasons(live: LiveContainer, desired: Mapping[str, Any]) -> list[Reason]:
    """Field-level differences between the spec a container was made from and the desired one."""
    raw = live.labels.get(L.SPEC)
    if raw is None:
        return [Reason("spec_hash", live.labels.get(L.SPEC_HASH), None)]
    try:
        before = json.loads(raw)
    except ValueError:
        return [Reason("spec_hash", live.labels.get(L.SPEC_HASH), None)]
    return list(diff_fields(before, dict(desired)))


def diff_fields(before: Any, after: Any, path: str = "") -> Iterable[Reason]:
    """Changed leaves as dotted paths; lists compare whole; secrets masked."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                yield _reason(sub, None, after[key])
            elif key not in after:
                yield _reason(sub, before[key], None)
            else:
                yield from diff_fields(before[key], after[key], sub)
    elif L.canonical_json(before) != L.canonical_json(after):
        yield _reason(path, before, after)


def _reason(field: str, before: Any, after: Any) -> Reason:
    if L.has_secret(before) or L.has_secret(after):
        return Reason(field, sensitive=True)
    return Reason(field, before, after)


def desired_hash(desired: Desired) -> str:
    """Identity of the repository state a plan was rendered from."""
    return L.sha256_of(sorted((c.server, c.name, c.spec_hash) for c in desired.containers))


RESTORING = frozenset({"start", "create"})


def restores_only(p: Plan, known: Known) -> bool:
    """True when every change brings back what the store says is deployed: containers of a
    definition's current revision to start or create again (a self-heal), nothing new."""
    changes = [a for a in p.actions if a.action != "noop"]
    return bool(changes) and all(a.action in RESTORING and a.definition in known
                                 and a.revision == known[a.definition][0] for a in changes)
