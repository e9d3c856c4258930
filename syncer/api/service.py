"""What the HTTP API's routes share: the serving process's state, and the JSON envelope.

`Service` holds the project as last loaded, a read view of the store, the key ring, a
Docker client per server per thread, the per-key rate limits, and the one way a response
goes out: the body masked value by value with the project's redactor, then serialised (so a
secret equal to `null`, `true` or a key name cannot corrupt the document).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from fastapi import Request, Response

from syncer.api.caches import Coalesced, Memo
from syncer.api.metrics import ApiMetrics
from syncer.core import clock
from syncer.core.errors import SyncerError
from syncer.core.model import Observed, Project
from syncer.core.redact import NOTHING, Redactor
from syncer.engine import facade as engine
from syncer.engine import operations
from syncer.engine.keys import KeyRing
from syncer.engine.pool import EnginePool
from syncer.engine.queries import StateView
from syncer.engine.requests import Kind

ERROR_STATUS = {"invalid_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404,
                "conflict": 409, "rate_limited": 429, "internal_error": 500}

T = TypeVar("T")
log = logging.getLogger("syncer.api.app")


class SyncRequester(Protocol):
    """Where the API sends "sync now": `syncer serve`'s BackgroundSync, or the watch loop."""

    def request(self, reason: str, *, definition: str | None = None, kind: Kind = Kind.API) -> str:
        """Queue a sync (of one definition, or all); returns the request's id at once."""


@runtime_checkable
class SyncTracker(Protocol):
    """A SyncRequester that can also say what became of a request (GET /sync/{id})."""

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """The request's state, or None when unknown."""


@runtime_checkable
class PushTarget(Protocol):
    """A SyncRequester that fetches what a push brings before it applies."""

    def push_problem(self) -> str | None:
        """Why a pushed commit cannot be fetched and applied here (None when it can)."""

    def push(self, reason: str, *, branch: str, commit: str) -> str:
        """Queue a fetch of `branch` and a sync; returns the request's id at once."""


MESSAGE_LIMIT = 500  # characters of an error's message: one naming what the caller sent (a 100 kB id) is cut


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """VersionTwo's error: `{"success": false, "error": {"code", "message", "details"}}`."""
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 1] + "…"
    return {"success": False, "error": {"code": code, "message": message, "details": details}}


@dataclass(frozen=True)
class Page:
    """`page` (from 1) and `per_page` (1..100) of a list."""

    page: int = 1
    per_page: int = 20

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.per_page

    def cut(self, items: Sequence[T]) -> list[T]:
        """This page's share of `items`."""
        return list(items[self.offset:self.offset + self.per_page])


