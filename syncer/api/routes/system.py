"""The system routes: health (no key), status, sync requests, Prometheus metrics."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from syncer import __version__
from syncer.api.routes.common import KEYED, Svc
from syncer.api.service import Service, SyncTracker
from syncer.core import clock
from syncer.core.errors import NotFound, SyncerError
from syncer.engine.requests import Kind

router = APIRouter()
log = logging.getLogger("syncer.api.app")


class Health(BaseModel):
    """The seed's health body, with no envelope (load balancers and HEALTHCHECKs read `status`)."""

    status: Literal["healthy", "unhealthy"]
    version: str
    timestamp: str = Field(description="Now, ISO 8601 UTC")


@router.get("/health", tags=["system"], summary="Is the API up (no key needed)", response_model=Health,
            responses={503: {"model": Health, "description": "unhealthy: the state database cannot be read"}})
async def health(svc: Svc) -> Response:
    """`{"status", "version", "timestamp"}` with no envelope: 200 `healthy`, or 503 `unhealthy`
    when the state database cannot be read. Touches no Docker server; reads the store on a
    connection of its own, so it never waits behind another request."""
    problem = await run_in_threadpool(svc.health.problem)
    if problem is not None:
        log.warning("health: %s", problem)
    body = {"status": "unhealthy" if problem else "healthy", "version": __version__, "timestamp": clock.iso()}
    return Response(json.dumps(body, separators=(",", ":")), 503 if problem else 200, media_type="application/json")


@router.get("/status", tags=["system"], summary="Commit, last apply, drift per definition", dependencies=KEYED)
def status(svc: Svc) -> Response:
    """The commit of the work tree, the last commit a sync saw, the last apply run, drift per
    definition (computed at most once a second), and validation problems, now and last seen."""
    try:
        snap: Any = svc.status.get()
    except SyncerError as exc:
        snap = exc
    problems = svc.project.problems
    # the same snapshot, store and secrets: the same bytes (10k definitions take long to render)
    key = (snap, svc.project.redactor(), svc.state.version(), json.dumps(problems))
    cached = svc.rendered.get("status")
    if cached is not None and all(a is b or a == b for a, b in zip(cached[0], key, strict=True)):
        return Response(cached[1], media_type="application/json")
    response = _status(svc, snap, problems)
    svc.rendered["status"] = (key, bytes(response.body))
    return response


def _status(svc: Service, snap: dict[str, Any] | SyncerError, problems: list[str] | None) -> Response:
    out: dict[str, Any] = {"project": None, "commit": None, "commit_message": None, "dirty": None,
                           "last_commit_seen": svc.state.meta("last_commit"),
                           "last_apply": svc.state.last_run(),
                           "last_validation_error": svc.state.meta("last_validation_error"),
                           "validation_error": problems, "in_sync": None, "drifted": None,
                           "definitions": [], "servers": [], "checked_at": None, "error": None}
    if isinstance(snap, SyncerError):
        exc = snap
        out["error"] = {"code": exc.code, "message": str(exc).splitlines()[0] if str(exc) else exc.code,
                        "details": exc.lines()}
        return svc.ok(out)
    project = snap["project"]
    out.update(project=project.config.name, commit=project.commit, commit_message=project.commit_message or None,
               dirty=project.dirty, checked_at=snap["at"])
    definitions, out["drifted"] = _definitions(svc, snap["rows"])
    out["in_sync"] = out["drifted"] == 0
    out["servers"] = [{"server_id": f"srv_{s['name']}", **s} for s in snap["servers"]]
    # the definitions' JSON (most of the answer) is spliced in where this one-off mark is
    out["definitions"] = _MARK
    whole, mark = svc.serialise({"success": True, "data": out}), json.dumps(_MARK).encode()
    if whole.count(mark) != 1:  # a secret value inside the mark masked it: the long way
        out["definitions"] = json.loads(definitions)
        return svc.ok(out)
    return Response(whole.replace(mark, definitions), media_type="application/json")


_MARK = f"syncer-definitions-{secrets.token_hex(16)}"


def _definitions(svc: Service, rows: list[Any]) -> tuple[bytes, int]:
    """The status's definitions as JSON, and how many drifted: made again only when the
    snapshot's rows, the store's ids or the secrets changed (the store changes every second a
    key is used, and 10k definitions take 40 ms to make)."""
    ids, redactor = svc.state.definition_ids(), svc.project.redactor()
    cached = svc.listed.get("status definitions")
    if cached is not None and cached[0] is rows and cached[1] == ids and cached[2] == redactor:
        return cached[3], cached[4]
    items = [{"definition_id": ids.get(r.definition), "name": r.definition,
              "server_id": f"srv_{r.server}" if r.server else None, "server": r.server or None,
              "revision": r.revision or None, "status": r.status, "pinned": r.pinned,
              "in_sync": r.in_sync, "drift": r.actions, "containers": len(r.containers)} for r in rows]
    made = (svc.serialise(items), sum(1 for d in items if not d["in_sync"]))
    svc.listed["status definitions"] = (rows, ids, redactor, *made)
    return made


class SyncBody(BaseModel):
    """An optional body for POST /sync."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=200, description="Why (kept in the log)")


@router.post("/sync", status_code=202, tags=["system"], summary="Sync the whole project now", dependencies=KEYED)
def sync(svc: Svc, body: Annotated[SyncBody | None, Body()] = None) -> Response:
    """Queue a full sync (plan and apply every definition); 202 with the request id. Requests
    made while a sync runs are served by exactly one follow-up sync."""
    reason = f"api: {body.reason}" if body is not None and body.reason else "api: POST /sync"
    ident = svc.sync.request(reason, kind=Kind.API)
    return svc.ok({"request_id": ident, "status": "queued", "definition": None, "requested_at": clock.iso()},
                  status=202)


@router.get("/sync/{request_id}", tags=["system"], summary="What became of a sync request", dependencies=KEYED)
def sync_request(svc: Svc, request_id: str) -> Response:
    """queued, running, success or failed, with the apply run ids and the commit (when this
    server ran it). Every request served by the same sync answers with its outcome."""
    record = svc.sync.describe(request_id) if isinstance(svc.sync, SyncTracker) else None
    if record is None:
        raise NotFound(f"no sync request '{request_id}' known to this server")
    return svc.ok(record)


@router.get("/metrics", tags=["system"], summary="Prometheus metrics (text format)", dependencies=KEYED,
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(svc: Svc) -> Response:
    """Applies and deployments by status, plan and apply durations, drifted definitions,
    containers by state, webhook deliveries by outcome, HTTP requests by route and status."""
    text, content_type = svc.metrics.render()
    return Response(text, media_type=content_type)
