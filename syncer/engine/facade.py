"""The facade every shell calls: find the project, load it, render, observe, plan.

The CLI, the watcher and the HTTP server all come through here, so that a plan is
computed one way whether it was asked for from a shell, a file change or an API call.
"""

from __future__ import annotations

import os
import re
import secrets as pysecrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncer.adapters import cache
from syncer.core.errors import NotFound, SecretError, StalePlan
from syncer.stages.load import DirTree, Tree, find_root
from syncer.adapters.lock import ApplyLock
from syncer.core.model import ContainerSpec, Desired, Observed, Plan, Project
from syncer.stages.plan import definition_hash, desired_hash, plan
from syncer.stages.render import literal_secrets, render
from syncer.adapters.store import Revision, Store

if TYPE_CHECKING:  # docker is imported only by commands that talk to Docker
    from syncer.engine.apply import ApplyOptions, DeploymentResult
    from syncer.engine.observe import EngineFactory

STATE_DIR = ".syncer"
KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Context:
    """Where a command finds its project, its store and its secrets."""

    repo: Path | None = None
    state_dir: Path | None = None
    secrets_file: Path | None = None
    ref: str | None = None

    def root(self) -> Path:
        """The project root: --repo, or the nearest directory upwards holding syncer.yaml."""
        return find_root(self.repo or Path.cwd())

    def state(self, root: Path) -> Path:
        """The state directory (created on first use)."""
        path = self.state_dir or root / STATE_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path


