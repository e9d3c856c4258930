"""What the HTTP API's routes share: the serving process's state and its background work.

`Service` holds the store (one connection, thread-safe), the project as last loaded, a
Docker client per server per thread, the per-key rate limits and the JSON envelope every
response goes out in (with every secret value the project uses masked, whatever a route
returned). `BackgroundSync` is `syncer serve`'s sync worker; `syncer watch` passes its
own trigger queue instead. `Sampler` reads CPU and memory into the store; `serve_in_thread`
runs uvicorn for both commands.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from fastapi import Request, Response

from syncer.engine import facade as engine
from syncer.engine import operations
from syncer.api.metrics import ApiMetrics
from syncer.adapters.docker import Engine
from syncer.core.errors import InvalidProject, LockHeld, SyncerError
from syncer.core.model import Project, Server
from syncer.adapters.store import new_id

log = logging.getLogger("syncer.api.app")

DEFAULT_RATE_LIMIT = 100
WINDOW_SECONDS = 60
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ERROR_STATUS = {"invalid_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404,
                "conflict": 409, "rate_limited": 429, "internal_error": 500}

T = TypeVar("T")


# --- the seam to whoever applies ---------------------------------------------------------

class SyncRequester(Protocol):
    """Where the API sends "sync now": `syncer serve`'s BackgroundSync, or the watch loop."""

    def request(self, reason: str, *, definition: str | None = None) -> str:
        """Queue a sync (of one definition, or all); returns the request's id at once."""


@runtime_checkable
class SyncTracker(Protocol):
    """A SyncRequester that can also say what became of a request (GET /sync/{id})."""

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """The request's state, or None when unknown."""


# --- the envelope ----------------------------------------------------------------------------

def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """VersionTwo's error: `{"success": false, "error": {"code", "message", "details"}}`."""
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


def iso(at: float | datetime) -> str:
    """UTC ISO 8601 with a Z, to the second."""
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- caches that keep answers honest -------------------------------------------------------

class Memo(Generic[T]):
    """A value computed at most once per `ttl` seconds; concurrent callers share one
    computation, and a SyncerError is remembered for the same time (no stampede on Docker)."""

    def __init__(self, compute: Callable[[], T], ttl: float) -> None:
        self.compute, self.ttl = compute, ttl
        self._lock = threading.Lock()
        self._at: float | None = None
        self._value: T | None = None
        self._error: SyncerError | None = None

    def get(self) -> T:
        """The fresh-enough value, or the fresh-enough error raised again."""
        with self._lock:
            if self._at is None or time.monotonic() - self._at >= self.ttl:
                try:
                    self._value, self._error = self.compute(), None
                except SyncerError as exc:
                    self._value, self._error = None, exc
                self._at = time.monotonic()
            if self._error is not None:
                raise self._error
            return self._value  # type: ignore[return-value]


class Coalesced(Generic[T]):
    """Concurrent callers share computations, yet none gets a result older than its call: a
    caller that arrives while a computation runs waits for the next one, which then serves
    every caller that waited. Under load, N simultaneous callers cost two computations."""

    KEEP = 64  # outcomes kept for waiters still waking up

    def __init__(self, compute: Callable[[], T]) -> None:
        self.compute = compute
        self._cond = threading.Condition()
        self._running = False
        self._started = 0
        self._done: dict[int, tuple[bool, Any]] = {}

    def get(self) -> T:
        """A result computed entirely after this call began."""
        with self._cond:
            mine = self._started + 1
            while mine not in self._done:
                if not self._running and self._started < mine:
                    self._running, self._started = True, mine
                    break
                self._cond.wait()
            else:
                return self._outcome(self._done[mine])
        try:
            outcome: tuple[bool, Any] = (True, self.compute())
        except Exception as exc:  # noqa: BLE001 - handed to every caller it serves
            outcome = (False, exc)
        with self._cond:
            self._done[mine] = outcome
            self._done.pop(mine - self.KEEP, None)
            self._running = False
            self._cond.notify_all()
        return self._outcome(outcome)

    @staticmethod
    def _outcome(outcome: tuple[bool, Any]) -> T:
        ok, value = outcome
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


