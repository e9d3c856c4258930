"""The API's resources, with the seeds' id prefixes: templates (tpl_), definitions (def_),
instances (inst_), servers (srv_), deployments (deploy_). Thin over the engine and the
store; every list is paginated (`page`, `per_page` up to 100).

Ids: a template's is `tpl_` + 12 hex digits of the SHA-256 of `id@version`; a definition's
is the store's `def_…` (given when it is first applied; until then it is addressed by
name, which every `{id}` also accepts); an instance's is `inst_` + the short container id
(a container's name and id work too); a server's is `srv_` + its name.
"""

from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from syncer.engine import operations
from syncer.api.core import Page, Service, iso, service_of
from syncer.core.errors import NotFound, SyncerError, UsageError
from syncer.core.labels import container_name
from syncer.core.model import Definition, LiveContainer, Project, Server, Template

router = APIRouter()
Svc = Annotated[Service, Depends(service_of)]


async def paging(page: Annotated[int, Query(ge=1, le=1_000_000, description="Page, from 1")] = 1,
           per_page: Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100)")] = 20) -> Page:
    """The `page` and `per_page` query parameters."""
    return Page(page, per_page)


Paging = Annotated[Page, Depends(paging)]


def _listing(svc: Service, items: list[Any], page: Page) -> Response:
    return svc.ok(page.cut(items), page=page, total=len(items))


# --- templates -------------------------------------------------------------------------------

def template_id(t: Template) -> str:
    """`tpl_` + 12 hex digits of the SHA-256 of `id@version`: stable across restarts and hosts."""
    return "tpl_" + hashlib.sha256(t.ref.encode("utf-8")).hexdigest()[:12]


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.\-+]", version))


def _template(t: Template, *, detail: bool = False) -> dict[str, Any]:
    out = {"id": template_id(t), "template": t.id, "ref": t.ref, "name": t.name, "version": t.version,
           "description": t.description, "taxonomy": dict(t.taxonomy), "deprecated": t.deprecated,
           "spec_hash": t.spec_hash, "file": t.origin.file}
    if detail:
        out.update(spec=t.spec, inputs=t.inputs, profiles=t.profiles, profile_names=sorted(t.profiles))
    return out


def find_template(project: Project, ident: str) -> Template:
    """By `tpl_` id, `id@version`, or plain id (its highest version)."""
    matches = [t for t in project.templates if ident in (template_id(t), t.ref)]
    if not matches:
        matches = sorted((t for t in project.templates if t.id == ident), key=lambda t: _version_key(t.version))
    if not matches:
        raise NotFound(f"no template '{ident}'")
    return matches[-1]


@router.get("/templates", tags=["templates"], summary="The template catalog")
def list_templates(svc: Svc, page: Paging, kingdom: str | None = None, family: str | None = None,
                   species: str | None = None) -> Response:
    """Templates, filtered on their taxonomy."""
    wanted = {k: v for k, v in (("kingdom", kingdom), ("family", family), ("species", species)) if v is not None}
    items = [_template(t) for t in sorted(svc.defined().templates, key=lambda t: (t.id, _version_key(t.version)))
             if all(t.taxonomy.get(k) == v for k, v in wanted.items())]
    return _listing(svc, items, page)


@router.get("/templates/{template_id}", tags=["templates"], summary="One template with its spec")
def get_template(svc: Svc, template_id: str) -> Response:
    """Spec, inputs (JSON Schema), profiles and spec_hash."""
    return svc.ok(_template(find_template(svc.defined(), template_id), detail=True))


# --- definitions ------------------------------------------------------------------------------

def definition_ids(svc: Service) -> dict[str, str]:
    """Definition name → its `def_` id, for those the store knows."""
    return {str(d["name"]): str(d["id"]) for d in svc.store.definitions()}


def resolve_definition(svc: Service, ident: str) -> tuple[str, Definition | None, dict[str, Any] | None]:
    """(name, the project's definition, the store's row) for a `def_` id or a name."""
    rows = {str(d["name"]): d for d in svc.store.definitions()}
    row = next((r for r in rows.values() if r["id"] == ident), None) or rows.get(ident)
    name = str(row["name"]) if row is not None else ident
    d = svc.defined().definition(name)
    if d is None and row is None:
        raise NotFound(f"no definition '{ident}'")
    return name, d, row


def _params(d: Definition, project: Project) -> dict[str, Any]:
    """Params as written, a literal value of a secret input shown as ***."""
    tpl = next((t for t in project.templates if t.id == d.template and t.version == (d.template_version or t.version)),
               None)
    secret = tpl.secret_inputs() if tpl is not None else frozenset()
    return {k: ("***" if k in secret and not (isinstance(v, dict) and set(v) == {"secret"}) else v)
            for k, v in d.params.items()}


