"""Outgoing event webhooks: events → a durable queue in the store → signed JSON POSTs.

The one module that imports httpx. An event is queued once per matching target
(`enqueue`), then sent by whoever runs next: the `Notifier` thread of `syncer watch` or
`syncer serve`, or the short flush at the end of a one-shot `syncer apply`. A delivery is
claimed in the store before it is sent, so two senders (threads or processes) never send
the same one twice; one that fails is retried with exponential backoff and finally given
up as `failed`. Delivery is at least once: receivers dedupe on `X-Syncer-Delivery`.

Each request carries:

    Content-Type: application/json
    User-Agent: syncer/<version>
    X-Syncer-Event: deployment.success
    X-Syncer-Delivery: whd_…          (the same on every retry of this delivery)
    X-Syncer-Timestamp: 1790000000    (unix seconds, when this attempt was made)
    X-Syncer-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

and the body `{"id", "event", "created_at", "project", "data"}`. A body is stored as sent:
it never holds a secret value (engine events carry none; `redact` makes sure).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from syncer.core.errors import SyncerError
from syncer.core import clock
from syncer.core.model import WebhookTarget
from syncer.core.redact import NOTHING, Redactor
from syncer.stages.webhook import (
    EVENTS,
    PING,
    POLICY_ENV,
    Policy,
    body_for,
    body_of,
    headers,
    matches,
    post_url,
    signature,
)
from syncer.adapters.store import Store, new_id

log = logging.getLogger("syncer.webhooks")
__all__ = ["EVENTS", "PING", "POLICY_ENV", "Policy", "body_for", "body_of", "headers", "matches", "post_url", "signature"]

Resolver = Callable[[WebhookTarget], str | None]
EventSink = Callable[[str, dict[str, Any]], None]


class Undeliverable(SyncerError):
    """A delivery that no retry can help: its target is gone, or its secret is not set."""

    code = "invalid_request"


class MissingSecret(Undeliverable):
    """A webhook's signing secret is configured but not set (never carries a value)."""


# --- what goes out -----------------------------------------------------------------------

def resolver(secrets: Mapping[str, str], env: Mapping[str, str] | None = None) -> Resolver:
    """How targets find their signing secret: `{env: NAME}` from the environment,
    `{secret: NAME}` from the project's secrets (environment or --secrets-file)."""
    environ = os.environ if env is None else env

    def resolve(target: WebhookTarget) -> str | None:
        if not target.secret:
            return None
        (kind, name), = target.secret.items()
        value = (environ if kind == "env" else secrets).get(name)
        if not value:
            where = "environment variable" if kind == "env" else "secret (environment or --secrets-file)"
            raise MissingSecret(f"cannot sign for {target.url}: the {where} {name} is not set")
        return value

    return resolve


iso = clock.stamp  # times as the store writes them (UTC, milliseconds, sortable as text)
_epoch = clock.epoch


# --- the queue ---------------------------------------------------------------------------

_notifiers: weakref.WeakSet[Notifier] = weakref.WeakSet()  # this process's, woken by enqueue
_notifiers_lock = threading.Lock()


def enqueue(store: Store, project: str, targets: Iterable[WebhookTarget], event: str, data: Mapping[str, Any],
            *, redact: Redactor = NOTHING, now: float | None = None) -> list[str]:
    """Queue `event` for every target that wants it (one delivery each, due now); returns
    the delivery ids. `redact` masks the project's secrets in `data`, defensively."""
    wanted = [t for t in targets if matches(t, event)]
    if not wanted:
        return []
    at = time.time() if now is None else now
    event_id, clean = new_id("evt"), redact.data(data)
    rows = [(new_id("whd"), t.url, event, body_for(t, event_id, event, project, clean, at)) for t in wanted]
    store.add_deliveries(rows, due=iso(at))
    with _notifiers_lock:
        awake = list(_notifiers)
    for notifier in awake:
        notifier.wake()
    return [r[0] for r in rows]


def queueing(store: Store, project: str, targets: Sequence[WebhookTarget], *, redact: Redactor,
             then: EventSink) -> EventSink:
    """An event sink that passes each event on to `then` and queues it for `targets`.

    Queueing never raises: a webhook problem must not fail the deployment that caused it.
    """
    def sink(kind: str, data: dict[str, Any]) -> None:
        then(kind, data)
        try:
            enqueue(store, project, targets, kind, data, redact=redact)
        except Exception as exc:  # noqa: BLE001 - recorded in the log, never raised
            log.warning("could not queue webhook event %s: %s", kind, exc)

    return sink


