"""What the HTTP API and the CLI do beside plan and apply: single containers found by id
or name (one stopped through syncer is held stopped, so that self-heal leaves it alone; on
a Swarm server the instance is the definition's service, scaled to 0 and held there),
container logs with secret values masked, the values no answer may show, undoing one
deployment. Orchestration over the engine's facade, like it. (API keys live in keys.py,
CPU and memory samples in samples.py.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncer.core.errors import Conflict, DockerUnavailable, NotFound, SyncerError
from syncer.core.model import LiveContainer, Observed, Project
from syncer.core.redact import Redactor
from syncer.engine import secrets as S
from syncer.engine.project import redactor as project_redactor
from syncer.engine.project import state_store
from syncer.engine.deploy import Progress, quiet
from syncer.engine.facade import (
    ApplyReport,
    Context,
    desired_state,
    emit_event,
    open_store,
    read_secrets,
    rollback,
)
from syncer.engine.keys import (  # where the CLI has always found them
    NewApiKey,
    authenticate,
    create_api_key,
    hash_api_key,
    key_permissions,
)
from syncer.stages.outside import start_blocked
from syncer.stages.plan import definition_hash
from syncer.stages.selfheal import finished

if TYPE_CHECKING:
    from syncer.engine.options import ApplyOptions
    from syncer.engine.observe import EngineFactory

__all__ = ["NewApiKey", "authenticate", "create_api_key", "finished", "hash_api_key", "key_permissions"]

def git_webhook_secret(ctx: Context, project: Project) -> str | None:
    """The secret incoming git webhooks are verified with (see engine/secrets.py)."""
    return S.git_hook_secret(read_secrets(ctx, project), project)


def redactor(ctx: Context, project: Project) -> Redactor:
    """The project's one redactor: exactly its referenced secret values."""
    return project_redactor(ctx, project)


def instance_id(container_id: str) -> str:
    """The API's id of a container: `inst_` + its short id."""
    return f"inst_{container_id[:12]}"


def list_instances(project: Project, *, engines: EngineFactory | None = None) -> Observed:
    """Every container of the project on every server: one list call per server (on a Swarm
    server its services and tasks, with the health of the tasks' containers on the manager)."""
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import observe

    return observe(project.config.name, project.config.servers, None, engines=engines or Engine, task_health=True)


def find_instance(project: Project, ident: str, *, engines: EngineFactory | None = None) -> LiveContainer:
    """One of the project's containers by `inst_` id, container id (12+ hex digits) or name."""
    observed = list_instances(project, engines=engines)
    short = ident.removeprefix("inst_").lower()
    def named(c: LiveContainer) -> bool:
        return c.name == ident or (len(short) >= 12 and c.id.startswith(short))

    for state in observed.servers.values():
        for c in state.managed:
            if named(c):
                return c
    for state in observed.servers.values():  # a Swarm task, as `instances` lists it
        task = next((c for c in state.instances() if named(c) and c not in state.managed), None)
        if task is not None:
            raise NotFound(f"'{ident}' is a task of Swarm service '{task.definition}' on server '{task.server}':"
                           f" there an instance is the service, which Swarm runs its tasks for (name it:"
                           f" '{task.definition}')")
    down = [f"{n}: {s.error}" for n, s in sorted(observed.servers.items()) if not s.reachable]
    if down:
        raise DockerUnavailable(f"no instance '{ident}' on the servers that answered; " + "; ".join(down))
    raise NotFound(f"no instance '{ident}' in project '{project.config.name}'")


@contextmanager
def _turn(project: Project, ident: str, engines: EngineFactory | None) -> Iterator[LiveContainer]:
    """The instance `ident` names, once every action asked earlier on it has ended; one at a
    time per instance, in the order they were asked (see heal.TURNS: why, and why not the apply
    locks). A second request waits for the first rather than being refused, as a second sync
    waits in the request queue. Lookups take their turns one by one, so that each takes its
    place in its instance's line in the order the requests came (a lookup is one list call)."""
    from syncer.engine.heal import LOOKUPS, turn_of  # (its Docker SDK import: only for actions)

    with LOOKUPS.line_up((project.config.name, "")):
        c = find_instance(project, ident, engines=engines)
        place = turn_of(c.server, c.id)
    with place:
        yield c