def masked(redactor: Redactor, value: Any) -> Any:
    """JSON-like `value` with every string value masked; keys are the API's own names and
    stay as they are (a secret that happens to equal `success` must not rename a field)."""
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, dict):
        return {k: masked(redactor, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(redactor, v) for v in value]
    return value


class ProjectState:
    """The project, reloaded at most every `ttl` seconds. While the work tree is invalid the
    last valid project stays in service (as `watch` keeps what runs) and its problems are
    on hand for /status. Once a load takes `slow` seconds (thousands of definitions), the
    next loads run in the background and requests keep the last project meanwhile."""

    def __init__(self, ctx: engine.Context, ttl: float = 2.0, slow: float = 0.5) -> None:
        self.ctx, self.ttl, self.slow = ctx, ttl, slow
        self._lock = threading.Lock()
        self._at = -math.inf
        self._took = 0.0
        self._loading = False
        self._good: Project | None = None
        self._seen: tuple[str, str | None, bool] | None = None  # the fingerprint `_good` was loaded at
        self._redactor = NOTHING
        self._error: SyncerError | None = None

    def refresh(self) -> None:
        """Reload when the last load is older than `ttl`."""
        with self._lock:
            slow = self._good is not None and self._took >= self.slow
            if time.monotonic() - self._at < (max(self.ttl, 4 * self._took) if slow else self.ttl):
                return
            if slow:
                if not self._loading:
                    self._loading = True
                    threading.Thread(target=self._reload, name="syncer-project", daemon=True).start()
                return
            self._keep(*self._load())

    def _load(self) -> tuple[Project | None, Redactor | None, SyncerError | None, float]:
        started = time.monotonic()
        try:
            seen = engine.fingerprint(self.ctx) if self.ctx.ref is None else None
            if seen is not None and seen == self._seen and self._good is not None:
                # nothing changed: no reload (the secrets are read again: a value may have changed)
                return self._good, operations.redactor(self.ctx, self._good), None, self._took
            project = engine.load(self.ctx)
            self._seen = seen
            return project, operations.redactor(self.ctx, project), None, time.monotonic() - started
        except SyncerError as exc:
            return None, None, exc, time.monotonic() - started

    def _keep(self, project: Project | None, redactor: Redactor | None, error: SyncerError | None,
              took: float) -> None:
        if project is not None and redactor is not None:
            self._good, self._redactor = project, redactor
        self._error, self._took, self._at = error, took, time.monotonic()

    def _reload(self) -> None:
        try:
            loaded = self._load()
        finally:
            with self._lock:
                self._loading = False
        with self._lock:
            self._keep(*loaded)

    def current(self) -> Project:
        """The project as the work tree holds it now (as of the last load): the load's error
        when it does not load (unlike `get`, which keeps serving the last valid one)."""
        self.refresh()
        with self._lock:  # both from the same load
            good, error = self._good, self._error
        if error is not None or good is None:
            assert error is not None
            raise error
        return good

    def last(self) -> Project | None:
        """The last valid project as it stands, without reloading (never blocks on a load)."""
        return self._good

    def get(self) -> Project:
        """The current (or last valid) project; the load's error when there never was one."""
        self.refresh()
        if self._good is None:
            assert self._error is not None
            raise self._error
        return self._good

    @property
    def problems(self) -> list[str] | None:
        """Why the work tree does not load now (None when it does)."""
        self.refresh()
        return self._error.lines() if self._error is not None else None

    def redactor(self) -> Redactor:
        """Masks the secret values the project used when last loaded (never blocks on a load:
        error answers are made on the event loop)."""
        return self._redactor


class Applying:
    """The requests that apply (a rollback answers when its apply is done): the app's shutdown
    waits until each has answered, as for the sync worker's apply, before it closes the service.

    Each is held as its own request task (uvicorn's, which ends once the answer is sent), taken
    on the event loop before its apply starts. Counting the apply's block in its worker thread
    missed both ends: the answer still being built after the block (the service closed, the
    request cut with a 503 for a rollback that worked), and an apply whose thread had not yet
    started (the pool busy: the service closed under it).
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def hold(self) -> None:
        """Count the calling request (on the event loop, before its apply starts) until it has answered."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float) -> bool:
        """Wait (`timeout` seconds at most) until every one has answered; False when some has not."""
        deadline = time.monotonic() + timeout
        while pending := {t for t in self._tasks if not t.done()}:  # (one may start meanwhile)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            log.info("stopping: waiting for %d request(s) applying to answer (%ds at most)", len(pending), round(left))
            await asyncio.wait(pending, timeout=left)
        return True


class Service:
    """Everything a request needs, made once per app."""

    def __init__(self, ctx: engine.Context, sync: SyncRequester, *, branch: str | None = None) -> None:
        self.ctx = ctx
        state_dir = ctx.state(ctx.root())
        self.state = StateView(state_dir)
        # /health's own connection: it never waits behind another request's store call
        self.health = StateView(state_dir)
        self.health_problem: str | None = None  # why /health said unhealthy last (logged when it changes)
        self.keys = KeyRing(state_dir)
        self.project = ProjectState(ctx)
        self.project.refresh()  # now: the secrets to mask are known from the first answer
        self.engines = EnginePool()
        self.sync = sync
        self.branch = branch
        # a plan of thousands of definitions takes seconds: then the last one is answered
        # while the next is computed (its `checked_at` says when)
        self.status = Memo(self._status_snapshot, ttl=1.0, slow=0.5)
        self.reuse = engine.Reuse()  # the status's render and plan, while their inputs stand
        # GET /instances: simultaneous requests share Docker list calls, never a stale one
        self.instances: Coalesced[Observed] = Coalesced(
            lambda: operations.list_instances(self.defined(), engines=self.engines))
        self.metrics = ApiMetrics(self.state, self.status.get)
        self.listed: dict[str, tuple[Any, ...]] = {}  # sorted lists kept while their inputs stand
        self.applying = Applying()

    def close(self) -> None:
        """Release Docker clients, the key ring and the store."""
        self.engines.close()
        self.keys.close()
        self.state.close()
        self.health.close()

    def respond(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """JSON with every secret value the project uses masked (however it got in)."""
        return Response(self.serialise(body), status, headers=headers, media_type="application/json")

    def serialise(self, value: Any) -> bytes:
        """`value` as the answers' JSON, every secret value masked (a part of an answer made
        apart is made with this, byte for byte as in the whole)."""
        redactor = self.project.redactor()
        text = json.dumps(masked(redactor, value) if redactor else value, ensure_ascii=False, separators=(",", ":"),
                          default=str)
        return text.encode("utf-8")

    def ok(self, data: Any, *, page: Page | None = None, total: int | None = None, status: int = 200) -> Response:
        """DeployAlly's envelope; lists carry `pagination`."""
        body: dict[str, Any] = {"success": True, "data": data}
        if page is not None:
            body["pagination"] = {"page": page.page, "per_page": page.per_page, "total": total}
        return self.respond(body, status)

    def fail(self, status: int, code: str, message: str, details: Any = None,
             headers: dict[str, str] | None = None) -> Response:
        """The error envelope."""
        return self.respond(error_body(code, message, details), status, headers)

    def defined(self) -> Project:
        """The project (the last valid one while the work tree is invalid)."""
        return self.project.get()

    def _status_snapshot(self) -> dict[str, Any]:
        """Shared by GET /status and /metrics (computed at most once a second)."""
        started = time.perf_counter()
        # while the work tree is invalid: the last valid project's drift (what runs), beside the
        # problems /status lists — not an empty page when an operator most needs one
        project, rows, servers = engine.status(self.ctx, engines=self.engines, project=self.project.get(),
                                               reuse=self.reuse)
        self.metrics.plans.observe(time.perf_counter() - started)
        return {"project": project, "rows": rows, "servers": servers, "at": clock.iso()}


def service_from(request: Request) -> Service:
    """The app's Service."""
    svc = request.app.state.service
    assert isinstance(svc, Service)
    return svc


async def service_of(request: Request) -> Service:
    """The app's Service, as a FastAPI dependency (async, so that FastAPI needs no thread for it)."""
    return service_from(request)
