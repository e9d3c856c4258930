"""The HTTP API: FastAPI under /api/v1, thin over the engine.

Every answer is an envelope: `{"success": true, "data": ..., "pagination": {...}}` or
`{"success": false, "error": {"code", "message", "details"}}`, whatever went wrong
(malformed JSON, validation, unknown route, wrong method, a bug: never a stack trace).
Status codes: invalid_request 400 (every problem with what the client sent, validation
included; 405 and 413 keep their status), unauthorized 401, forbidden 403, not_found 404,
conflict 409, rate_limited 429, internal_error 500 (503 when Docker cannot be reached).

Auth: `Authorization: Bearer <key>` on everything except /health, the OpenAPI document
and its docs page, and /hooks/git (which the git provider signs instead). /metrics takes
a key too (a read key: Prometheus sends it as a bearer token). Any method but GET needs
a write key. Each key has a fixed one-minute window of requests (100 unless syncer.yaml's
`api.rate_limit` or the key's own limit says otherwise), told in X-RateLimit-* headers.

Long work does not run in a request: POST /sync and POST /deployments queue a sync with
the SyncRequester (202 + request id). Rollback is the exception: it answers 200 with the
deployments it made, because an operator undoing a deployment wants to know it worked.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from syncer import __version__
from syncer.api.routes import resources as api_resources
from syncer.engine import facade as engine
from syncer.stages import hooks
from syncer.engine import operations
from syncer.api.core import (
    ERROR_STATUS,
    BackgroundSync,
    Sampler,
    ServerHandle,
    Service,
    SyncRequester,
    SyncTracker,
    iso,
    parse_listen,
    serve_in_thread,
    service_from,
    service_of,
)
from syncer.core.errors import DockerUnavailable, NotFound, SyncerError

__all__ = ["API", "SyncRequester", "ServerHandle", "create_app", "parse_listen", "serve_in_thread"]

log = logging.getLogger("syncer.api.app")

API = "/api/v1"
PUBLIC = frozenset({f"{API}/health", f"{API}/openapi.json", f"{API}/docs", f"{API}/docs/oauth2-redirect",
                    f"{API}/hooks/git"})

Svc = Annotated[Service, Depends(service_of)]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


def create_app(ctx: engine.Context, *, sync: SyncRequester | None = None, branch: str | None = None,
               sample_interval: float | None = 15.0, sample_retention: float = 86400.0) -> FastAPI:
    """The API app over the project `ctx` finds.

    `sync` receives sync requests (default: a BackgroundSync worker of this app). `branch`
    is the branch whose pushes trigger a sync (default: syncer.yaml's `api.branch`, else the
    branch checked out). With `sample_interval` (seconds), CPU and memory of the project's
    containers are sampled into the store while the app runs and kept `sample_retention`.
    """
    own: BackgroundSync | None = None
    if sync is None:
        sync = own = BackgroundSync(ctx)
    service = Service(ctx, sync, branch=branch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sampler = Sampler(service, sample_interval, sample_retention).start() if sample_interval else None
        try:
            yield
        finally:
            if sampler is not None:
                await run_in_threadpool(sampler.stop)
            if own is not None:
                await run_in_threadpool(own.stop)
            service.close()

    app = FastAPI(title="syncer", version=__version__, description=__doc__, openapi_url=f"{API}/openapi.json",
                  docs_url=f"{API}/docs", swagger_ui_oauth2_redirect_url=f"{API}/docs/oauth2-redirect",
                  redoc_url=None, lifespan=lifespan)
    app.state.service = service
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SyncerError, _syncer_error)
    app.include_router(system, prefix=API)
    app.include_router(api_resources.router, prefix=API, dependencies=[Security(_bearer)])
    app.add_middleware(Gate, service=service, paths=lambda: [*app.openapi()["paths"], *PUBLIC])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="invalid_request, unauthorized, forbidden, not_found, conflict, rate_limited"
                                  " or internal_error")
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    """Every error: `{"success": false, "error": {...}}`."""

    success: bool = False
    error: ErrorDetail


_ERRORS = {"400": "invalid_request: malformed JSON, a parameter or body that fails validation",
           "401": "unauthorized: no key, or an unknown or revoked one", "403": "forbidden: a read key on a POST",
           "404": "not_found", "409": "conflict", "429": "rate_limited (see the X-RateLimit-* headers)",
           "500": "internal_error"}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the errors this API really returns (400, not 422) in the envelope."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    doc.setdefault("components", {}).setdefault("schemas", {}).update(
        {"ErrorDetail": ErrorDetail.model_json_schema(), "ErrorEnvelope": ErrorEnvelope.model_json_schema(
            ref_template="#/components/schemas/{model}")})
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    for path, item in doc.get("paths", {}).items():
        for op in item.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status, text in _ERRORS.items():
                if status in ("401", "403", "429") and not _guarded(path):
                    continue
                responses.setdefault(status, {"description": text, **ref})
    app.openapi_schema = doc
    return doc


_bearer = HTTPBearer(auto_error=False, description="An API key from `syncer keys generate`")


# --- errors, all in the envelope --------------------------------------------------------------

def _status_of(exc: SyncerError) -> int:
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(exc, DockerUnavailable):
        return 503
    return ERROR_STATUS.get(exc.code, 500)


async def _syncer_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SyncerError)
    status = _status_of(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, str(exc).replace("\n", " | "))
    details = {"problems": exc.lines()} if len(exc.lines()) > 1 else None
    return service_from(request).fail(status, exc.code, str(exc).splitlines()[0] if str(exc) else exc.code, details)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "reason": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    malformed = any(e["type"] == "json_invalid" for e in errors)
    message = "the body is not valid JSON" if malformed else "invalid request: " + "; ".join(
        f"{e['field']}: {e['reason']}" for e in errors[:5])
    return service_from(request).fail(400, "invalid_request", message, {"errors": errors})


_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
               429: "rate_limited"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "invalid_request")
    message = {404: f"no such route: {request.method} {request.url.path}",
               405: f"method {request.method} is not allowed on {request.url.path}"}.get(exc.status_code,
                                                                                       str(exc.detail))
    return service_from(request).fail(exc.status_code, code, message, headers=dict(exc.headers or {}))


# --- the gate: keys, rate limits, request metrics, the last word on errors ---------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _guarded(path: str) -> bool:
    return (path == API or path.startswith(API + "/")) and path not in PUBLIC


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class Gate:
    """The outermost middleware. Answers 401/403/429 before any route runs, adds the
    X-RateLimit-* headers to every authenticated answer, counts every request, and turns an
    unexpected exception into a logged 500 envelope."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], service: Service,
                 paths: Callable[[], list[str]]) -> None:
        self.app, self.service, self.paths = app, service, paths
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, sent = time.perf_counter(), [0]
        extra: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent[0] = int(message["status"])
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            if _guarded(scope["path"]):
                verdict = self.service.admit(_header(scope, b"authorization"), scope["method"])
                extra.extend((k.lower().encode(), v.encode()) for k, v in verdict.headers)
                if verdict.error is not None:
                    status, code, message = verdict.error
                    await self.service.fail(status, code, message)(scope, receive, send_with_headers)
                    return
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if not sent[0]:
                body = self.service.fail(500, "internal_error", "internal error; the server log has the details")
                await body(scope, receive, send_with_headers)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # labels stay few
            self.service.metrics.request(self._route(scope), method, sent[0] or 500, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The route template of the path (not the path itself: metric labels must stay few)."""
        if self._templates is None:
            self._templates = [(re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(p)) + "$"), p)
                               for p in sorted(self.paths())]
        path = scope["path"]
        return next((template for pattern, template in self._templates if pattern.match(path)), "(unmatched)")


# --- system routes -----------------------------------------------------------------------------

system = APIRouter()


@system.get("/health", tags=["system"], summary="Is the API up (no key needed)")
async def health() -> Response:
    """`status`, `version` and `timestamp`; touches neither Docker nor the store."""
    body = {"success": True, "data": {"status": "healthy", "version": __version__, "timestamp": iso(time.time())}}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@system.get("/status", tags=["system"], summary="Commit, last apply, drift per definition",
            dependencies=[Security(_bearer)])
def status(svc: Svc) -> Response:
    """The commit of the work tree, the last commit a sync saw, the last apply run, drift per
    definition (computed at most once a second), and validation problems, now and last seen."""
    out: dict[str, Any] = {"project": None, "commit": None, "commit_message": None, "dirty": None,
                           "last_commit_seen": svc.store.get_meta("last_commit"),
                           "last_apply": _run(svc.store.runs(1)),
                           "last_validation_error": svc.store.get_meta("last_validation_error"),
                           "validation_error": svc.project.problems, "in_sync": None, "drifted": None,
                           "definitions": [], "checked_at": None, "error": None}
    try:
        snap = svc.status.get()
    except SyncerError as exc:
        out["error"] = {"code": exc.code, "message": str(exc).splitlines()[0] if str(exc) else exc.code,
                        "details": exc.lines()}
        return svc.ok(out)
    project, ids = snap["project"], api_resources.definition_ids(svc)
    out.update(project=project.config.name, commit=project.commit, commit_message=project.commit_message or None,
               dirty=project.dirty, checked_at=snap["at"])
    out["definitions"] = [{"definition_id": ids.get(r.definition), "name": r.definition,
                           "server_id": f"srv_{r.server}" if r.server else None, "server": r.server or None,
                           "revision": r.revision or None, "status": r.status, "pinned": r.pinned,
                           "in_sync": r.in_sync, "drift": r.actions, "containers": len(r.containers)}
                          for r in snap["rows"]]
    out["drifted"] = sum(1 for d in out["definitions"] if not d["in_sync"])
    out["in_sync"] = out["drifted"] == 0
    return svc.ok(out)


def _run(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    r = rows[0]
    return {"id": r["id"], "trigger": r["trigger"], "status": r["status"], "commit": r["commit_sha"],
            "started_at": r["started_at"], "finished_at": r["finished_at"],
            "summary": json.loads(r["summary"]) if r.get("summary") else None}


class SyncBody(BaseModel):
    """An optional body for POST /sync."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=200, description="Why (kept in the log)")


@system.post("/sync", status_code=202, tags=["system"], summary="Sync the whole project now",
             dependencies=[Security(_bearer)])
def sync(svc: Svc, body: Annotated[SyncBody | None, Body()] = None) -> Response:
    """Queue a full sync (plan and apply every definition); 202 with the request id. Requests
    made while a sync runs are served by exactly one follow-up sync."""
    reason = f"api: {body.reason}" if body is not None and body.reason else "api: POST /sync"
    ident = svc.sync.request(reason)
    return svc.ok({"request_id": ident, "status": "queued", "definition": None, "requested_at": iso(time.time())},
                  status=202)


@system.get("/sync/{request_id}", tags=["system"], summary="What became of a sync request",
            dependencies=[Security(_bearer)])
def sync_request(svc: Svc, request_id: str) -> Response:
    """queued, running, success or failed, with the apply run ids (when this server ran it)."""
    record = svc.sync.describe(request_id) if isinstance(svc.sync, SyncTracker) else None
    if record is None:
        raise NotFound(f"no sync request '{request_id}' known to this server")
    return svc.ok(record)


@system.get("/metrics", tags=["system"], summary="Prometheus metrics (text format)",
            dependencies=[Security(_bearer)], response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(svc: Svc) -> Response:
    """Applies and deployments by status, plan and apply durations, drifted definitions,
    containers by state, webhook deliveries by outcome, HTTP requests by route and status."""
    text, content_type = svc.metrics.render()
    return Response(text, media_type=content_type)


@system.post("/hooks/git", status_code=202, tags=["system"], summary="Git push webhook (GitHub, GitLab, Gitea)")
async def git_hook(request: Request) -> Response:
    """Verified by the provider's signature or token (no API key). A push to the tracked
    branch queues one fetch and sync (202); other pushes are acknowledged and ignored (202);
    a GitHub ping gets 200. Bodies over 1 MiB are refused (413) before they are read whole."""
    svc = service_from(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > hooks.MAX_BODY:
        return svc.fail(413, "invalid_request", f"body over {hooks.MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > hooks.MAX_BODY:
            return svc.fail(413, "invalid_request", f"body over {hooks.MAX_BODY} bytes")
    return await run_in_threadpool(_git_hook, svc, dict(request.headers), bytes(body))


def _git_hook(svc: Service, headers: dict[str, str], body: bytes) -> Response:
    project = svc.defined()
    branch = api_resources.tracked_branch(svc, project)
    event = hooks.verify_and_parse(headers, body, operations.git_webhook_secret(svc.ctx, project), branch=branch)
    if event is None:
        return svc.ok({"event": "ping", "accepted": False, "branch": branch}, status=200)
    data = {"event": "push", "provider": event.provider, "ref": event.ref, "branch": event.branch,
            "commit": event.commit, "repository": event.repository, "tracked_branch": branch,
            "accepted": event.tracked, "request_id": None}
    if event.tracked:
        data["request_id"] = svc.sync.request(f"git push {event.commit[:12]} to {event.branch} ({event.provider})")
    else:
        data["ignored_because"] = ("the branch was deleted" if event.deleted else
                                   f"{event.ref} is not the tracked branch {branch}")
    return svc.ok(data, status=202)