def now_iso() -> str:
    """The current UTC time as the plan and the store write it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_git(root: Path) -> bool:
    return any((p / ".git").exists() for p in (root, *root.parents))


def load(ctx: Context) -> Project:
    """The validated project at the work tree, or at `ctx.ref` when given."""
    root = ctx.root()
    tree: Tree
    if ctx.ref is not None:
        from syncer.adapters import git as gitsource  # imported only where git is used

        git_tree = gitsource.tree_at(root, ctx.ref)
        tree, commit, dirty = git_tree, git_tree.sha, False
    else:
        tree, commit, dirty = DirTree(root), None, False
        if _in_git(root):
            from syncer.adapters import git as gitsource

            commit, dirty = gitsource.head(root)
        state = ctx.state(root)
        key = cache.repo_key(root)
        cached = cache.get(state, key)
        if cached is not None and cached.root == str(root):
            project = replace(cached, commit=commit, dirty=dirty)
        else:
            project = _build(tree, root, commit, dirty)
            if not project.config.allow_literal_secrets:  # a literal password must not land in the state dir
                cache.put(state, key, project)
        return _with_message(project, root)
    return _with_message(_build(tree, root, commit, dirty), root)


def _build(tree: Tree, root: Path, commit: str | None, dirty: bool) -> Project:
    from syncer.stages.validate import build_project  # jsonschema and the parser: only on a cache miss

    return build_project(tree, str(root), commit=commit, dirty=dirty)


def _with_message(project: Project, root: Path) -> Project:
    commit = project.commit
    if commit:
        from syncer.adapters import git as gitsource

        project = replace(project, commit_message=gitsource.commit_message(root, commit))
    return project


def secret_key(state: Path) -> bytes:
    """The key that turns secrets into keyed hashes; made once per state directory."""
    path = state / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = pysecrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def read_secrets(ctx: Context) -> dict[str, str]:
    """Secrets from --secrets-file, overridden by the environment."""
    found: dict[str, str] = {}
    if ctx.secrets_file is not None:
        found.update(parse_secrets_file(ctx.secrets_file))
    found.update(os.environ)
    return found


_DOTENV = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


def parse_secrets_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (dotenv) or a YAML mapping; errors never quote a value."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.__class__.__name__}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if all(_DOTENV.match(ln) for ln in lines):
        out = {}
        for ln in lines:
            m = _DOTENV.match(ln)
            assert m is not None
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
        return out
    return _yaml_secrets(path, text)


def _yaml_secrets(path: Path, text: str) -> dict[str, str]:
    from syncer.stages.load import parse

    source, problems = parse(str(path), text.encode("utf-8"))
    if problems or source is None or len(source.docs) != 1 or not isinstance(source.docs[0], dict):
        where = f" at line {problems[0].line}" if problems else ""
        raise SecretError(f"secrets file {path}: expected NAME=value lines or a YAML mapping{where}")
    return {str(k): "" if v is None else str(v) for k, v in source.docs[0].items()}


def secrets_for(ctx: Context, project: Project) -> dict[str, str]:
    """Every secret value a render of this project may use."""
    secrets = read_secrets(ctx)
    secrets.update(literal_secrets(project))
    return secrets


def desired_state(ctx: Context, project: Project, *, store: Store | None = None,
                  secrets: Mapping[str, str] | None = None) -> Desired:
    """Render the project with this context's secrets (and the store's rollback pins)."""
    values = secrets if secrets is not None else secrets_for(ctx, project)
    desired = render(project, secrets=values, secret_key=secret_key(ctx.state(Path(project.root))))
    return _pinned(store, desired) if store is not None else desired


def compute_plan(ctx: Context, project: Project, *, engines: EngineFactory | None = None,
                 store: Store | None = None, secrets: Mapping[str, str] | None = None,
                 ) -> tuple[Plan, Desired, Observed]:
    """Render, observe every server once, and diff (revisions numbered from the store)."""
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import observe

    own = store is None
    store = store or open_store(ctx, project)
    try:
        desired = desired_state(ctx, project, store=store, secrets=secrets)
        observed = observe(project.config.name, project.config.servers, desired, engines=engines or Engine)
        result = plan(desired, observed, prune=project.config.prune, created_at=now_iso(),
                      known=store.latest_revisions(), dirty=project.dirty, held=_holds(store, desired))
    finally:
        if own:
            store.close()
    return result, desired, observed


# --- apply ---------------------------------------------------------------------------

EventSink = Callable[[str, dict[str, Any]], None]
Progress = Callable[[str, str], None]  # (definition or "", line)


def _quiet(definition: str, line: str) -> None:
    return None


def _no_events(kind: str, data: dict[str, Any]) -> None:
    return None


@dataclass
class ApplyReport:
    """What an apply did: the plan, each deployment's result, and the run id."""

    plan: Plan
    results: list[DeploymentResult]
    run_id: str | None
    applied: bool
    project: Project | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed (conflicts count as failures: they were not resolved)."""
        return all(r.ok for r in self.results) and not any(a.action == "conflict" for a in self.plan.actions)


class _StoreRecorder:
    """Deployments into the store, log lines redacted, events out, progress to the view."""

    def __init__(self, store: Store, run_id: str, trigger: str, commit: str | None,
                 secrets: Mapping[str, str], progress: Progress, events: EventSink) -> None:
        self.store, self.run_id, self.trigger, self.commit = store, run_id, trigger, commit
        # only values long enough to be secrets, not every environment variable
        self.redact = sorted({v for v in secrets.values() if len(v) >= 4}, key=len, reverse=True)
        self.progress, self.events = progress, events
        self.names: dict[str, str] = {}
        self.message = ""

    def _clean(self, text: str) -> str:
        for value in self.redact:
            text = text.replace(value, "***")
        return text

    def begin(self, definition: str, server: str, revision: int, actions: list[str]) -> str:
        dep = self.store.add_deployment(run_id=self.run_id, definition=definition, server=server,
                                        revision=revision, actions=actions, trigger=self.trigger, commit=self.commit)
        self.store.deployment_running(dep)
        self.store.set_definition_status(definition, "deploying")
        self.names[dep] = definition
        if self.commit:
            self.store.log(dep, f"commit {self.commit[:12]} {self.message}".rstrip())
        self.events("deployment.started", {"deployment_id": dep, "definition": definition, "server": server,
                                           "revision": revision, "actions": actions})
        return dep

    def log(self, deployment: str, line: str) -> None:
        line = self._clean(line)
        self.store.log(deployment, line)
        self.progress(self.names.get(deployment, "?"), line)

    def finish(self, deployment: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        error = self._clean(error)
        self.store.finish_deployment(deployment, ok=ok, rolled_back=rolled_back, error=error)
        self.progress(self.names.get(deployment, "?"), "done: ok" if ok else "done: failed")
        data = {"deployment_id": deployment, "definition": self.names.get(deployment), "error": error or None,
                "rolled_back": rolled_back}
        self.events("deployment.success" if ok else "deployment.failed", data)
        if rolled_back:
            self.events("deployment.rolled_back", data)


def _pinned(store: Store, desired: Desired) -> Desired:
    """Definitions pinned by a rollback keep the pinned revision until git changes them."""
    pins = store.pins()
    if not pins:
        return desired
    by_def: dict[str, list[ContainerSpec]] = {}
    for c in desired.containers:
        by_def.setdefault(c.definition, []).append(c)
    out: list[ContainerSpec] = []
    for name, containers in by_def.items():
        pin = pins.get(name)
        if pin is not None and definition_hash(containers) == pin[1]:
            out.extend(_from_revision(store.revision(name, pin[0]), containers[0]))
        else:
            if pin is not None:
                store.unpin(name)
            out.extend(containers)
    return Desired(desired.project, tuple(out), desired.definitions, desired.commit)


def _holds(store: Store, desired: Desired) -> frozenset[str]:
    """Containers held stopped whose definition has not changed since; lapsed holds go."""
    holds = store.holds()
    if not holds:
        return frozenset()
    by_def: dict[str, list[ContainerSpec]] = {}
    for c in desired.containers:
        by_def.setdefault(c.definition, []).append(c)
    kept = set()
    for container, (definition, def_hash) in holds.items():
        if definition in by_def and definition_hash(by_def[definition]) == def_hash:
            kept.add(container)
        else:
            store.release(container)
    return frozenset(kept)


def _from_revision(rev: Revision, like: ContainerSpec) -> list[ContainerSpec]:
    return [ContainerSpec(like.project, s["server"], rev.definition, int(s["replica"]), s["name"], s["template_ref"],
                          s["spec"], s["spec_hash"], tuple(s.get("depends_on", ()))) for s in rev.specs]


def _specs_of(containers: list[ContainerSpec]) -> list[dict[str, Any]]:
    return [{"server": c.server, "replica": c.replica, "name": c.name, "template_ref": c.template_ref,
             "spec": dict(c.spec), "spec_hash": c.spec_hash, "depends_on": list(c.depends_on)} for c in containers]


def open_store(ctx: Context, project: Project) -> Store:
    """The project's store."""
    return Store(ctx.state(Path(project.root)))