def _definition(svc: Service, project: Project, name: str, d: Definition | None, row: dict[str, Any] | None,
                pins: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
    tpl = None
    if d is not None:
        try:
            tpl = find_template(project, f"{d.template}@{d.template_version}" if d.template_version else d.template)
        except NotFound:
            tpl = None
    server = d.server if d is not None else (row or {}).get("server")
    out: dict[str, Any] = {
        "id": row["id"] if row else None, "name": name,
        "template_id": template_id(tpl) if tpl else None,
        "template": tpl.ref if tpl else (row or {}).get("template"),
        "server_id": f"srv_{server}" if server else None, "server": server,
        "profile": d.profile if d else None, "replicas": (d.replicas or 1) if d else None,
        "status": row["status"] if row else "pending", "current_revision": row["current_revision"] if row else None,
        "container_name": name, "pinned": name in pins, "in_repository": d is not None,
        "file": d.origin.file if d else None,
        "created_at": row["created_at"] if row else None, "updated_at": row["updated_at"] if row else None}
    if detail and d is not None:
        out.update(params=_params(d, project), depends_on=list(d.depends_on), overrides=d.overrides,
                   containers=[container_name(name, i) for i in range(1, (d.replicas or 1) + 1)])
    return out


@router.get("/definitions", tags=["definitions"], summary="Definitions in git and in the store")
def list_definitions(svc: Svc, page: Paging, server_id: str | None = None, status: str | None = None) -> Response:
    """Every definition of the repository, and those the store remembers (removed ones too)."""
    project, pins = svc.defined(), svc.store.pins()
    rows = {str(r["name"]): r for r in svc.store.definitions()}
    names = sorted({d.name for d in project.definitions} | set(rows))
    items = [_definition(svc, project, n, project.definition(n), rows.get(n), pins) for n in names]
    if server_id is not None:
        items = [i for i in items if server_id in (i["server_id"], i["server"])]
    if status is not None:
        items = [i for i in items if i["status"] == status]
    return _listing(svc, items, page)


@router.get("/definitions/{definition_id}", tags=["definitions"], summary="One definition")
def get_definition(svc: Svc, definition_id: str) -> Response:
    """With params (secret values never shown), depends_on, overrides and container names."""
    name, d, row = resolve_definition(svc, definition_id)
    return svc.ok(_definition(svc, svc.defined(), name, d, row, svc.store.pins(), detail=True))


@router.get("/definitions/{definition_id}/revisions", tags=["definitions"], summary="A definition's revisions")
def definition_revisions(svc: Svc, definition_id: str, page: Paging) -> Response:
    """Newest first; specs hold secrets as keyed references only."""
    from syncer.cli.views import revision_dict

    name, _, _ = resolve_definition(svc, definition_id)
    return _listing(svc, [revision_dict(r) for r in svc.store.revisions(name)], page)


INTERVALS = {"1m": 60, "5m": 300, "1h": 3600}


def _utc(at: datetime) -> datetime:
    """A time as UTC (naive times are taken as UTC); out of range is the client's error."""
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise UsageError(f"time {at.isoformat()} is out of range") from None


def _stamp(at: datetime) -> str:
    """As the store writes times (sortable text, milliseconds, Z)."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@router.get("/definitions/{definition_id}/metrics", tags=["definitions"], summary="CPU % and memory over time")
def definition_metrics(svc: Svc, definition_id: str, start_time: datetime | None = None,
                       end_time: datetime | None = None, interval: Literal["1m", "5m", "1h"] = "1m") -> Response:
    """Series of the definition's containers (summed over replicas), averaged per interval.

    ISO 8601 times; default the last hour. Sampled by the serving process (`--sample-interval`).
    """
    name, _, row = resolve_definition(svc, definition_id)
    end = _utc(end_time) if end_time else datetime.now(UTC)
    try:
        start = _utc(start_time) if start_time else end - timedelta(hours=1)
    except OverflowError:
        raise UsageError("end_time is too early") from None
    step = INTERVALS[interval]
    if start >= end:
        raise UsageError("start_time must be before end_time")
    if (end - start).total_seconds() / step > 2000:
        raise UsageError("more than 2000 points: shorten the window or widen the interval")
    buckets: dict[int, dict[str, list[tuple[float | None, int | None]]]] = {}
    for s in svc.store.samples(name, _stamp(start), _stamp(end)):
        at = datetime.fromisoformat(s["at"]).timestamp()
        slot = buckets.setdefault(int(at // step * step), {})
        slot.setdefault(s["container"], []).append((s["cpu_percent"], s["memory_bytes"]))
    cpu, memory = [], []
    for slot_at in sorted(buckets):
        per_container = buckets[slot_at].values()
        stamp = iso(slot_at)
        cpus = [_mean([c for c, _ in v]) for v in per_container]
        mems = [_mean([m for _, m in v]) for v in per_container]
        if any(c is not None for c in cpus):
            cpu.append({"timestamp": stamp, "value": round(sum(c for c in cpus if c is not None), 3)})
        if any(m is not None for m in mems):
            memory.append({"timestamp": stamp, "value": int(sum(m for m in mems if m is not None))})
    return svc.ok({"definition_id": row["id"] if row else None, "definition": name, "interval": interval,
                   "start_time": iso(start), "end_time": iso(end),
                   "metrics": {"cpu": {"unit": "percent", "values": cpu},
                               "memory": {"unit": "bytes", "values": memory}}})


def _mean(values: list[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


# --- instances ------------------------------------------------------------------------------------

_UP = re.compile(r"^Up (?:(Less than a second)|About an? (minute|hour)|(\d+) (second|minute|hour|day|week|month|year)s?)")
_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000,
         "year": 31536000}


def uptime_from_status(status: str) -> int | None:
    """Seconds up, as precise as the engine's list (`Up 5 minutes`) says; None when not up."""
    m = _UP.match(status)
    if m is None:
        return None
    if m.group(1):
        return 0
    if m.group(2):
        return _UNIT[m.group(2)]
    return int(m.group(3)) * _UNIT[m.group(4)]


def _instance(c: LiveContainer, ids: dict[str, str], held: set[str], now: float) -> dict[str, Any]:
    up = uptime_from_status(c.status) if c.state in ("running", "paused", "restarting") else None
    return {"id": operations.instance_id(c.id), "container_id": c.id[:12], "container_name": c.name,
            "definition_id": ids.get(c.definition or ""), "definition": c.definition,
            "server_id": f"srv_{c.server}", "server": c.server, "replica": c.replica,
            "revision": int(c.labels.get("syncer.revision", "0") or 0) or None, "status": c.state,
            "health": c.health, "held_stopped": c.name in held, "created_at": iso(c.created) if c.created else None,
            "started_at": iso(now - up) if up is not None else None, "uptime_seconds": up}


def _precise(inst: dict[str, Any], record: dict[str, Any], now: float) -> dict[str, Any]:
    """started_at and uptime from an inspect, to the second."""
    state = record.get("State") or {}
    raw = re.sub(r"(\.\d{6})\d+", r"\1", str(state.get("StartedAt") or ""))
    try:
        started = datetime.fromisoformat(raw)
    except ValueError:
        return inst
    running = bool(state.get("Running"))
    inst.update(started_at=iso(started) if started.year > 1 else None,
                uptime_seconds=max(0, int(now - started.timestamp())) if running else None,
                image=(record.get("Config") or {}).get("Image"), restart_count=record.get("RestartCount"))
    return inst


@router.get("/instances", tags=["instances"], summary="The project's containers")
def list_instances(svc: Svc, page: Paging, definition_id: str | None = None, server_id: str | None = None,
                   status: str | None = None) -> Response:
    """One list call per server, made after the request arrived (simultaneous requests share
    one). `started_at`/`uptime_seconds` are as precise as the engine's list says
    (`Up 5 minutes`); GET /instances/{id} gives them to the second."""
    observed = svc.instances.get()
    down = [f"{n}: {s.error}" for n, s in sorted(observed.servers.items()) if not s.reachable]
    if down and len(down) == len(observed.servers):
        from syncer.core.errors import DockerUnavailable

        raise DockerUnavailable("; ".join(down))
    ids, held, now = definition_ids(svc), set(svc.store.holds()), time.time()
    items = [_instance(c, ids, held, now) for s in observed.servers.values() for c in s.managed]
    items.sort(key=lambda i: (i["server"], i["container_name"]))
    if definition_id is not None:
        items = [i for i in items if definition_id in (i["definition_id"], i["definition"])]
    if server_id is not None:
        items = [i for i in items if server_id in (i["server_id"], i["server"])]
    if status is not None:
        items = [i for i in items if i["status"] == status]
    return _listing(svc, items, page)


def _one(svc: Service, c: LiveContainer, *, precise: bool = True) -> dict[str, Any]:
    inst = _instance(c, definition_ids(svc), set(svc.store.holds()), time.time())
    server = svc.defined().config.servers.get(c.server)
    if precise and server is not None:
        eng = svc.engines(server)
        try:
            inst = _precise(inst, eng.inspect(c.id), time.time())
        finally:
            eng.close()
    return inst


@router.get("/instances/{instance_id}", tags=["instances"], summary="One container")
def get_instance(svc: Svc, instance_id: str) -> Response:
    """By `inst_` id, container id or name; started_at to the second."""
    return svc.ok(_one(svc, operations.find_instance(svc.defined(), instance_id, engines=svc.engines)))


Timeout = Annotated[int, Query(ge=0, le=600, description="Seconds to stop gracefully before a kill")]


@router.post("/instances/{instance_id}/stop", tags=["instances"], summary="Stop and hold stopped")
def stop_instance(svc: Svc, instance_id: str, timeout: Timeout = 10) -> Response:
    """Stops the container and records it as held stopped: syncs and self-heal leave it
    stopped until it is started through syncer or its definition changes."""
    c = operations.stop_instance(svc.ctx, svc.defined(), instance_id, timeout=timeout, engines=svc.engines)
    return svc.ok(_one(svc, c))


@router.post("/instances/{instance_id}/start", tags=["instances"], summary="Start (releases a hold)")
def start_instance(svc: Svc, instance_id: str) -> Response:
    """Starts the container; syncs and self-heal look after it again."""
    return svc.ok(_one(svc, operations.start_instance(svc.ctx, svc.defined(), instance_id, engines=svc.engines)))


@router.post("/instances/{instance_id}/restart", tags=["instances"], summary="Restart (releases a hold)")
def restart_instance(svc: Svc, instance_id: str, timeout: Timeout = 10) -> Response:
    """Restarts the container (starting it if stopped)."""
    c = operations.restart_instance(svc.ctx, svc.defined(), instance_id, timeout=timeout, engines=svc.engines)
    return svc.ok(_one(svc, c))


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s(.*)$")


@router.get("/instances/{instance_id}/logs", tags=["instances"], summary="A container's output")
def instance_logs(svc: Svc, instance_id: str,
                  tail: Annotated[int, Query(ge=1, le=10000, description="Last N lines")] = 100,
                  since: Annotated[datetime | None, Query(description="Only lines after (ISO 8601)")] = None
                  ) -> Response:
    """stdout and stderr lines with their timestamps; secret values masked."""
    start = max(0, int(_utc(since).timestamp())) if since is not None else None
    c, lines = operations.instance_logs(svc.ctx, svc.defined(), instance_id, tail=tail, since=start, engines=svc.engines)
    out = []
    for line in lines:
        m = _LOG_LINE.match(line)
        out.append({"timestamp": m.group(1), "line": m.group(2)} if m else {"timestamp": None, "line": line})
    return svc.ok({"instance_id": operations.instance_id(c.id), "container_name": c.name, "lines": out})


# --- servers ------------------------------------------------------------------------------------------

def _server(svc: Service, project: Project, server: Server) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f"srv_{server.name}", "name": server.name,
                           "docker": server.docker or "DOCKER_HOST or the local socket",
                           "environment": server.environment, "description": server.description,
                           "reachable": False, "engine_version": None, "api_version": None, "error": None,
                           "containers": {"total": 0}}
    try:
        eng = svc.engines(server)
        try:
            version = eng.version()
            live = eng.list_project(project.config.name)
        finally:
            eng.close()
    except SyncerError as exc:
        out["error"] = str(exc)
        return out
    counts: dict[str, int] = {"total": len(live), "running": 0, "exited": 0, "created": 0}
    for c in live:
        counts[c.state or "unknown"] = counts.get(c.state or "unknown", 0) + 1
    out.update(reachable=True, engine_version=version.get("Version"), api_version=version.get("ApiVersion"),
               os=version.get("Os"), arch=version.get("Arch"), containers=counts)
    return out


