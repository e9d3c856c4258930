"""Apply: the write side, under the project's apply lock.

`apply` plans (or checks a saved plan), asks for confirmation, records revisions, runs the
plan through the Applier and records each deployment's outcome (`apply_locked`, which
`engine/rollback.py` runs too, for the one definition it rolled back).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncer.adapters.lock import ApplyLock
from syncer.adapters.store import Store
from syncer.core.errors import NotFound, StalePlan, SyncerError, UsageError
from syncer.core.model import BLOCKING, ContainerSpec, Desired, Observed, Plan, Project, Server
from syncer.engine.events import EventSink, no_events, webhook_sink
from syncer.engine.project import (
    Context,
    load,
    planned,
    redactor,
    secrets_for,
)
from syncer.engine.recording import StoreRecorder
from syncer.engine.revisions import forget_lapsed
from syncer.stages.networks import internal_names
from syncer.stages.plan import Known, definition_hash, desired_hash, restores_only
from syncer.stages.restarts import judged_with
from syncer.stages.tags import heard

if TYPE_CHECKING:
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import EngineFactory
    from syncer.engine.options import ApplyOptions
    from syncer.engine.recording import DeploymentResult
    from syncer.stages.backoff import Hold
    from syncer.stages.planfile import SavedPlan

Progress = Callable[[str, str], None]  # (definition or "", line)


def quiet(definition: str, line: str) -> None:
    return None


def specs_of(containers: list[ContainerSpec]) -> list[dict[str, Any]]:
    # a file's bytes go with the revision so that a rollback writes them again (secrets in
    # them are references: values never reach the store)
    return [{"server": c.server, "replica": c.replica, "name": c.name, "template_ref": c.template_ref,
             "spec": dict(c.spec), "spec_hash": c.spec_hash, "depends_on": list(c.depends_on),
             **({"payload": {k: base64.b64encode(v).decode("ascii") for k, v in c.payload.items()}}
                if c.payload else {})} for c in containers]


@dataclass
class ApplyReport:
    """What an apply did: the plan, each deployment's result, and the run id."""

    plan: Plan
    results: list[DeploymentResult]
    run_id: str | None
    applied: bool
    project: Project | None = None
    desired: Desired | None = None  # what the plan was made for (its hash is in the plan's JSON)
    held: dict[str, Hold] = field(default_factory=dict)  # definition → watch's hold or deferral (stages/backoff)

    @property
    def ok(self) -> bool:
        """True when nothing failed (conflicts and unreachable servers count as failures: what
        they block was not applied)."""
        return all(r.ok for r in self.results) and not any(a.action in BLOCKING for a in self.plan.actions)


def apply(ctx: Context, *, options: ApplyOptions, confirm: Callable[[Plan], bool],
          plan_file: Path | None = None, trigger: str = "cli",
          progress: Progress = quiet, events: EventSink = no_events,
          engines: EngineFactory | None = None, only: str | None = None,
          drift: str | None = None, ready: Callable[[], object] | None = None,
          hold_failed: float = 0.0) -> ApplyReport:
    """Plan (or check a saved plan), confirm, then apply under the project's lock. `only`:
    plan and apply that definition alone. `drift`: nobody asked for a change (the reason
    given is a self-heal's or a resync's), so a plan with changes is queued as
    `drift.detected` for the webhooks before it is confirmed. `ready`: waited for once the
    project is loaded and rendered, before Docker is observed (a self-heal's fault settling).
    `hold_failed`: watch's base wait before a spec that failed (rolled back, a job's run, a
    first deployment) is tried again (stages/backoff.py; 0: no hold, as for any apply someone
    asked for). `plan_file`: apply exactly the plan saved there (`plan --out`), or refuse it
    (read_plan, check_fresh)."""
    saved = read_plan(plan_file) if plan_file is not None else None  # (a bad file: before anything is locked)
    root = ctx.root()
    state = ctx.state(root)
    with ApplyLock(state, f"syncer apply ({trigger})"):
        project = load(ctx)
        store = Store(state)
        try:
            events = webhook_sink(ctx, project, store, events)
            recovered = store.recover()
            if recovered:
                progress("", f"marked {recovered} deployment(s) of an interrupted apply as failed (interrupted)")
            return apply_locked(ctx, project, store, options=options, confirm=confirm, plan_file=saved,
                                 trigger=trigger, progress=progress, events=events, engines=engines, only=only,
                                 drift=drift, ready=ready, hold_failed=hold_failed)
        finally:
            store.close()


