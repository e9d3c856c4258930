"""The HTTP API: FastAPI under /api/v1, thin over the engine.

Every answer is an envelope: `{"success": true, "data": ..., "pagination": {...}}` or
`{"success": false, "error": {"code", "message", "details"}}`, whatever went wrong
(malformed JSON, validation, unknown route, wrong method, a bug: never a stack trace).
Status codes: invalid_request 400 (every problem with what the client sent, validation
included; 405 and 413 keep their status), unauthorized 401, forbidden 403, not_found 404,
conflict 409, rate_limited 429, internal_error 500 (503 when Docker cannot be reached, or
when the server stops while the request still runs).

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

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from syncer import __version__
from syncer.api import page
from syncer.api.auth import API, PUBLIC, Gate, guarded, path_pattern
from syncer.api.routes import hooks, resources, system
from syncer.api.routes.common import KEYED
from syncer.api.server import ServerHandle, parse_listen, serve_in_thread
from syncer.api.service import ERROR_STATUS, Service, SyncRequester, service_from
from syncer.api.worker import BackgroundSync
from syncer.core.errors import DockerUnavailable, SyncerError
from syncer.engine import facade as engine
from syncer.engine.samples import SampleRecorder

__all__ = ["API", "BackgroundSync", "ServerHandle", "SyncRequester", "create_app", "parse_listen",
           "serve_in_thread"]

log = logging.getLogger("syncer.api.app")
APPLY_GRACE = 120.0  # seconds the app's shutdown waits for an apply of a request (as for the sync worker's)


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
        sampler = SampleRecorder(ctx.state(ctx.root()), service.defined, interval=sample_interval,
                                 retention=sample_retention, engines=service.engines).start() \
            if sample_interval else None
        try:
            yield
        finally:
            if sampler is not None:
                await run_in_threadpool(sampler.stop)
            if own is not None:
                await run_in_threadpool(own.stop)
            # a rollback's apply goes on past the requests' grace (server.REQUEST_GRACE) and
            # answers; the service it uses is closed once that answer is sent
            if not await service.applying.settle(APPLY_GRACE):
                log.warning("stopping with an apply of a request still running (after %gs)", APPLY_GRACE)
            service.close()

    app = FastAPI(title="syncer", version=__version__, description=__doc__, openapi_url=f"{API}/openapi.json",
                  docs_url=f"{API}/docs", swagger_ui_oauth2_redirect_url=f"{API}/docs/oauth2-redirect",
                  redoc_url=None, lifespan=lifespan)
    app.state.service = service
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SyncerError, _syncer_error)
    app.include_router(system.router, prefix=API)
    app.include_router(hooks.router, prefix=API)
    app.include_router(resources.router, prefix=API, dependencies=KEYED)
    page.mount(app)  # the dashboard at GET / (no key for the page; its calls need one)
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
           "500": "internal_error",
           "503": "internal_error: a Docker server or the state database cannot be reached now, or the server"
                  " is stopping"}


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
                if status in ("401", "403", "429") and not guarded(path):
                    continue
                responses.setdefault(status, {"description": text, **ref})
    app.openapi_schema = doc
    return doc


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
    # never echo what an unauthenticated caller sent: a guessed path may be a secret
    message = {404: "no such route (the routes are listed at /api/v1/openapi.json)",
               405: "this method is not allowed on this route"}.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    return service_from(request).fail(exc.status_code, code, message, headers=headers)


def _allowed(request: Request) -> str:
    """Every method some route serves at this path, read from the OpenAPI document (the
    routes of an included router are not the app's own to walk); HEAD wherever GET is."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if path_pattern(template).match(request.url.path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