@dataclass(frozen=True)
class Outcome:
    """One attempt: the delivery, where it went, and how it ended."""

    delivery: str
    url: str
    event: str
    status: str  # delivered | pending (retried later) | failed (given up)
    status_code: int | None
    error: str | None
    duration_ms: int


def deliver_due(store: Store, targets: Sequence[WebhookTarget], resolve_secret: Resolver, *,
                client: httpx.Client, now: Callable[[], float] = time.time, policy: Policy | None = None,
                deadline: float | None = None, limit: int = 1000) -> list[Outcome]:
    """Send every delivery that is due, one at a time, recording each attempt.

    2xx → delivered; anything else is retried per `policy` or given up. A delivery whose URL
    is no longer configured, or whose secret is missing, is failed with a clear error.
    `deadline` (time.monotonic()) stops taking new deliveries once it has passed.
    """
    policy = policy or Policy.from_env()
    by_url = {t.url: t for t in targets}
    out: list[Outcome] = []
    while len(out) < limit and (deadline is None or time.monotonic() < deadline):
        t = now()
        rows = store.claim_deliveries(due_by=iso(t), lease_until=iso(t + policy.timeout + 60), limit=1)
        if not rows:
            break
        timeout = policy.timeout if deadline is None else max(0.1, min(policy.timeout, deadline - time.monotonic()))
        out.append(_attempt(store, rows[0], by_url.get(rows[0]["url"]), resolve_secret, client, policy, now,
                            timeout))
    return out


def _attempt(store: Store, row: Mapping[str, Any], target: WebhookTarget | None, resolve_secret: Resolver,
             client: httpx.Client, policy: Policy, now: Callable[[], float], timeout: float) -> Outcome:
    code: int | None = None
    started = now()
    ms = 0
    try:
        if target is None:
            raise Undeliverable(f"no webhook with the URL {row['url']} is configured in syncer.yaml any more")
        code, error, ms = send(client, post_url(target.format, row["url"]), row["event"], row["id"],
                               row["body"].encode("utf-8"),
                               resolve_secret(target), timeout=timeout)
        final = False
    except Undeliverable as exc:
        error, final = str(exc), True
    attempts = int(row["attempts"]) + 1
    if error is None:
        status = "delivered"
    elif final or policy.gives_up(attempts, started - _epoch(row["created_at"])):
        status = "failed"
    else:
        status = "pending"
    t = now()
    due = t + policy.delay(attempts) if status == "pending" else t
    store.record_attempt(row["id"], at=iso(t), status_code=code, error=error, duration_ms=ms, status=status,
                         next_attempt_at=iso(due))
    if status == "delivered":
        store.hasten_deliveries(row["url"], due=iso(t))  # the receiver is back: its backlog is due now
    elif status == "failed":
        log.warning("webhook delivery %s (%s to %s) failed for good: %s", row["id"], row["event"], row["url"], error)
    return Outcome(row["id"], row["url"], row["event"], status, code, error, ms)


def send(client: httpx.Client, url: str, event: str, delivery: str, body: bytes, secret: str | None, *,
         timeout: float) -> tuple[int | None, str | None, int]:
    """POST one delivery; returns (status code, error or None for a 2xx, milliseconds)."""
    started = time.monotonic()
    try:
        response = client.post(url, content=body, timeout=timeout,
                               headers=headers(delivery, event, body, secret, int(time.time())))
    except Exception as exc:  # noqa: BLE001 - refused, timed out, bad URL...: the attempt's recorded error
        return None, f"{exc.__class__.__name__}: {exc}".rstrip(": "), _ms(started)
    ms = _ms(started)
    if 200 <= response.status_code < 300:
        return response.status_code, None, ms
    return response.status_code, f"HTTP {response.status_code} {response.reason_phrase}".strip(), ms


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def client(policy: Policy | None = None) -> httpx.Client:
    """The HTTP client deliveries use. A redirect is not followed (it counts as a failure):
    the receiver is the URL in syncer.yaml."""
    return httpx.Client(timeout=(policy or Policy()).timeout, follow_redirects=False)