def apply_locked(ctx: Context, project: Project, store: Store, *, options: ApplyOptions,
                  confirm: Callable[[Plan], bool], plan_file: SavedPlan | None, trigger: str,
                  progress: Progress, events: EventSink, engines: EngineFactory | None,
                  only: str | None, drift: str | None = None,
                  ready: Callable[[], object] | None = None, hold_failed: float = 0.0) -> ApplyReport:
    from syncer.adapters.docker import Engine
    from syncer.engine.holds import Holds, held_after
    from syncer.stages.backoff import mark

    secrets = secrets_for(ctx, project)
    factory = engines or Engine
    heal = only is not None and drift is not None  # restores what runs: a moved tag waits for the next sync
    hold = Holds(store, hold_failed)
    p = planned(ctx, project, store, engines=factory, secrets=secrets, only=only, ready=ready, tags=not heal,
                hold=hold)
    result, desired, held = mark(p.plan, hold.held), p.desired, dict(hold.held)
    forget_lapsed(store, p)
    # (the plan before its marks: a deferred definition's noops do not mean it is in sync)
    _settle_statuses(store, p.plan, desired, p.observed, p.known, only=only)
    if only is not None:
        result = _only(result, only, heal=heal, also=judged_with(desired.containers, only))
    if plan_file is not None:
        check_fresh(plan_file, result, desired)
    if result.has_changes and drift is not None:  # nobody asked for this change: report it, then heal
        events("drift.detected", {"reason": drift, "actions": [
            f"{a.action} {a.container}" for a in result.actions if a.action != "noop"]})
    if not result.has_changes:
        if any(d not in p.known for d in {a.definition for a in result.actions}):
            # a new state dir (another CI runner) learns the revisions that run: status and
            # history start from them (a set check: later no-op applies write nothing)
            _record_revisions(store, desired, result, project.commit, events, held=held)
        return ApplyReport(result, [], None, False, project, desired, held)
    if not confirm(result):
        return ApplyReport(result, [], None, False, project, desired, held)
    # The state dir's flock does not reach another state dir (another CI runner): an apply
    # that changes something also locks the servers, then checks that nobody changed what it
    # is about to do since its plan (actions, not the fingerprint: a crash-looping container's
    # state flaps). One that changes nothing takes no server lock (a no-op apply stays cheap).
    from syncer.engine.serverlock import ServerLock, held_elsewhere

    if restores_only(result, p.known) and \
            not held_elsewhere(project, {a.server for a in result.actions if a.action != "noop"}, engines=factory):
        # a self-heal (containers of the deployed revision started or made again) when no
        # other apply is under way: taking the lock (a container create and remove) and
        # re-planning would double the time a killed container stays down
        return held_after(store, hold_failed, _run(
            ctx, project, store, result, desired, secrets, options=options, trigger=trigger, progress=progress,
            events=events, factory=factory, observed=p.observed, held=held))
    with ServerLock(project, f"syncer apply ({trigger})", engines=factory):
        fresh = planned(ctx, project, store, engines=factory, secrets=secrets, only=only, tags=not heal, hold=hold)
        again = mark(fresh.plan, hold.held)
        if only is not None:
            again = _only(again, only, heal=heal, also=judged_with(fresh.desired.containers, only))
        held = dict(hold.held)
        if _steps(again) != _steps(result):
            if plan_file is not None:  # exactly that plan was asked for
                raise StalePlan(f"{plan_file.source}: another apply changed the live containers since this plan"
                                " was made; run `syncer plan --out FILE` again")
            # The live state moved between the plan and the lock (another apply finished, or
            # Docker was still carrying out what a killed one had asked): the plan made under
            # the lock is the one to confirm and apply.
            progress("", "the live containers changed since this plan was made: planned again")
            _settle_statuses(store, fresh.plan, fresh.desired, fresh.observed, fresh.known, only=only)
            if not again.has_changes or not confirm(again):
                return ApplyReport(again, [], None, False, project, fresh.desired, held)
            result, desired, p = again, fresh.desired, fresh
        return held_after(store, hold_failed, _run(
            ctx, project, store, result, desired, secrets, options=options, trigger=trigger, progress=progress,
            events=events, factory=factory, observed=p.observed, held=held))


def _earlier_commits(store: Store, result: Plan) -> dict[str, str | None]:
    """The commit each definition planned at an earlier revision than its latest (watch's hold)
    came from: what its containers' `syncer.commit` label says, not the repository's HEAD."""
    known = store.latest_revisions()
    older = {a.definition: a.revision for a in result.actions
             if a.definition in known and a.revision and a.revision != known[a.definition][0]}
    return {d: store.revision(d, r).commit for d, r in older.items()}