def apply(ctx: Context, *, options: ApplyOptions, confirm: Callable[[Plan], bool],
          plan_file: Mapping[str, Any] | None = None, trigger: str = "cli",
          progress: Progress = _quiet, events: EventSink = _no_events,
          engines: EngineFactory | None = None, only: str | None = None) -> ApplyReport:
    """Plan (or check a saved plan), confirm, then apply under the project's lock."""
    root = ctx.root()
    state = ctx.state(root)
    with ApplyLock(state, f"syncer apply ({trigger})"):
        project = load(ctx)
        store = Store(state)
        try:
            events = _webhook_sink(ctx, project, store, events)
            recovered = store.recover()
            if recovered:
                progress("", f"marked {recovered} deployment(s) of an interrupted apply as failed (interrupted)")
            return _apply_locked(ctx, project, store, options=options, confirm=confirm, plan_file=plan_file,
                                 trigger=trigger, progress=progress, events=events, engines=engines, only=only)
        finally:
            store.close()


def _apply_locked(ctx: Context, project: Project, store: Store, *, options: ApplyOptions,
                  confirm: Callable[[Plan], bool], plan_file: Mapping[str, Any] | None, trigger: str,
                  progress: Progress, events: EventSink, engines: EngineFactory | None,
                  only: str | None) -> ApplyReport:
    from syncer.engine.apply import Applier
    from syncer.adapters.docker import Engine

    secrets = secrets_for(ctx, project)
    factory = engines or Engine
    result, desired, observed = compute_plan(ctx, project, engines=factory, store=store, secrets=secrets)
    _settle_statuses(store, result, desired, observed)
    if only is not None:
        result = _only(result, only)
    if plan_file is not None:
        check_fresh(plan_file, result, desired)
    if not result.has_changes or not confirm(result):
        return ApplyReport(result, [], None, False, project)
    run_id = store.start_run(trigger, project.commit, os.getpid())
    _record_revisions(store, desired, result, project.commit, events)
    live = {name: factory(server) for name, server in project.config.servers.items()}
    recorder = _StoreRecorder(store, run_id, trigger, project.commit, secrets, progress, events)
    recorder.message = project.commit_message
    try:
        results = Applier(result, desired, live, secrets, recorder, options, commit=project.commit).run()
    finally:
        for e in live.values():
            e.close()
    _record_outcomes(store, result, results, events)
    store.finish_run(run_id, "success" if all(r.ok for r in results) else "failed",
                     {"deployments": len(results), "failed": sum(1 for r in results if not r.ok),
                      **result.summary()})
    return ApplyReport(result, results, run_id, True, project)


