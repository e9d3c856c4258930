"""Who may call: bearer keys, per-key rate limits, write permission, and the gate that
checks them before any route runs.

A key is checked in a worker thread, never on the event loop: the check reads the store,
and a store read (or the "last used" write behind it) can wait for seconds on another
process's write; on the loop it would hold up every request, /health included.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from syncer.api.service import Service
from syncer.engine.sources import MAX_HOOK_BODY
from syncer.core import clock
from syncer.core.model import Project

log = logging.getLogger("syncer.api.app")

API = "/api/v1"
PUBLIC = frozenset({f"{API}/health", f"{API}/openapi.json", f"{API}/docs", f"{API}/docs/oauth2-redirect",
                    f"{API}/hooks/git"})
DEFAULT_RATE_LIMIT = 100
WINDOW_SECONDS = 60
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


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

    def refund(self, key: str) -> None:
        """Take back one counted request (it turned out not to count)."""
        with self._lock:
            w = self._windows.get(key)
            if w is not None and w.count > 0:
                w.count -= 1


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


def admit(svc: Service, limiter: RateLimiter, authorization: str | None, method: str) -> Admission:
    """Check the bearer key (afresh: a revoked key fails at once), its rate limit, and write
    permission for anything but reads. Blocking (it reads the store): run it in a thread."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Admission(error=(401, "unauthorized", "an API key is required: send 'Authorization: Bearer"
                                " <key>' (keys come from `syncer keys generate`)"))
    key = svc.keys.check(token.strip())
    if key is None:
        return Admission(error=(401, "unauthorized", "unknown or revoked API key"))
    limit = int(key["rate_limit"] or configured_rate_limit(svc.project.last()))
    allowed, remaining, reset = limiter.hit(key["id"], limit)
    verdict = Admission([("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
                         ("X-RateLimit-Reset", str(reset))], key_id=key["id"])
    if not allowed:
        verdict.headers.append(("Retry-After", str(max(1, reset - int(time.time())))))
        verdict.error = (429, "rate_limited", f"rate limit of {limit} requests a minute exceeded;"
                         f" the window resets at {clock.iso(reset)}")
    elif method.upper() not in READ_METHODS and key["permission"] != "write":
        verdict.error = (403, "forbidden", f"API key {key['id']} may only read; {method} needs a write key")
    return verdict


def guarded(path: str) -> bool:
    """True for the paths that need a key."""
    return (path == API or path.startswith(API + "/")) and path not in PUBLIC


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Refused requests without a valid key (unknown routes, wrong keys, bad hook signatures), per
# client address and minute: plenty for mistakes, not for guessing paths or keys (thousands a
# second were measured without it). Answered ones (/health, the dashboard) are not counted.
ANONYMOUS_LIMIT = 600
HEALTH = f"{API}/health"


MAX_BODY = MAX_HOOK_BODY  # bytes: a push payload's limit is every request's (the API takes small JSON)


def path_pattern(template: str) -> re.Pattern[str]:
    """The paths an OpenAPI path template (`/deployments/{deployment_id}`) stands for."""
    return re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$")


async def _body(scope: Scope, receive: Receive) -> bytes | None:
    """The request's body read whole (API bodies are small JSON), or None once it passes
    MAX_BODY — refused by its declared length before a byte is read, else as it streams."""
    declared = _header(scope, b"content-length") or ""
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # (the client went away: the route meets the end as it would)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY:
            return None
        more = bool(message.get("more_body"))
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then what the client sends next (its disconnect)."""
    sent = [False]

    async def again() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class Gate:
    """The outermost middleware. Answers 401/403/429 before any route runs, adds the
    X-RateLimit-* headers to every authenticated answer, counts every request, and turns an
    unexpected exception into a logged 500 envelope, and a request cut because the server
    stops (server.REQUEST_GRACE ran out) into a 503 one."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], service: Service,
                 paths: Callable[[], list[str]]) -> None:
        self.app, self.service, self.paths = app, service, paths
        self.limiter = RateLimiter()
        self.anonymous = RateLimiter()
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, sent = time.perf_counter(), [0]
        extra: list[tuple[bytes, bytes]] = []
        anonymous = False

        head = scope["method"] == "HEAD"
        if head:  # every GET answers HEAD too (its headers, no body), as HTTP says
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent[0] = int(message["status"])
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            verdict = Admission()
            if guarded(scope["path"]):
                verdict = await run_in_threadpool(admit, self.service, self.limiter,
                                                  _header(scope, b"authorization"), scope["method"])
                extra.extend((k.lower().encode(), v.encode()) for k, v in verdict.headers)
            anonymous = verdict.key_id is None and scope["path"] != HEALTH  # load balancers: never refused
            if anonymous and not self.anonymous.hit(_client(scope), ANONYMOUS_LIMIT)[0]:
                verdict.error = (429, "rate_limited", f"more than {ANONYMOUS_LIMIT} refused requests a minute"
                                 " without a valid API key from this address; wait a minute")
            if verdict.error is not None:
                status, code, message = verdict.error
                await self.service.fail(status, code, message)(scope, receive, send_with_headers)
                return
            body = await _body(scope, receive)  # whole, or None past MAX_BODY: no route reads more
            if body is None:
                await self.service.fail(413, "invalid_request", f"body over {MAX_BODY} bytes")(
                    scope, receive, send_with_headers)
                return
            await self.app(scope, _replay(body, receive), send_with_headers)
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if not sent[0]:
                failed = self.service.fail(500, "internal_error", "internal error; the server log has the details")
                await failed(scope, receive, send_with_headers)
        except asyncio.CancelledError:  # (only uvicorn's shutdown cancels a request: its answer ends it)
            log.warning("%s %s: cut, the server is stopping", scope["method"], scope["path"])
            if not sent[0]:
                cut = self.service.fail(503, "internal_error", "the server is stopping: this request was cut before"
                                        " it ended (what it asked of Docker may still happen)")
                await cut(scope, receive, send_with_headers)
        finally:
            if anonymous and sent[0] < 400:
                self.anonymous.refund(_client(scope))  # only refusals count towards the limit
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # labels stay few
            self.service.metrics.request(self._route(scope), method, sent[0] or 500, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        """The route template of the path (not the path itself: metric labels must stay few)."""
        if self._templates is None:
            self._templates = [(path_pattern(p), p) for p in sorted(self.paths())]
        path = scope["path"]
        return next((template for pattern, template in self._templates if pattern.match(path)), "(unmatched)")