class ProjectState:
    """The project, reloaded at most every `ttl` seconds. While the work tree is invalid the
    last valid project stays in service (as `watch` keeps what runs) and its problems are
    on hand for /status."""

    def __init__(self, ctx: engine.Context, ttl: float = 2.0) -> None:
        self.ctx, self.ttl = ctx, ttl
        self._lock = threading.Lock()
        self._at = -math.inf
        self._good: Project | None = None
        self._secrets: list[str] = []
        self._error: SyncerError | None = None

    def refresh(self) -> None:
        """Reload when the last load is older than `ttl`."""
        with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            try:
                project = engine.load(self.ctx)
                self._secrets = operations.secret_values(self.ctx, project)
                self._good, self._error = project, None
            except SyncerError as exc:
                self._error = exc
            finally:
                self._at = time.monotonic()

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

    def secrets(self) -> list[str]:
        """The secret values the project used when last loaded, longest first (never blocks on
        a load: error answers are made on the event loop)."""
        return self._secrets


class _PooledEngine(Engine):
    """An Engine that goes back to its pool when a caller closes it."""

    pool: EnginePool | None = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.give_back(self)
        else:
            super().close()

    def shutdown(self) -> None:
        """Really close it."""
        super().close()


class EnginePool:
    """Docker clients kept between requests (making one costs a version call). An
    EngineFactory: each client serves one caller at a time, from the factory call until
    the caller's close(), which gives it back."""

    def __init__(self) -> None:
        self._free: dict[Server, list[_PooledEngine]] = {}
        self._all: list[_PooledEngine] = []
        self._lock = threading.Lock()

    def __call__(self, server: Server) -> Engine:
        with self._lock:
            free = self._free.get(server)
            if free:
                return free.pop()
        eng = _PooledEngine(server)
        eng.pool = self
        with self._lock:
            self._all.append(eng)
        return eng

    def give_back(self, eng: _PooledEngine) -> None:
        """A caller is done with `eng`."""
        with self._lock:
            self._free.setdefault(eng.server, []).append(eng)

    def close(self) -> None:
        """Close every client made."""
        with self._lock:
            for eng in self._all:
                eng.pool = None
                eng.shutdown()
            self._all.clear()
            self._free.clear()


# --- API keys and rate limits ----------------------------------------------------------------

@dataclass
class _Window:
    start: float
    count: int = 0


class RateLimiter:
    """A fixed one-minute window per key, starting at the key's first request in it.

    In memory, per process: a restart gives every key a fresh window.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> tuple[bool, int, int]:
        """Count one request: (allowed, remaining, reset as unix seconds)."""
        with self._lock:
            now = self.clock()
            w = self._windows.get(key)
            if w is None or now >= w.start + WINDOW_SECONDS:
                w = self._windows[key] = _Window(now)
            allowed = w.count < limit
            if allowed:
                w.count += 1
            return allowed, max(0, limit - w.count), math.ceil(w.start + WINDOW_SECONDS)


@dataclass
class Admission:
    """The gate's verdict on one request: headers to add, and an error if refused."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    error: tuple[int, str, str] | None = None  # (HTTP status, code, message)
    key_id: str | None = None