def _servers(svc: Service) -> list[dict[str, Any]]:
    project = svc.defined()
    servers = sorted(project.config.servers.values(), key=lambda s: s.name)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
        return list(pool.map(lambda s: _server(svc, project, s), servers))


@router.get("/servers", tags=["servers"], summary="Docker servers")
def list_servers(svc: Svc, page: Paging) -> Response:
    """Reachability, engine version and the project's containers by state, per server."""
    return _listing(svc, _servers(svc), page)


@router.get("/servers/{server_id}", tags=["servers"], summary="One Docker server")
def get_server(svc: Svc, server_id: str) -> Response:
    """By `srv_` id or name."""
    project = svc.defined()
    server = project.config.servers.get(server_id.removeprefix("srv_")) or project.config.servers.get(server_id)
    if server is None:
        raise NotFound(f"no server '{server_id}'")
    return svc.ok(_server(svc, project, server))


# --- deployments ----------------------------------------------------------------------------------------

def _deployment(d: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    return {**d, "definition_id": ids.get(d["definition"]), "server_id": f"srv_{d['server']}"}


Status = Literal["pending", "running", "success", "failed"]


@router.get("/deployments", tags=["deployments"], summary="Deployment history")
def list_deployments(svc: Svc, page: Paging, definition_id: str | None = None,
                     status: Annotated[Status | None, Query()] = None) -> Response:
    """Newest first."""
    name = resolve_definition(svc, definition_id)[0] if definition_id is not None else None
    rows = svc.store.deployments(definition=name, status=status, limit=page.per_page, offset=page.offset)
    total = svc.store.count_deployments(definition=name, status=status)
    ids = definition_ids(svc)
    return svc.ok([_deployment(r, ids) for r in rows], page=page, total=total)


@router.get("/deployments/{deployment_id}", tags=["deployments"], summary="One deployment with its log")
def get_deployment(svc: Svc, deployment_id: str) -> Response:
    """With its log lines (secret values never recorded)."""
    return svc.ok(_deployment(svc.store.deployment(deployment_id), definition_ids(svc)))


class DeploymentBody(BaseModel):
    """POST /deployments."""

    model_config = ConfigDict(extra="forbid")
    definition_id: str = Field(min_length=1, max_length=300, description="A `def_` id or a definition name")


@router.post("/deployments", status_code=202, tags=["deployments"], summary="Deploy one definition now")
def create_deployment(svc: Svc, body: DeploymentBody) -> Response:
    """Queues a sync of that definition alone (202 with the request id). The deployment
    record appears in GET /deployments when the apply starts, if anything needs changing."""
    name, d, row = resolve_definition(svc, body.definition_id)
    if d is None:
        raise NotFound(f"definition '{name}' is no longer in the repository: there is nothing to deploy")
    ident = svc.sync.request(f"api: POST /deployments {name}", definition=name)
    return svc.ok({"request_id": ident, "definition_id": row["id"] if row else None, "definition": name,
                   "server_id": f"srv_{d.server}", "status": "queued", "requested_at": iso(time.time())},
                  status=202)


@router.post("/deployments/{deployment_id}/rollback", tags=["deployments"], summary="Undo a deployment")
def rollback_deployment(svc: Svc, deployment_id: str) -> Response:
    """Deploys the definition's revision from before this deployment again, as a new revision
    pinned until git changes the definition. Runs before answering (200 with the deployments
    it made; 409 when another apply holds the lock or there is nothing to roll back to)."""
    from syncer.engine.apply import ApplyOptions
    from syncer.cli.views import apply_dict

    report = operations.rollback_deployment(svc.ctx, deployment_id, options=ApplyOptions(), engines=svc.engines)
    return svc.ok(apply_dict(report))


# --- outgoing webhook deliveries -------------------------------------------------------------------------

def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery with its body parsed (under `payload`) and its attempts."""
    import json

    out = {k: v for k, v in row.items() if k != "body"}
    try:
        out["payload"] = json.loads(row.get("body") or "null")
    except ValueError:
        out["payload"] = None
    return out


DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]


@router.get("/webhooks/deliveries", tags=["webhooks"], summary="Outgoing webhook deliveries")
def list_deliveries(svc: Svc, page: Paging, status: Annotated[DeliveryStatus | None, Query()] = None) -> Response:
    """Newest first, each with its attempts (time, HTTP status or error, duration)."""
    rows = svc.store.deliveries(status=status, limit=page.per_page, offset=page.offset)
    return svc.ok([_delivery(r) for r in rows], page=page, total=svc.store.count_deliveries(status=status))


@router.get("/webhooks/deliveries/{delivery_id}", tags=["webhooks"], summary="One webhook delivery")
def get_delivery(svc: Svc, delivery_id: str) -> Response:
    """With its attempts and the body as sent."""
    return svc.ok(_delivery(svc.store.delivery(delivery_id)))


# --- helpers for the system routes ----------------------------------------------------------------------

def tracked_branch(svc: Service, project: Project) -> str:
    """The branch whose pushes trigger a sync: the app's, syncer.yaml's `api.branch`, or the
    branch checked out (what `watch` follows), else main."""
    if svc.branch:
        return svc.branch
    api = project.config.raw.get("api")
    if isinstance(api, dict) and isinstance(api.get("branch"), str):
        return str(api["branch"])
    from syncer.adapters import git as gitsource

    return gitsource.current_branch(svc.ctx.root()) or "main"
