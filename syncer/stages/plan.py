"""Desired × Observed → Plan. Pure: no Docker, no clock, no store.

Every action states its cause in words; field-level reasons come from the spec label the
live container carries, so a plan needs nothing but one list call per server."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from syncer.core import labels as L
from syncer.core.errors import DockerUnavailable
from syncer.core.model import Action, ContainerSpec, Desired, LiveContainer, LiveNetwork, Observed, Plan, Reason
from syncer.stages import interrupted, networks, outside, restarts, tags
from syncer.stages.plan_shared import (  # (diff_fields and spec_reasons: importable from here, as before)
    RUNNING_STATES, absent_job, changed, conflict, diff_fields, job, missing_labels, spec_reasons,
)
from syncer.stages.plan_swarm import service_actions

__all__ = ["RUNNING_STATES", "STARTABLE_STATES", "Known", "definition_hash", "desired_hash", "diff_fields",
           "fingerprint", "next_revision", "plan", "restores_only", "scoped", "spec_reasons"]

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
            ours = service_actions(server, mine, state, revisions, held, ran)
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
                out.append(conflict(taken[c.name], "a container", base))
            elif c.is_job:
                out.append(absent_job(base, ran, "container"))
            elif c.name in renamed:  # its own container, renamed by hand: made again under its name
                other = renamed[c.name]
                changes = spec_reasons(other, c.spec) if other.labels.get(L.SPEC_HASH) != c.spec_hash else []
                left = _left(other, held=c.name in held, finished=not changes and _finished(c.name, other, finished))
                out.append(Action("recreate", cause=outside.renamed_cause(other, c.name, left=left),
                                  container_id=other.id, reasons=(Reason("name", other.name, c.name), *changes),
                                  stay_stopped=bool(left), **base))
            else:
                out.append(Action("create", cause="container absent", **base))
            continue
        out.append(_compare(c, current, base, c.name in held, _finished(c.name, current, finished), nets))
    return out


def _finished(name: str, live: LiveContainer, marks: Mapping[str, str]) -> bool:
    """True when `live` (the container of `name`, under that name or renamed by hand: it keeps
    its id) is the one watch or an apply saw run to completion and still exited 0 (as
    `selfheal.finished` says), or the one made in its place for a network removed since and
    left unstarted (the apply carries the mark over: outside.py)."""
    return marks.get(name) == live.id and (live.state == "exited" and live.exit_code == 0 or live.state == "created")


def _left(live: LiveContainer, *, held: bool, finished: bool) -> str:
    """Why a container's recreate leaves the new one stopped, as `live` is ("" when it starts
    it): held stopped by an operator, or it had run to completion."""
    if live.state in RUNNING_STATES:
        return ""
    return outside.LEFT_STOPPED if held else outside.LEFT_FINISHED if finished else ""


def _compare(c: ContainerSpec, live: LiveContainer, base: dict[str, Any], held: bool,
             finished: bool = False, nets: tuple[LiveNetwork, ...] = ()) -> Action:
    ident = {"container_id": live.id, **base}
    if live.definition != c.definition:
        return Action("recreate", cause=f"the name is held by definition '{live.definition}'", **ident)
    if c.is_job:
        return job(c, live, ident)
    if live.labels.get(L.SPEC_HASH) != c.spec_hash:
        # a container not running says so: after an interrupted recreate, its service is down until this apply
        down = f" (the container is {live.state})" if live.state not in RUNNING_STATES and not held else ""
        return Action("recreate", cause=changed(live, c) + down, reasons=tuple(spec_reasons(live, c.spec)), **ident)
    missing = missing_labels(c.spec, live)
    if missing:
        # created by a syncer that hashed the spec's labels but did not apply them
        return Action("recreate", cause="the spec's labels are not on the container", reasons=missing, **ident)
    # held or finished, it stays stopped: judged only on networks removed since (it could never
    # start on them), and made again left stopped; else judged when it runs or is to be started
    left = _left(live, held=held, finished=finished) if live.state in STARTABLE_STATES else ""
    judged = live.state in RUNNING_STATES or live.state in STARTABLE_STATES and not left
    if lost := outside.network_recreate(c.spec, live, nets, ident, judged=judged, left=left):
        return lost
    if live.state in RUNNING_STATES:
        cause = "in sync" if live.health != "unhealthy" else "in sync (container reports unhealthy)"
        return Action("noop", cause=cause, **ident)
    if live.state in STARTABLE_STATES and held:
        return Action("noop", cause="held stopped by an operator (start it through syncer)", **ident)
    if finished:
        how = ("made again for a network removed since, after it ran to completion (exit 0), and never started"
               if live.state == "created" else "exited 0 on its own, as its restart policy allows")
        return Action("noop", cause=f"{how} (start it through syncer to run it again)", **ident)
    if live.state in STARTABLE_STATES:
        return Action("start", cause=f"container is {live.state}", **ident)
    return Action("recreate", cause=f"container is {live.state or 'in an unknown state'}", **ident)


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
