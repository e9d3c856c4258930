"""The system routes: health (no key), status, sync requests, Prometheus metrics."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from syncer import __version__
from syncer.api.routes.common import KEYED, Paging, Svc
from syncer.api.service import Page, Service, SyncTracker
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
            responses={503: {"model": Health, "description": "unhealthy: the state database cannot be read,"
                                                             " or another process holds its write lock"}})
async def health(svc: Svc) -> Response:
    """`{"status", "version", "timestamp"}` with no envelope: 200 `healthy`, or 503 `unhealthy`
    when the state database cannot be read or written (another process holds its write lock:
    every write would wait, then fail). Touches no Docker server; asks the store on a
    connection of its own, so it never waits behind another request, and waits a second at
    most for the write lock. The reason is logged once when it begins, and its end."""
    problem = await run_in_threadpool(svc.health.problem)
    _log_change(svc, problem)
    body = {"status": "unhealthy" if problem else "healthy", "version": __version__, "timestamp": clock.iso()}
    return Response(json.dumps(body, separators=(",", ":")), 503 if problem else 200, media_type="application/json")


def _log_change(svc: Service, problem: str | None) -> None:
    """A warning when /health turns unhealthy (or for another reason), a line when it is
    healthy again: not one per probe (a load balancer asks every few seconds)."""
    if problem == svc.health_problem:
        return
    svc.health_problem = problem
    if problem is not None:
        log.warning("health: unhealthy: %s", problem)
    else:
        log.info("health: healthy again")


@router.get("/status", tags=["system"], summary="Commit, last apply, drift per definition (paginated)",
            dependencies=KEYED)
def status(svc: Svc, page: Paging, drift: Annotated[bool | None, Query(
        description="true: only the drifted definitions; false: only those in sync")] = None) -> Response:
    """The commit of the work tree, the last commit a sync saw, the last apply run, validation
    problems (now and last seen), the counts of definitions per drift state and per status
    (over all of them), and one page of the per-definition drift rows (`page`, `per_page` and
    `pagination` as in GET /definitions; by name). Drift is computed at most once a second."""
    try:
        snap: Any = svc.status.get()
    except SyncerError as exc:
        snap = exc
    problems = svc.project.problems
    # the same snapshot, store and secrets: the same bytes per page (a dashboard asks again and again)
    key = (snap, svc.project.redactor(), svc.state.version(), json.dumps(problems))
    pages = svc.listed.get("status pages")
    if pages is None or not all(a is b or a == b for a, b in zip(pages[0], key, strict=True)):
        pages = svc.listed["status pages"] = (key, {})
    wanted = (page.page, page.per_page, drift)
    if wanted in pages[1]:
        return Response(pages[1][wanted], media_type="application/json")
    response = _status(svc, snap, problems, page, drift)
    if len(pages[1]) < PAGES_KEPT:
        pages[1][wanted] = bytes(response.body)
    return response


def _status(svc: Service, snap: dict[str, Any] | SyncerError, problems: list[str] | None, page: Page,
            drift: bool | None) -> Response:
    out: dict[str, Any] = {"project": None, "commit": None, "commit_message": None, "dirty": None,
                           "last_commit_seen": svc.state.meta("last_commit"),
                           "last_apply": svc.state.last_run(),
                           "last_validation_error": svc.state.meta("last_validation_error"),
                           "validation_error": problems, "in_sync": None, "drifted": None,
                           "counts": None, "definitions": [], "servers": [], "checked_at": None, "error": None}
    if isinstance(snap, SyncerError):
        exc = snap
        out["error"] = {"code": exc.code, "message": str(exc).splitlines()[0] if str(exc) else exc.code,
                        "details": exc.lines()}
        return svc.ok(out, page=page, total=0)
    project = snap["project"]
    out.update(project=project.config.name, commit=project.commit, commit_message=project.commit_message or None,
               dirty=project.dirty, checked_at=snap["at"])
    rows, drifted, in_sync, out["counts"] = _summary(svc, snap["rows"])
    out["drifted"], out["in_sync"] = len(drifted), not drifted
    out["servers"] = [{"server_id": f"srv_{s['name']}", **s} for s in snap["servers"]]
    chosen = rows if drift is None else drifted if drift else in_sync
    ids = _ids(svc)
    # only this page's rows are made (10k of them took 40 ms and 1.8 MB)
    out["definitions"] = [{"definition_id": ids.get(r.definition), "name": r.definition,
                           "server_id": f"srv_{r.server}" if r.server else None, "server": r.server or None,
                           "revision": r.revision or None, "status": r.status, "pinned": r.pinned,
                           "held_until": r.held_until,
                           "in_sync": r.in_sync, "drift": r.actions, "containers": len(r.containers)}
                          for r in page.cut(chosen)]
    return svc.ok(out, page=page, total=len(chosen))


PAGES_KEPT = 64  # distinct pages and filters kept per snapshot and store state


def _summary(svc: Service, rows: list[Any]) -> tuple[list[Any], list[Any], list[Any], dict[str, Any]]:
    """The rows, the drifted ones, the ones in sync, and the counts per drift state and per
    status: made once per snapshot (the snapshot's rows are a new list only when recomputed)."""
    cached = svc.listed.get("status summary")
    if cached is not None and cached[0] is rows:
        return cached[1]  # type: ignore[no-any-return]
    drifted = [r for r in rows if not r.in_sync]
    in_sync = [r for r in rows if r.in_sync]
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    made = (rows, drifted, in_sync, {"definitions": len(rows), "in_sync": len(in_sync), "drifted": len(drifted),
                                     "by_status": dict(sorted(by_status.items()))})
    svc.listed["status summary"] = (rows, made)
    return made


def _ids(svc: Service) -> dict[str, str]:
    """Definition name -> `def_` id, read again only when the store changed."""
    version = svc.state.version()
    cached = svc.listed.get("definition ids")
    if cached is not None and cached[0] == version:
        return cached[1]  # type: ignore[no-any-return]
    ids = svc.state.definition_ids()
    svc.listed["definition ids"] = (version, ids)
    return ids


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
