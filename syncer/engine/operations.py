"""What the HTTP API and the CLI do beside plan and apply: single containers found by id
or name (one stopped through syncer is held stopped, so that self-heal leaves it alone),
container logs with secret values masked, API keys, undoing one deployment, and CPU and
memory samples. Orchestration over the engine's facade, like it.
"""

from __future__ import annotations

import hashlib
import os
import secrets as pysecrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncer.engine.facade import (
    ApplyReport,
    Context,
    desired_state,
    emit_event,
    open_store,
    read_secrets,
    rollback,
)
from syncer.core.errors import Conflict, DockerUnavailable, NotFound, SyncerError, UsageError
from syncer.core.model import LiveContainer, Observed, Project
from syncer.stages.plan import definition_hash
from syncer.stages.render import literal_secrets
from syncer.adapters.store import Store

if TYPE_CHECKING:
    from syncer.engine.apply import ApplyOptions
    from syncer.engine.observe import EngineFactory


API_KEY_PREFIX = "syncer_"
PERMISSIONS = ("read", "write")


def state_store(ctx: Context) -> Store:
    """The store of the project `ctx` finds, without loading (validating) the project."""
    return Store(ctx.state(ctx.root()))


def _named_secret(available: Mapping[str, str], ref: Any) -> str | None:
    """The value of a `{env: NAME}` / `{secret: NAME}` reference in syncer.yaml."""
    if not isinstance(ref, Mapping) or len(ref) != 1:
        return None
    return available.get(str(next(iter(ref.values()))))


def git_webhook_secret(ctx: Context, project: Project) -> str | None:
    """The secret incoming git webhooks are verified with: `api.git_webhook_secret` in
    syncer.yaml, else the SYNCER_GIT_WEBHOOK_SECRET environment variable."""
    api = project.config.raw.get("api")
    ref = api.get("git_webhook_secret") if isinstance(api, Mapping) else None
    configured = _named_secret(read_secrets(ctx), ref) if ref is not None else None
    return configured or os.environ.get("SYNCER_GIT_WEBHOOK_SECRET") or None


def secret_values(ctx: Context, project: Project) -> list[str]:
    """Every secret value the project uses, longest first: what no response may show."""
    available = read_secrets(ctx)
    names = {str(v["secret"]) for d in project.definitions for v in d.params.values()
             if isinstance(v, Mapping) and set(v) == {"secret"}}
    values = {available[n] for n in names if n in available} | set(literal_secrets(project).values())
    for hook in project.config.webhooks:
        values.add(_named_secret(available, hook.secret) or "")
    values.add(git_webhook_secret(ctx, project) or "")
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact(text: str, values: list[str]) -> str:
    """`text` with each of `values` replaced by ***."""
    for value in values:
        if value in text:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class NewApiKey:
    """A key just generated: the only moment its secret part exists outside the caller."""

    id: str
    name: str
    key: str
    permissions: list[str]
    rate_limit: int | None


def hash_api_key(key: str) -> str:
    """What the store keeps of a key. A key is 256 random bits, so a plain SHA-256 is enough
    (no salt or slow hash), and a presented key is found by its hash without a scan."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_permissions(permission: str) -> list[str]:
    """A key's permission as the API lists it: write implies read."""
    return ["read", "write"] if permission == "write" else ["read"]


def create_api_key(store: Store, *, name: str, permission: str, rate_limit: int | None = None) -> NewApiKey:
    """Generate a key with `read` or `write` permission; the store keeps only its hash."""
    if permission not in PERMISSIONS:
        raise UsageError(f"permission must be one of {', '.join(PERMISSIONS)}, not '{permission}'")
    if not name.strip():
        raise UsageError("a key needs a name")
    if rate_limit is not None and rate_limit < 1:
        raise UsageError("the rate limit must be at least 1 request a minute")
    key = API_KEY_PREFIX + pysecrets.token_urlsafe(32)
    row = store.add_api_key(name.strip(), hash_api_key(key), permission, rate_limit)
    return NewApiKey(str(row["id"]), str(row["name"]), key, key_permissions(permission), rate_limit)


def authenticate(store: Store, key: str) -> dict[str, Any] | None:
    """The key record for a presented key, read afresh; None when unknown or revoked."""
    row = store.api_key_by_hash(hash_api_key(key))
    return row if row is not None and row["revoked_at"] is None else None


def instance_id(container_id: str) -> str:
    """The API's id of a container: `inst_` + its short id."""
    return f"inst_{container_id[:12]}"


def list_instances(project: Project, *, engines: EngineFactory | None = None) -> Observed:
    """Every container of the project on every server: one list call per server."""
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import observe

    return observe(project.config.name, project.config.servers, None, engines=engines or Engine)


def find_instance(project: Project, ident: str, *, engines: EngineFactory | None = None) -> LiveContainer:
    """One of the project's containers by `inst_` id, container id (12+ hex digits) or name."""
    observed = list_instances(project, engines=engines)
    short = ident.removeprefix("inst_").lower()
    for state in observed.servers.values():
        for c in state.managed:
            if c.name == ident or (len(short) >= 12 and c.id.startswith(short)):
                return c
    down = [f"{n}: {s.error}" for n, s in sorted(observed.servers.items()) if not s.reachable]
    if down:
        raise DockerUnavailable(f"no instance '{ident}' on the servers that answered; " + "; ".join(down))
    raise NotFound(f"no instance '{ident}' in project '{project.config.name}'")


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
    c = find_instance(project, ident, engines=engines)
    store = open_store(ctx, project)
    try:
        mine = [d for d in desired_state(ctx, project, store=store).containers if d.definition == c.definition]
        held = any(d.name == c.name for d in mine)
        if held:  # recorded before the stop, so that a self-heal woken by the stop sees it
            store.hold(c.name, str(c.definition), definition_hash(mine))
        try:
            _on_server(project, c, engines, lambda e: e.stop(c.id, timeout=timeout))
        except SyncerError:
            if held:
                store.release(c.name)
            raise
    finally:
        store.close()
    _instance_event(ctx, project, "instance.stopped", c, held=held)
    return find_instance(project, c.id, engines=engines)