def _only(p: Plan, definition: str) -> Plan:
    actions = tuple(a for a in p.actions if a.definition == definition)
    if not actions:
        raise NotFound(f"no definition '{definition}' in the project or on its servers")
    return Plan(p.project, p.commit, p.dirty, p.fingerprint, p.created_at, actions)


def check_fresh(saved: Mapping[str, Any], current: Plan, desired: Desired) -> None:
    """Refuse a saved plan when the repository or the live state moved since it was made."""
    if saved.get("project") != current.project:
        raise StalePlan(f"the plan is for project '{saved.get('project')}', not '{current.project}'")
    if saved.get("commit") != current.commit or saved.get("desired") != desired_hash(desired):
        raise StalePlan("the plan is stale: the repository changed since it was made"
                        f" (plan commit {str(saved.get('commit'))[:12]}, now {str(current.commit)[:12]});"
                        " run `syncer plan --out FILE` again")
    if saved.get("fingerprint") != current.fingerprint:
        raise StalePlan("the plan is stale: the live containers changed since it was made;"
                        " run `syncer plan --out FILE` again")


def _record_revisions(store: Store, desired: Desired, p: Plan, commit: str | None,
                      events: EventSink = _no_events) -> None:
    revs = {a.definition: a.revision for a in p.actions if a.action != "remove"}
    by_def: dict[str, list[ContainerSpec]] = {}
    for c in desired.containers:
        by_def.setdefault(c.definition, []).append(c)
    known = store.latest_revisions()
    gone = {d["name"] for d in store.definitions() if d["deleted_at"]}
    changed = []
    with store.transaction():
        for name, containers in by_def.items():
            if name not in revs:
                continue
            store.upsert_definition(name, containers[0].server, containers[0].template_ref)
            dh = definition_hash(containers)
            if known.get(name, (0, ""))[1] != dh:
                store.add_revision(name, revs[name], dh, _specs_of(containers), commit)
                changed.append(name)
    for name in changed:  # after the commit: no event for a revision that was not recorded
        c = by_def[name][0]
        events("definition.created" if name not in known or name in gone else "definition.updated",
               {"definition": name, "revision": revs[name], "server": c.server, "template": c.template_ref,
                "commit": commit})


def _settle_statuses(store: Store, p: Plan, desired: Desired, observed: Observed) -> None:
    """What a killed apply did but could not record, read back from the live state: a
    definition already in sync is active at its revision; a removed one with nothing left
    on any server is removed (else both would stay `failed` once recover() ran)."""
    kinds: dict[str, set[str]] = {}
    for a in p.actions:
        kinds.setdefault(a.definition, set()).add(a.action)
    revs = {a.definition: a.revision for a in p.actions if a.action == "noop"}
    known = store.latest_revisions()
    live = {c.definition for s in observed.servers.values() for c in s.managed}
    wanted = set(desired.definitions) | {c.definition for c in desired.containers}
    for d in store.definitions():
        name = d["name"]
        if kinds.get(name) == {"noop"} and known.get(name, (0, ""))[0] == revs[name]:
            if (d["status"], d["current_revision"]) != ("active", revs[name]):
                store.set_definition_status(name, "active", revision=revs[name])
        elif name not in wanted and name not in live and d["status"] != "removed":
            store.set_definition_status(name, "removed", deleted=True)


