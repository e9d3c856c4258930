"""`syncer status` and GET /status: per definition, where it runs, at which revision, and
whether it is in sync. A read: it never changes the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from syncer.core.model import Desired, Observed, Plan, Project
from syncer.core.record import Record, record
from syncer.engine.project import Context, Reuse, load, open_store, planned, state_store

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory


@record
class DefinitionStatus(Record):
    """One definition as `syncer status` reports it."""

    definition: str
    server: str
    revision: int
    containers: list[dict[str, Any]]
    in_sync: bool
    actions: list[str]
    status: str
    pinned: bool
    held_until: str | None = None  # watch holds its rolled-back spec until then (stages/backoff.py)


def status(ctx: Context, *, engines: EngineFactory | None = None, project: Project | None = None,
           reuse: Reuse | None = None) -> tuple[Project, list[DefinitionStatus], list[dict[str, Any]]]:
    """Per definition: server, revision, containers with state and health, in sync or drifted;
    per server: reachable or not (and why), and its engine's version.

    A server asking every second passes the `project` it holds (loaded when its files or HEAD
    changed) and a `Reuse`: the render and the plan are then made again only when the
    project, the live state or the store changed; Docker is asked every time, a registry
    never (`pull_policy: always` tags are followed by plan and apply)."""
    project = project if project is not None else load(ctx)
    store = open_store(ctx, project)
    try:
        # no registry is asked (tags=False): the dashboard asks every second, and a registry
        # counts manifest requests; a moved tag shows in the next plan, apply or resync
        p = planned(ctx, project, store, engines=engines, reuse=reuse, versions=True, tags=False)
        result, desired, observed = p.plan, p.desired, p.observed
        stored = {d["name"]: d for d in store.definitions()}
        pins = store.pins()
        held = _held(store.get_meta("held") or {})
    finally:
        store.close()

    def build() -> list[DefinitionStatus]:
        return _rows(result, desired, observed, stored, pins, held)

    # the same plan object is the same desired state (the plan is reused only then)
    out = reuse.same("status rows", project, (result, observed, stored, pins, held), build) if reuse else build()
    servers = [{"name": s.server, "reachable": s.reachable, "engine_version": s.engine_version or None,
                "error": s.error or None} for s in sorted(observed.servers.values(), key=lambda s: s.server)]
    return project, out, servers


def _held(remembered: Mapping[str, str]) -> dict[str, str]:
    """The holds a watch remembered that have not ended (one it stopped leaves them behind)."""
    from syncer.core.clock import epoch, now

    moment = now()
    return {name: until for name, until in remembered.items() if epoch(until) > moment}


def _rows(result: Plan, desired: Desired, observed: Observed, stored: dict[str, dict[str, Any]],
          pins: Mapping[str, Any], held: Mapping[str, str] = {}) -> list[DefinitionStatus]:
    """One row per definition, desired or live, by name."""
    live: dict[str, list[dict[str, Any]]] = {}
    for s in observed.servers.values():
        for c in s.managed:
            live.setdefault(c.definition or "?", []).append(
                {"name": c.name, "id": c.id[:12], "server": c.server, "state": c.state, "health": c.health,
                 "revision": int(c.labels.get("syncer.revision", "0") or 0),
                 # a finished job stays exited: its code, and Docker's "Exited (0) 5 minutes ago"
                 "exit_code": c.exit_code, "status": c.status})
    # grouped once: a scan of every action and container per definition was quadratic (8.9 s for 20k)
    actions: dict[str, list[Any]] = {}
    for a in result.actions:
        actions.setdefault(a.definition, []).append(a)
    where: dict[str, str] = {}
    for spec in desired.containers:
        where.setdefault(spec.definition, spec.server)
    out = []
    for name in sorted(set(where) | set(live)):
        acts = actions.get(name, [])
        changing = [f"{a.action} {a.container}" for a in acts if a.action != "noop"]
        server = where.get(name, acts[0].server if acts else "")
        revision = max((a.revision for a in acts if a.action != "remove"), default=0)
        out.append(DefinitionStatus(name, server, revision, sorted(live.get(name, []), key=lambda c: c["name"]),
                                    not changing, changing, stored.get(name, {}).get("status", "new"), name in pins,
                                    held.get(name) if changing else None))
    return out


def last_applied(ctx: Context) -> str | None:
    """The commit of the newest apply run (an apply validates first: a valid project's), for
    a status while the work tree is invalid; None outside git or before any apply."""
    store = state_store(ctx)
    try:
        rows = store.runs(1)
    finally:
        store.close()
    return str(rows[0]["commit_sha"]) if rows and rows[0].get("commit_sha") else None