def _instance_event(ctx: Context, project: Project, kind: str, c: LiveContainer, **extra: Any) -> None:
    emit_event(ctx, project, kind, {"instance_id": instance_id(c.id), "container": c.name,
                                    "container_id": c.id[:12], "definition": c.definition, "server": c.server,
                                    "by": "api", **extra})


def _release_and(ctx: Context, project: Project, ident: str, engines: EngineFactory | None,
                 act: Callable[[Any, LiveContainer], Any]) -> LiveContainer:
    c = find_instance(project, ident, engines=engines)
    store = open_store(ctx, project)
    try:
        store.release(c.name)
    finally:
        store.close()
    _on_server(project, c, engines, lambda e: act(e, c))
    _instance_event(ctx, project, "instance.started", c)
    return find_instance(project, c.id, engines=engines)


def start_instance(ctx: Context, project: Project, ident: str, *,
                   engines: EngineFactory | None = None) -> LiveContainer:
    """Start a container, releasing an operator's hold (self-heal applies to it again)."""
    return _release_and(ctx, project, ident, engines, lambda e, c: e.start(c.id))


def restart_instance(ctx: Context, project: Project, ident: str, *, timeout: int = 10,
                     engines: EngineFactory | None = None) -> LiveContainer:
    """Restart a container (stopped or running), releasing an operator's hold."""
    return _release_and(ctx, project, ident, engines, lambda e, c: e.restart(c.id, timeout=timeout))


def instance_logs(ctx: Context, project: Project, ident: str, *, tail: int = 100, since: int | None = None,
                  engines: EngineFactory | None = None) -> tuple[LiveContainer, list[str]]:
    """A container's recent output lines (`<RFC 3339 time> <line>`), secret values masked."""
    c = find_instance(project, ident, engines=engines)
    text = _on_server(project, c, engines, lambda e: e.logs(c.id, tail=tail, since=since))
    values = secret_values(ctx, project)
    return c, [redact(line, values) for line in str(text).splitlines()]


def rollback_deployment(ctx: Context, deployment_id: str, *, options: ApplyOptions,
                        engines: EngineFactory | None = None) -> ApplyReport:
    """Undo one deployment: roll its definition back to the newest revision before the
    deployment's own that renders differently (the state that deployment replaced)."""
    store = state_store(ctx)
    try:
        dep = store.deployment(deployment_id)
        revisions = store.revisions(dep["definition"])
    finally:
        store.close()
    number = int(dep["revision"])
    current = next((r for r in revisions if r.number == number), None)
    older = [r for r in revisions if r.number < number and (current is None or r.def_hash != current.def_hash)]
    if not older:
        raise Conflict(f"deployment {deployment_id} put definition '{dep['definition']}' at revision {number};"
                       " there is no earlier revision to roll back to")
    return rollback(ctx, dep["definition"], to=older[0].number, options=options, confirm=lambda p: True,
                    engines=engines)


def _cpu_counters(stats: Mapping[str, Any]) -> tuple[int, int, int] | None:
    cpu = stats.get("cpu_stats") or {}
    total, system = (cpu.get("cpu_usage") or {}).get("total_usage"), cpu.get("system_cpu_usage")
    if not isinstance(total, int) or not isinstance(system, int):
        return None
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return total, system, int(cpus)


def cpu_percent(before: tuple[int, int, int] | None, after: tuple[int, int, int] | None) -> float | None:
    """Docker's CPU %: container CPU time over host CPU time between two readings, times CPUs."""
    if before is None or after is None or after[1] <= before[1] or after[0] < before[0]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]) * after[2] * 100.0, 3)


def memory_used(stats: Mapping[str, Any]) -> int | None:
    """Memory in use as `docker stats` shows it: usage minus the inactive page cache."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage")
    if not isinstance(usage, int):
        return None
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, usage - int(cache or 0))


class MetricSampler:
    """Reads CPU and memory of the project's running containers into the store.

    A one-shot stats reading carries cumulative CPU counters only, so a container's CPU %
    is the change since this sampler's previous reading of it (none on the first).
    """

    def __init__(self, *, engines: EngineFactory | None = None) -> None:
        self.engines = engines
        self.previous: dict[str, tuple[int, int, int]] = {}

    def sample(self, project: Project, store: Store) -> int:
        """One reading of every running container on every server; returns how many."""
        from syncer.adapters.docker import Engine
        from syncer.adapters.store import now as stamp

        at, rows, seen = stamp(), [], {}
        for server in project.config.servers.values():
            try:
                eng = (self.engines or Engine)(server)
            except SyncerError:
                continue  # unreachable this round; the next round tries again
            try:
                live = [c for c in eng.list_project(project.config.name) if c.state == "running" and c.definition]
                for c in live:
                    try:
                        stats = eng.stats(c.id)
                    except SyncerError:
                        continue  # gone between the list and the reading
                    counters = _cpu_counters(stats)
                    rows.append((str(c.definition), c.name, at, cpu_percent(self.previous.get(c.id), counters),
                                 memory_used(stats)))
                    if counters is not None:
                        seen[c.id] = counters
            except SyncerError:
                continue
            finally:
                eng.close()
        self.previous = seen
        store.add_samples(rows)
        return len(rows)