def _record_outcomes(store: Store, p: Plan, results: list[DeploymentResult],
                     events: EventSink = _no_events) -> None:
    revs = {a.definition: a.revision for a in p.actions if a.action != "remove"}
    for r in results:
        if r.definition not in revs:
            store.set_definition_status(r.definition, "removed" if r.ok else "failed", deleted=r.ok)
            if r.ok:
                events("definition.deleted", {"definition": r.definition, "server": r.server})
        elif r.ok:
            store.set_definition_status(r.definition, "active", revision=revs[r.definition])
        else:
            store.set_definition_status(r.definition, "failed")


# --- outgoing webhooks -----------------------------------------------------------------

def _webhook_sink(ctx: Context, project: Project, store: Store, events: EventSink) -> EventSink:
    """`events`, plus every event queued for the project's webhooks (never failing the apply)."""
    if not project.config.webhooks:
        return events
    from syncer.adapters import webhooks as notify

    return notify.queueing(store, project.config.name, project.config.webhooks,
                           secrets=notify.sensitive_values(project, secrets_for(ctx, project)), then=events)


def emit_event(ctx: Context, project: Project, kind: str, data: dict[str, Any]) -> None:
    """Queue one event from outside an apply (instance.started|stopped|unhealthy,
    drift.detected) for the project's webhooks. Never raises: the caller's work goes on."""
    import logging

    from syncer.core import errors

    if not project.config.webhooks:
        return
    try:
        store = open_store(ctx, project)
        try:
            _webhook_sink(ctx, project, store, _no_events)(kind, data)
        finally:
            store.close()
    except errors.SyncerError as exc:  # the store or the secrets file unusable
        logging.getLogger("syncer.adapters.webhooks").warning("webhook event %s not queued: %s", kind, exc)


def flush_webhooks(ctx: Context, *, timeout: float = 3.0, project: Project | None = None) -> tuple[int, int]:
    """Try the due webhook deliveries once, for about `timeout` seconds: one-shot commands
    have no Notifier. Returns (delivered, still queued); never raises (what is not sent
    stays queued for `syncer watch`/`serve` or the next apply)."""
    import logging

    try:
        project = project or load(ctx)  # the apply's own project: no second load
        if not project.config.webhooks:
            return 0, 0
        store = open_store(ctx, project)
        try:
            if store.next_delivery_at() is None:  # nothing queued: spare the HTTP client
                return 0, 0
            from syncer.adapters import webhooks as notify

            outcomes = notify.flush(store, project.config.webhooks,
                                    notify.resolver(secrets_for(ctx, project)), timeout=timeout)
            queued = store.count_deliveries(status="pending") + store.count_deliveries(status="sending")
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - a webhook never fails the command that caused it
        logging.getLogger("syncer.adapters.webhooks").warning("webhook deliveries not attempted: %s", exc)
        return 0, 0
    return sum(1 for o in outcomes if o.status == "delivered"), queued


def start_notifier(ctx: Context) -> Any:
    """A started notify.Notifier for a long-running process (watch, serve): it delivers
    the queue as it falls due, re-reading the project's webhooks and secrets as they change."""
    from syncer.adapters import webhooks as notify

    def config() -> tuple[Any, Any]:
        project = load(ctx)
        return project.config.webhooks, notify.resolver(secrets_for(ctx, project))

    return notify.Notifier(Store(ctx.state(ctx.root())), config, owns_store=True).start()