def _on_server(project: Project, c: LiveContainer, engines: EngineFactory | None, act: Callable[[Any], Any]) -> Any:
    from syncer.adapters.docker import Engine

    server = project.config.servers.get(c.server)
    if server is None:
        raise NotFound(f"server '{c.server}' is no longer in the project")
    eng = (engines or Engine)(server)
    try:
        return act(eng)
    finally:
        eng.close()


def stop_instance(ctx: Context, project: Project, ident: str, *, timeout: int = 10,
                  engines: EngineFactory | None = None) -> LiveContainer:
    """Stop a container and hold it stopped: plans, applies and self-heal leave it stopped
    until it is started through syncer or its definition changes."""
    with _turn(project, ident, engines) as c:
        store = open_store(ctx, project)
        try:
            mine = [d for d in desired_state(ctx, project, store=store, engines=engines).containers
                    if d.definition == c.definition]
            held = any(d.name == c.name for d in mine)
            if held:  # recorded before the stop, so that a self-heal woken by the stop sees it
                store.hold(c.name, str(c.definition), definition_hash(mine))
            try:
                if _is_service(project, c):  # a Swarm service: scaled to 0 replicas, held there
                    _on_server(project, c, engines, lambda e: _swarm_ops().stop(e, c, timeout=timeout + 30))
                else:
                    _on_server(project, c, engines, lambda e: e.stop(c.id, timeout=timeout))
            except SyncerError:
                if held:
                    store.release(c.name)
                raise
        finally:
            store.close()
        _instance_event(ctx, project, "instance.stopped", c, held=held)
        return find_instance(project, c.id, engines=engines)  # (before the next action's turn)


def _is_service(project: Project, c: LiveContainer) -> bool:
    server = project.config.servers.get(c.server)
    return server is not None and server.kind == "swarm"


def _swarm_ops() -> Any:
    from syncer.engine import swarm_ops  # only Swarm projects pay for it

    return swarm_ops


def _instance_event(ctx: Context, project: Project, kind: str, c: LiveContainer, **extra: Any) -> None:
    emit_event(ctx, project, kind, {"instance_id": instance_id(c.id), "container": c.name,
                                    "container_id": c.id[:12], "definition": c.definition, "server": c.server,
                                    "by": "api", **extra})


def _release_and(ctx: Context, project: Project, ident: str, engines: EngineFactory | None,
                 act: Callable[[Any, LiveContainer], Any]) -> LiveContainer:
    with _turn(project, ident, engines) as c:
        store = open_store(ctx, project)
        try:
            store.release(c.name)
            store.unmark_finished(c.name)  # run again on purpose: its next end is judged afresh
        finally:
            store.close()
        try:
            _on_server(project, c, engines, lambda e: act(e, c))
        except SyncerError as exc:  # attached to a network removed since, it cannot start: say what to do
            if isinstance(exc, DockerUnavailable) or _is_service(project, c):
                raise
            try:
                why = _on_server(project, c, engines, lambda e: start_blocked(c, e.list_networks()))
            except SyncerError:
                why = ""  # (the engine's own error, then)
            if why:
                raise Conflict(why) from None
            raise
        _instance_event(ctx, project, "instance.started", c)
        return find_instance(project, c.id, engines=engines)  # (before the next action's turn)


def start_instance(ctx: Context, project: Project, ident: str, *,
                   engines: EngineFactory | None = None) -> LiveContainer:
    """Start a container, releasing an operator's hold (self-heal applies to it again); a
    Swarm service goes back to the replicas it was deployed with."""
    def act(e: Any, c: LiveContainer) -> Any:
        return _swarm_ops().start(e, c, timeout=60) if _is_service(project, c) else e.start(c.id)

    return _release_and(ctx, project, ident, engines, act)


def restart_instance(ctx: Context, project: Project, ident: str, *, timeout: int = 10,
                     engines: EngineFactory | None = None) -> LiveContainer:
    """Restart a container (stopped or running), releasing an operator's hold; a Swarm
    service is rolled (ForceUpdate + 1) at the replicas it was deployed with."""
    def act(e: Any, c: LiveContainer) -> Any:
        if _is_service(project, c):
            return _swarm_ops().start(e, c, timeout=timeout + 60, force=True)
        from syncer.engine.heal import OWN

        with OWN.acting(c.id, until="restart"):  # its die is this restart's (its event may come a moment
            e.restart(c.id, timeout=timeout)  # later), not a fault a watch in this process heals
        return None

    return _release_and(ctx, project, ident, engines, act)