def _run(ctx: Context, project: Project, store: Store, result: Plan, desired: Desired, secrets: dict[str, str],
         *, options: ApplyOptions, trigger: str, progress: Progress, events: EventSink,
         factory: EngineFactory, observed: Observed, held: dict[str, Hold]) -> ApplyReport:
    """Carry out `result`; `observed` is the observation it was planned from (the registry's
    answers in it pin what a followed tag names: the digest the plan showed)."""
    from syncer.engine.apply import Applier

    run_id = store.start_run(trigger, project.commit, os.getpid())
    _record_revisions(store, desired, result, project.commit, events, held=held)
    live = _engines(factory, project.config.servers, result)
    mask = redactor(ctx, project)
    recorder = StoreRecorder(store, run_id, trigger, project.commit, mask, progress, events)
    recorder.message = project.commit_message
    registry = {name: s.registry for name, s in observed.servers.items()}
    recorder.images = heard(desired.containers, registry)
    applier = Applier(result, desired, live, secrets, recorder, options, commit=project.commit, redact=mask,
                      registry=registry, internal=internal_names(project.config.name, project.config.internal_networks),
                      commits=_earlier_commits(store, result))
    try:
        results = applier.run()
        applier.ended_on_their_own()  # (before the engines close)
        from syncer.engine.serverkey import spread  # (a fallback: after the actions)

        spread(project, live, desired)
    finally:
        for e in live.values():
            e.close()
    if recorder.error is not None:  # every deployment under way ended (StoreRecorder): the apply fails once,
        raise recorder.error  # and the next one marks what it could not record as interrupted
    for name, ident, definition in applier.completed:  # as watch records one it sees end on its own
        store.mark_finished(name, ident, definition)
    for r in results:  # an error quotes container output (a job's last lines): masked before any view
        r.error = mask.text(r.error)
    _record_outcomes(store, result, results, events, held=held)
    store.finish_run(run_id, "success" if all(r.ok for r in results) else "failed",
                     {"deployments": len(results), "failed": sum(1 for r in results if not r.ok),
                      **result.summary()})
    return ApplyReport(result, results, run_id, True, project, desired, held)


def _steps(p: Plan) -> set[tuple[str, str, str, str, str]]:
    return {(a.action, a.server, a.container, a.container_id, a.spec_hash) for a in p.actions if a.action != "noop"}


def _engines(factory: EngineFactory, servers: Mapping[str, Server], p: Plan) -> dict[str, Engine]:
    """A client per server that answered the plan; one that does not answer now is left out,
    and the Applier fails that server's actions only."""
    out = {}
    for name in sorted(set(servers) - set(p.unreachable)):
        try:
            out[name] = factory(servers[name])
        except SyncerError:
            continue
    return out


def _only(p: Plan, definition: str, *, heal: bool = False, also: Collection[str] = ()) -> Plan:
    """The plan's part for one definition (and the containers `also` names: those sharing
    its network). Unknown to the repository and to the servers: a heal (a fault of a
    container whose definition the repository dropped, which `prune: false` keeps) has
    nothing to do; anyone asking to apply it is told it does not exist."""
    # the networks a definition joins are created whatever it is applied alone for
    actions = tuple(a for a in p.actions  # (a heal never runs a job: a failed one runs at the next sync past its wait)
                    if (a.definition == definition or a.container in also or a.action == "network create")
                    and not (heal and a.action == "run"))
    if not any(a.definition == definition for a in actions):
        if heal:
            return replace(p, actions=())
        raise NotFound(f"no definition '{definition}' in the project or on its servers")
    return replace(p, actions=actions)


def read_plan(path: Path) -> SavedPlan:
    """The saved plan at `path` (`syncer plan --out`), read strictly (stages/planfile.read): a
    UsageError of one line naming the file and what is wrong when it is not one."""
    import json

    from syncer.stages.planfile import Malformed, read

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a syncer plan: not UTF-8 text") from None
    try:
        return read(json.loads(text), source=str(path))
    except RecursionError:  # (JSON nested deeper than the parser goes)
        raise UsageError(f"{path}: not a syncer plan: nested too deep") from None
    except Malformed as exc:
        raise UsageError(f"{path}: not a syncer plan: {exc}") from None
    except ValueError as exc:  # (json's own: not JSON)
        raise UsageError(f"{path}: not a syncer plan: not JSON ({exc})") from None


