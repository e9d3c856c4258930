"""Outgoing events: queued for the project's webhooks from the store's durable queue, and
delivered by a Notifier (watch, serve) or a short flush after a one-shot command. A webhook
never fails the work that caused it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncer.adapters.store import Store
from syncer.core.errors import SyncerError
from syncer.core.model import Project
from syncer.engine.project import Context, load, open_store, redactor, secrets_for, state_store

EventSink = Callable[[str, dict[str, Any]], None]


def _warn(message: str, *args: object) -> None:
    import logging  # only when a webhook fails: it costs every command's start-up ~4 ms

    logging.getLogger("syncer.webhooks").warning(message, *args)


def no_events(kind: str, data: dict[str, Any]) -> None:
    """The sink that drops every event."""
    return None


def webhook_sink(ctx: Context, project: Project, store: Store, events: EventSink) -> EventSink:
    """`events`, plus every event queued for the project's webhooks (never failing the apply)."""
    if not project.config.webhooks:
        return events
    from syncer.adapters import webhooks as notify

    return notify.queueing(store, project.config.name, project.config.webhooks,
                           redact=redactor(ctx, project), then=events)


def emit_event(ctx: Context, project: Project, kind: str, data: dict[str, Any]) -> None:
    """Queue one event from outside an apply (instance.started|stopped|unhealthy,
    drift.detected) for the project's webhooks. Never raises: the caller's work goes on."""
    if not project.config.webhooks:
        return
    try:
        store = open_store(ctx, project)
        try:
            webhook_sink(ctx, project, store, no_events)(kind, data)
        finally:
            store.close()
    except SyncerError as exc:  # the store or the secrets file unusable
        _warn("webhook event %s not queued: %s", kind, exc)


def flush_webhooks(ctx: Context, *, timeout: float = 3.0, project: Project | None = None) -> tuple[int, int]:
    """Try the due webhook deliveries once, for about `timeout` seconds: one-shot commands
    have no Notifier. Returns (delivered, still queued); never raises (what is not sent
    stays queued for `syncer watch`/`serve` or the next apply)."""
    try:
        project = project or load(ctx)  # the apply's own project: no second load
        if not project.config.webhooks:
            return 0, 0
        store = open_store(ctx, project)
        try:
            if store.next_delivery_at() is None:  # nothing queued: spare the HTTP client
                return 0, 0
            from syncer.adapters import webhooks as notify

            outcomes = notify.flush(store, project.config.webhooks,
                                    notify.resolver(secrets_for(ctx, project)), timeout=timeout)
            queued = store.count_deliveries(status="pending") + store.count_deliveries(status="sending")
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001 - a webhook never fails the command that caused it
        _warn("webhook deliveries not attempted: %s", exc)
        return 0, 0
    return sum(1 for o in outcomes if o.status == "delivered"), queued


def start_notifier(ctx: Context) -> Any:
    """A started notify.Notifier for a long-running process (watch, serve): it delivers
    the queue as it falls due, re-reading the project's webhooks and secrets as they change."""
    from syncer.adapters import webhooks as notify

    def config() -> tuple[Any, Any]:
        project = load(ctx)
        return project.config.webhooks, notify.resolver(secrets_for(ctx, project))

    return notify.Notifier(state_store(ctx), config, owns_store=True).start()