def instance_logs(ctx: Context, project: Project, ident: str, *, tail: int = 100, since: int | None = None,
                  engines: EngineFactory | None = None) -> tuple[LiveContainer, list[str]]:
    """A container's recent output lines (`<RFC 3339 time> <line>`), secret values masked; a
    Swarm service's: every task's, in time order."""
    c = find_instance(project, ident, engines=engines)
    if _is_service(project, c):
        text = _on_server(project, c, engines, lambda e: _swarm_ops().logs(e, c, tail=tail, since=since))
    else:
        text = _on_server(project, c, engines, lambda e: e.logs(c.id, tail=tail, since=since))
    return c, redactor(ctx, project).lines(str(text).splitlines())


def instance_log_lines(ctx: Context, project: Project, ident: str, *, tail: int = 100) -> list[str]:
    """The last `tail` lines a container printed, secret values masked."""
    return instance_logs(ctx, project, ident, tail=tail)[1]


def instance_rows(ctx: Context, project: Project, *, definition: str | None = None,
                  server: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The project's containers as rows (one list call per server), held ones marked; and
    a line for each server (of those asked) that did not answer, whose rows are missing."""
    store = open_store(ctx, project)
    try:
        held, marks = set(store.holds()), store.finished()
    finally:
        store.close()
    rows = []
    observed = list_instances(project)
    down = [f"server '{n}' did not answer, its instances are not listed: {s.error}"
            for n, s in sorted(observed.servers.items()) if not s.reachable and server in (None, n)]
    for state in observed.servers.values():
        for c in state.instances():  # on a Swarm server: its tasks
            if (definition and c.definition != definition) or (server and c.server != server):
                continue
            rows.append({"id": instance_id(c.id), "name": c.name, "definition": c.definition, "server": c.server,
                         "replica": c.replica, "state": c.state, "health": c.health, "status": c.status,
                         "held_stopped": c.name in held, "finished": finished(c, marks)})
    return sorted(rows, key=lambda r: (r["server"], r["name"])), down


def rollback_deployment(ctx: Context, deployment_id: str, *, options: ApplyOptions,
                        engines: EngineFactory | None = None, progress: Progress = quiet) -> ApplyReport:
    """Undo one deployment: deploy again what it replaced (`rollback.undo_target`), an
    earlier revision or the digests a followed tag named before it rolled."""
    store = state_store(ctx)
    try:
        dep = store.deployment(deployment_id)
    finally:
        store.close()
    return rollback(ctx, dep["definition"], to=None, undo=dep, options=options, confirm=lambda p: True,
                    engines=engines, progress=progress)


def inspect_instance(project: Project, c: LiveContainer, *, engines: EngineFactory | None = None) -> dict[str, Any]:
    """The engine's full record of one of the project's containers ({} when its server is
    no longer in the project, or for a Swarm service: its tasks' containers are the nodes')."""
    if c.server not in project.config.servers or _is_service(project, c):
        return {}
    return dict(_on_server(project, c, engines, lambda e: e.inspect(c.id)))


def started_at(record: Mapping[str, Any]) -> datetime | None:
    """When an inspected container last started (None when never, or unreadable)."""
    raw = re.sub(r"(\.\d{6})\d+", r"\1", str((record.get("State") or {}).get("StartedAt") or ""))
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.year > 1 else None


def note_repo_state(ctx: Context) -> Project:
    """Load the project and remember, as the watch loop does after each apply, the commit
    seen or the problems of an invalid work tree (raised again as InvalidProject)."""
    from syncer.core.errors import InvalidProject
    from syncer.engine.facade import load
    from syncer.engine.queries import remember

    state = ctx.state(ctx.root())
    try:
        project = load(ctx)
    except InvalidProject as exc:
        remember(state, last_validation_error=exc.lines())
        raise
    remember(state, last_validation_error=None, last_commit={"sha": project.commit, "message": project.commit_message})
    return project