def rollback(ctx: Context, definition: str, *, to: int | None, options: ApplyOptions,
             confirm: Callable[[Plan], bool], progress: Progress = _quiet,
             events: EventSink = _no_events, engines: EngineFactory | None = None) -> ApplyReport:
    """Deploy revision `to` (default: the one before the latest) again, as a new revision.

    The definition stays pinned to it until git next changes that definition.
    """
    root = ctx.root()
    state = ctx.state(root)
    with ApplyLock(state, "syncer rollback"):
        project = load(ctx)
        if project.definition(definition) is None:
            raise NotFound(f"no definition '{definition}' in the project")
        store = Store(state)
        try:
            events = _webhook_sink(ctx, project, store, events)
            store.recover()
            revisions = store.revisions(definition)
            if not revisions:
                raise NotFound(f"definition '{definition}' has no revisions yet (apply it first)")
            latest = revisions[0]
            target = _rollback_target(revisions, to)
            secrets = secrets_for(ctx, project)
            git_side = [c for c in desired_state(ctx, project, secrets=secrets).containers
                        if c.definition == definition]
            number = latest.number + 1
            with store.transaction():
                store.add_revision(definition, number, target.def_hash, target.specs, project.commit,
                                   rollback_of=target.number)
                store.pin(definition, number, definition_hash(git_side))
            progress(definition, f"revision {number} rolls back to revision {target.number}")
            events("deployment.rolled_back", {"definition": definition, "revision": number,
                                              "rollback_of": target.number})
            events("definition.updated", {"definition": definition, "revision": number,
                                          "rollback_of": target.number, "commit": project.commit})
            return _apply_locked(ctx, project, store, options=options, confirm=confirm, plan_file=None,
                                 trigger="rollback", progress=progress, events=events, engines=engines,
                                 only=definition)
        finally:
            store.close()


def _rollback_target(revisions: list[Revision], to: int | None) -> Revision:
    if to is None:
        if len(revisions) < 2:
            raise NotFound(f"definition '{revisions[0].definition}' has only revision "
                           f"{revisions[0].number}: nothing to roll back to")
        latest = revisions[0]
        older = [r for r in revisions[1:] if r.def_hash != latest.def_hash]
        return older[0] if older else revisions[1]
    for r in revisions:
        if r.number == to:
            return r
    raise NotFound(f"definition '{revisions[0].definition}' has no revision {to}"
                   f" (revisions: {', '.join(str(r.number) for r in reversed(revisions))})")


@dataclass(frozen=True)
class DefinitionStatus:
    """One definition as `syncer status` reports it."""

    definition: str
    server: str
    revision: int
    containers: list[dict[str, Any]]
    in_sync: bool
    actions: list[str]
    status: str
    pinned: bool


def status(ctx: Context, *, engines: EngineFactory | None = None) -> tuple[Project, list[DefinitionStatus]]:
    """Per definition: server, revision, containers with state and health, in sync or drifted."""
    project = load(ctx)
    store = open_store(ctx, project)
    try:
        result, desired, observed = compute_plan(ctx, project, engines=engines, store=store)
        stored = {d["name"]: d for d in store.definitions()}
        pins = store.pins()
    finally:
        store.close()
    live: dict[str, list[dict[str, Any]]] = {}
    for s in observed.servers.values():
        for c in s.managed:
            live.setdefault(c.definition or "?", []).append(
                {"name": c.name, "id": c.id[:12], "server": c.server, "state": c.state, "health": c.health,
                 "revision": int(c.labels.get("syncer.revision", "0") or 0)})
    out = []
    for name in sorted({c.definition for c in desired.containers} | set(live)):
        acts = [a for a in result.actions if a.definition == name]
        changing = [f"{a.action} {a.container}" for a in acts if a.action != "noop"]
        server = next((c.server for c in desired.containers if c.definition == name), acts[0].server if acts else "")
        revision = max((a.revision for a in acts if a.action != "remove"), default=0)
        out.append(DefinitionStatus(name, server, revision, sorted(live.get(name, []), key=lambda c: c["name"]),
                                    not changing, changing, stored.get(name, {}).get("status", "new"), name in pins))
    return project, out