def configured_rate_limit(project: Project | None) -> int:
    """`api.rate_limit` in syncer.yaml, else 100 a minute."""
    api = project.config.raw.get("api") if project is not None else None
    value = api.get("rate_limit") if isinstance(api, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_RATE_LIMIT


# --- the service -------------------------------------------------------------------------------

class Service:
    """Everything a request needs, made once per app."""

    def __init__(self, ctx: engine.Context, sync: SyncRequester, *, branch: str | None = None) -> None:
        self.ctx = ctx
        self.store = operations.state_store(ctx)
        self.project = ProjectState(ctx)
        self.project.refresh()  # now: the secrets to mask are known from the first answer
        self.engines = EnginePool()
        self.limiter = RateLimiter()
        self.sync = sync
        self.branch = branch
        self._touched: dict[str, float] = {}
        self.status = Memo(self._status_snapshot, ttl=1.0)
        # GET /instances: simultaneous requests share Docker list calls, never a stale one
        self.instances = Coalesced(lambda: operations.list_instances(self.defined(), engines=self.engines))
        self.metrics = ApiMetrics(self.store, self.status.get)

    def close(self) -> None:
        """Release Docker clients and the store."""
        self.engines.close()
        self.store.close()

    # responses

    def respond(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """JSON with every secret value the project uses masked (however it got in)."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        for value in self.project.secrets():
            for form in (value, json.dumps(value, ensure_ascii=False)[1:-1]):
                if form in text:
                    text = text.replace(form, "***")
        return Response(text.encode("utf-8"), status, headers=headers, media_type="application/json")

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

    # the gate

    def admit(self, authorization: str | None, method: str) -> Admission:
        """Check the bearer key (afresh: a revoked key fails at once), its rate limit, and
        write permission for anything but reads. Quick enough for the event loop: one indexed
        read, and at most one write a second per key."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Admission(error=(401, "unauthorized", "an API key is required: send 'Authorization: Bearer"
                                    " <key>' (keys come from `syncer keys generate`)"))
        key = operations.authenticate(self.store, token.strip())
        if key is None:
            return Admission(error=(401, "unauthorized", "unknown or revoked API key"))
        limit = int(key["rate_limit"] or configured_rate_limit(self.project.last()))
        allowed, remaining, reset = self.limiter.hit(key["id"], limit)
        verdict = Admission([("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                             ("X-RateLimit-Reset", str(reset))], key_id=key["id"])
        if not allowed:
            verdict.headers.append(("Retry-After", str(max(1, reset - int(time.time())))))
            verdict.error = (429, "rate_limited", f"rate limit of {limit} requests a minute exceeded;"
                             f" the window resets at {iso(reset)}")
        elif method.upper() not in READ_METHODS and key["permission"] != "write":
            verdict.error = (403, "forbidden", f"API key {key['id']} may only read; {method} needs a write key")
        self._touch(key["id"])
        return verdict

    def _touch(self, key_id: str) -> None:
        # last use to the second: one write a second per key, not one per request
        now = time.monotonic()
        if now - self._touched.get(key_id, -math.inf) >= 1.0:
            self._touched[key_id] = now
            self.store.touch_api_key(key_id)

    # status, shared by GET /status and /metrics (computed at most once a second)

    def _status_snapshot(self) -> dict[str, Any]:
        started = time.perf_counter()
        project, rows = engine.status(self.ctx, engines=self.engines)
        self.metrics.plans.observe(time.perf_counter() - started)
        return {"project": project, "rows": rows, "at": iso(time.time())}


def service_from(request: Request) -> Service:
    """The app's Service."""
    svc = request.app.state.service
    assert isinstance(svc, Service)
    return svc


async def service_of(request: Request) -> Service:
    """The app's Service, as a FastAPI dependency (async, so that FastAPI needs no thread for it)."""
    return service_from(request)


# --- syncer serve's sync worker ------------------------------------------------------------------

@dataclass
class _Batch:
    ids: list[str] = field(default_factory=list)
    definitions: set[str | None] = field(default_factory=set)


class BackgroundSync:
    """`syncer serve`'s SyncRequester: one worker thread applies through the engine.

    Requests that arrive while an apply runs coalesce into exactly one follow-up: a full
    sync when any of them asked for one, else one apply per definition asked for. When
    another process holds the apply lock, the worker tries again every `retry` seconds.
    """

    def __init__(self, ctx: engine.Context, *, options: Any = None, retry: float = 2.0, keep: int = 500) -> None:
        from syncer.engine.apply import ApplyOptions

        self.ctx, self.options, self.retry, self.keep = ctx, options or ApplyOptions(), retry, keep
        self._cond = threading.Condition()
        self._pending: _Batch | None = None
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, reason: str, *, definition: str | None = None) -> str:
        """Queue a sync; returns its request id (`req_…`)."""
        ident = new_id("req")
        with self._cond:
            self._pending = self._pending or _Batch()
            self._pending.ids.append(ident)
            self._pending.definitions.add(definition)
            self._records[ident] = {"id": ident, "status": "queued", "reason": reason, "definition": definition,
                                    "requested_at": iso(time.time()), "started_at": None, "finished_at": None,
                                    "run_ids": [], "error": None}
            while len(self._records) > self.keep:
                self._records.popitem(last=False)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="syncer-api-sync", daemon=True)
                self._thread.start()
            self._cond.notify()
        return ident

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """What became of a request (queued, running, success, failed)."""
        with self._cond:
            record = self._records.get(request_id)
            return dict(record) if record is not None else None

    def stop(self, timeout: float = 120.0) -> None:
        """Finish the apply in flight (nothing queued is started) and stop."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _update(self, ids: list[str], **changes: Any) -> None:
        with self._cond:
            for ident in ids:
                if ident in self._records:
                    self._records[ident].update(changes)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                batch, self._pending = self._pending, None
            assert batch is not None
            self._update(batch.ids, status="running", started_at=iso(time.time()))
            targets = [None] if None in batch.definitions else sorted(d for d in batch.definitions if d)
            outcomes = [self._apply(target) for target in targets]
            errors = [e for _, e in outcomes if e]
            self._update(batch.ids, status="failed" if errors else "success", finished_at=iso(time.time()),
                         run_ids=[r for r, _ in outcomes if r], error="; ".join(errors) or None)

    def _apply(self, definition: str | None) -> tuple[str | None, str | None]:
        """One apply, retried while another process holds the lock: (run id, error)."""
        while not self._stopping.is_set():
            try:
                self._remember_repo_state()
                report = engine.apply(self.ctx, options=self.options, confirm=lambda p: True, trigger="api",
                                      only=definition)
            except LockHeld as exc:
                log.info("sync waits: %s", exc)
                self._stopping.wait(self.retry)
                continue
            except SyncerError as exc:
                log.error("sync%s failed: %s", f" of {definition}" if definition else "", " | ".join(exc.lines()))
                return None, str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            except Exception:  # noqa: BLE001 - a bug: logged, and the worker lives on
                log.exception("sync failed unexpectedly")
                return None, "internal error (see the server log)"
            failed = [r.definition for r in report.results if not r.ok]
            return report.run_id, (f"deployments failed: {', '.join(failed)}" if failed else None)
        return None, "stopped before it ran"

    def _remember_repo_state(self) -> None:
        """As the watch loop does: the last commit seen, or the problems of an invalid tree."""
        store = operations.state_store(self.ctx)
        try:
            try:
                project = engine.load(self.ctx)
            except InvalidProject as exc:
                store.set_meta("last_validation_error", exc.lines())
                raise
            store.set_meta("last_validation_error", None)
            store.set_meta("last_commit", {"sha": project.commit, "message": project.commit_message})
        finally:
            store.close()


# --- metric samples ---------------------------------------------------------------------------------

class Sampler:
    """Every `interval` seconds, CPU and memory of the project's running containers into the
    store; samples older than `retention` seconds are dropped."""

    def __init__(self, service: Service, interval: float, retention: float) -> None:
        self.service, self.interval, self.retention = service, interval, retention
        self.sampler = operations.MetricSampler(engines=service.engines)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="syncer-sampler", daemon=True)

    def start(self) -> Sampler:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the reading in flight."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def once(self) -> int:
        """One round; returns how many containers were read."""
        try:
            count = self.sampler.sample(self.service.defined(), self.service.store)
        except SyncerError as exc:
            log.warning("metric sampling skipped: %s", str(exc).splitlines()[0] if str(exc) else exc)
            count = 0
        cutoff = datetime.now(UTC) - timedelta(seconds=self.retention)
        self.service.store.prune_samples(cutoff.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        return count

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.once()
            except Exception:  # noqa: BLE001 - sampling must never take the server down
                log.exception("metric sampling failed")
            self._stopping.wait(self.interval)


# --- uvicorn in a thread -----------------------------------------------------------------------------

class ServerHandle:
    """A running uvicorn server; `stop()` finishes requests in flight and returns."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def alive(self) -> bool:
        """True while the server thread runs."""
        return self.thread.is_alive()

    def stop(self, timeout: float = 150.0) -> None:
        """Graceful shutdown: stop accepting, finish requests, run the app's shutdown."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: Any, host: str, port: int, *, access_log: bool = False) -> ServerHandle:
    """Run `app` on uvicorn in a daemon thread (signals stay with the caller's main thread).

    Returns once it listens; raises SyncerError when it cannot (port taken, bad address).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, lifespan="on",
                            log_level="info" if access_log else "warning", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="syncer-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SyncerError(f"cannot serve the API on {host}:{port} (is the port taken, or the address wrong?)")
        time.sleep(0.02)
    return ServerHandle(server, thread)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`, or `:PORT` for 127.0.0.1) → (host, port)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        from syncer.core.errors import UsageError

        raise UsageError(f"--listen wants HOST:PORT, not '{listen}'")
    return host.strip("[]") or "127.0.0.1", int(port)