def flush(store: Store, targets: Sequence[WebhookTarget], resolve_secret: Resolver, *,
          timeout: float = 3.0) -> list[Outcome]:
    """Try what is due once, for at most about `timeout` seconds (for one-shot commands,
    which have no Notifier); what is left stays queued."""
    policy = Policy.from_env()
    with client(policy) as http:
        return deliver_due(store, targets, resolve_secret, client=http, policy=policy,
                           deadline=time.monotonic() + timeout)


def ping(store: Store, project: str, targets: Sequence[WebhookTarget], resolve_secret: Resolver, *,
         http: httpx.Client, url: str | None = None, timeout: float = 10.0) -> list[Outcome]:
    """Send a `ping` now to every target (or to `url`), recorded as a delivery with no retries."""
    chosen = [t for t in targets if url is None or t.url == url]
    if url is not None and not chosen:
        chosen = [WebhookTarget(url, ())]  # not configured: sent unsigned
    out = []
    for target in chosen:
        at = time.time()
        data = {"message": "a test delivery from `syncer webhooks test`", "url": target.url,
                "events": list(target.events) or ["*"], "signed": target.secret is not None}
        ident, body = new_id("whd"), body_for(target, new_id("evt"), PING, project, data, at)
        store.add_deliveries([(ident, target.url, PING, body)], due=iso(at + timeout + 60), status="sending")
        code: int | None = None
        ms = 0
        try:
            code, error, ms = send(http, post_url(target.format, target.url), PING, ident, body.encode("utf-8"),
                                   resolve_secret(target), timeout=timeout)
        except MissingSecret as exc:
            error = str(exc)
        status = "delivered" if error is None else "failed"
        store.record_attempt(ident, at=iso(time.time()), status_code=code, error=error, duration_ms=ms,
                             status=status, next_attempt_at=iso(time.time()))
        out.append(Outcome(ident, target.url, PING, status, code, error, ms))
    return out


# --- the background sender -----------------------------------------------------------------

Config = Callable[[], tuple[Sequence[WebhookTarget], Resolver]]


class Notifier:
    """Delivers queued webhooks in a background thread, for long-running processes.

    It wakes when this process queues an event, when the next delivery falls due, and at
    least every `poll` seconds (for deliveries queued by other processes). `config` gives
    the current targets and secret resolver; it is re-read at most every `reload` seconds,
    and the last good answer is kept when it fails (an invalid syncer.yaml mid-edit).
    """

    def __init__(self, store: Store, config: Config, *, policy: Policy | None = None, poll: float = 10.0,
                 reload: float = 5.0, owns_store: bool = False) -> None:
        self.store, self.config, self.poll, self.reload = store, config, poll, reload
        self.policy = policy or Policy.from_env()
        self.owns_store = owns_store
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded: tuple[float, Sequence[WebhookTarget], Resolver] | None = None

    def start(self) -> Notifier:
        """Start the thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="syncer-notifier", daemon=True)
        with _notifiers_lock:
            _notifiers.add(self)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the queue now."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the attempt in flight and stop (what is left stays queued)."""
        self._stopping.set()
        self._wake.set()
        with _notifiers_lock:
            _notifiers.discard(self)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.owns_store:
            self.store.close()

    def _run(self) -> None:
        with client(self.policy) as http:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    self._round(http)
                    wait = self._until_next()
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
                    log.warning("webhook delivery round failed: %s", exc)
                    wait = self.poll
                self._wake.wait(wait)

    def _round(self, http: httpx.Client) -> None:
        if self.store.next_delivery_at() is None:
            return
        targets, resolve = self._targets()
        deliver_due(self.store, targets, resolve, client=http, policy=self.policy, limit=100)

    def _targets(self) -> tuple[Sequence[WebhookTarget], Resolver]:
        if self._loaded is None or time.monotonic() - self._loaded[0] > self.reload:
            try:
                targets, resolve = self.config()
                self._loaded = (time.monotonic(), targets, resolve)
            except Exception as exc:  # keep the last good configuration (re-raised when there is none)
                log.warning("webhook targets not reloaded: %s", exc)
                if self._loaded is None:
                    raise
        return self._loaded[1], self._loaded[2]

    def _until_next(self) -> float:
        due = self.store.next_delivery_at()
        if due is None:
            return self.poll
        return max(0.05, min(self.poll, _epoch(due) - time.time()))