def check_fresh(saved: SavedPlan, current: Plan, desired: Desired) -> None:
    """Refuse a saved plan when the repository or the live state moved since it was made, or
    when its actions are not the plan they give (edited by hand): `apply PLAN` applies
    exactly the plan the file holds, or nothing."""
    from syncer.stages.planfile import refusal

    why = refusal(saved, current, desired_hash(desired))
    if why is not None:
        raise StalePlan(f"{saved.source or 'the plan file'}: {why}")


def _record_revisions(store: Store, desired: Desired, p: Plan, commit: str | None,
                      events: EventSink = no_events, *, held: Collection[str] = ()) -> None:
    """Each definition's revision, when the store has it not yet (a held one is planned at a
    revision it has)."""
    revs = {a.definition: a.revision for a in p.actions if a.action != "remove" and a.definition not in held}
    by_def: dict[str, list[ContainerSpec]] = {}
    for c in desired.containers:
        by_def.setdefault(c.definition, []).append(c)
    known = store.latest_revisions()
    rows = {d["name"]: d for d in store.definitions()}
    gone = {name for name, d in rows.items() if d["deleted_at"]}
    acted = {a.definition for a in p.actions if a.action not in ("noop", "remove")}
    removing = {a.definition for a in p.actions if a.action == "remove"}
    changed = []
    with store.transaction():
        for name, containers in by_def.items():
            if name not in revs:
                continue
            first, dh = containers[0], definition_hash(containers)
            row = rows.get(name)
            # a definition nothing happens to, as the store has it, is not written (a self-heal
            # of one container must not rewrite the rows of all the others before it starts it)
            if name in acted or name in gone or row is None or known.get(name, (0, ""))[1] != dh \
                    or (row["server"], row["template"]) != (first.server, first.template_ref):
                store.upsert_definition(name, first.server, first.template_ref)
            if known.get(name, (0, ""))[1] != dh:
                store.add_revision(name, revs[name], dh, specs_of(containers), commit)
                changed.append(name)
                if name not in acted and name not in removing:  # in sync already (another state dir made it)
                    store.set_definition_status(name, "active", revision=revs[name])
    for name in changed:  # after the commit: no event for a revision that was not recorded
        c = by_def[name][0]
        events("definition.created" if name not in known or name in gone else "definition.updated",
               {"definition": name, "revision": revs[name], "server": c.server, "template": c.template_ref,
                "commit": commit})


def _settle_statuses(store: Store, p: Plan, desired: Desired, observed: Observed, known: Known,
                     *, only: str | None = None) -> None:
    """What a killed apply did but could not record, read back from the live state: a
    definition already in sync is active at its revision; a removed one with nothing left
    on any server is removed (else both would stay `failed` once recover() ran). A plan of
    one definition (`only`) observed only its containers: it settles that one alone."""
    kinds: dict[str, set[str]] = {}
    for a in p.actions:
        kinds.setdefault(a.definition, set()).add(a.action)
    revs = {a.definition: a.revision for a in p.actions if a.action == "noop"}
    live = {c.definition for s in observed.servers.values() for c in s.managed}
    sick = {c.definition for s in observed.servers.values() for c in s.managed if c.health == "unhealthy"}
    wanted = set(desired.definitions) | {c.definition for c in desired.containers}
    for d in store.definitions():
        name = d["name"]
        if only is not None and name != only:
            continue
        # (one whose container is unhealthy is not: a deployment that failed its gate stays failed)
        if kinds.get(name) == {"noop"} and known.get(name, (0, ""))[0] == revs[name] and name not in sick:
            if (d["status"], d["current_revision"]) != ("active", revs[name]):
                store.set_definition_status(name, "active", revision=revs[name])
        elif name not in wanted and name not in live and d["status"] != "removed":
            store.set_definition_status(name, "removed", deleted=True)


def _record_outcomes(store: Store, p: Plan, results: list[DeploymentResult],
                     events: EventSink = no_events, *, held: Collection[str] = ()) -> None:
    revs = {a.definition: a.revision for a in p.actions if a.action != "remove"}
    for r in results:
        if r.definition in held:  # what runs was healed at its last good revision: the wanted one still failed
            store.set_definition_status(r.definition, "failed")
            continue
        if r.definition not in revs:
            store.set_definition_status(r.definition, "removed" if r.ok else "failed", deleted=r.ok)
            if r.ok:
                events("definition.deleted", {"definition": r.definition, "server": r.server})
        elif r.ok:
            store.set_definition_status(r.definition, "active", revision=revs[r.definition])
        else:
            store.set_definition_status(r.definition, "failed")
