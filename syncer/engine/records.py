"""What the store remembers, for the shells: revisions, deployments, webhook deliveries and
API keys. Each function opens the store, does one thing and closes it; shells get plain data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from syncer.adapters.store import Revision, Store
from syncer.core import clock
from syncer.core.errors import UsageError
from syncer.engine.events import flush_webhooks
from syncer.engine.project import Context, load, open_store, secrets_for, state_store

T = TypeVar("T")


@contextmanager
def _store(ctx: Context) -> Iterator[Store]:
    store = state_store(ctx)
    try:
        yield store
    finally:
        store.close()


def _with_project_store(ctx: Context, read: Callable[[Store], T]) -> T:
    store = open_store(ctx, load(ctx))  # a valid project first: its errors are the ones to show
    try:
        return read(store)
    finally:
        store.close()


def history(ctx: Context, definition: str | None = None) -> list[Revision]:
    """Revisions of `definition` (or of all), newest first; NotFound for a never-applied name."""
    def read(store: Store) -> list[Revision]:
        revisions = store.revisions(definition)
        if definition is not None and not revisions:
            store.definition(definition)  # raises NotFound when it was never applied
        return revisions

    return _with_project_store(ctx, read)


def deployments(ctx: Context, *, definition: str | None = None, status: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    """Deployments, newest first."""
    return _with_project_store(ctx, lambda s: s.deployments(definition=definition, status=status, limit=limit))


def deployment(ctx: Context, ident: str) -> dict[str, Any]:
    """One deployment with its log lines."""
    return _with_project_store(ctx, lambda s: s.deployment(ident))


def deliveries(ctx: Context, *, status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """Webhook deliveries, newest first, each with its attempts and its body parsed as `payload`."""
    rows = _with_project_store(ctx, lambda s: s.deliveries(status=status, limit=limit))
    return [{**{k: v for k, v in r.items() if k != "body"}, "payload": json.loads(r["body"])} for r in rows]


def retry_delivery(ctx: Context, ident: str) -> dict[str, Any]:
    """Queue a delivery again, due now, try it for a few seconds; the delivery as it ends."""
    _with_project_store(ctx, lambda s: s.retry_delivery(ident, due=clock.stamp()))
    flush_webhooks(ctx, timeout=3.0)
    return _with_project_store(ctx, lambda s: s.delivery(ident))


def ping_webhooks(ctx: Context, url: str | None = None) -> list[dict[str, Any]]:
    """Send a signed `ping` now to every webhook of the project (or to `url`): each outcome."""
    import dataclasses

    from syncer.adapters import webhooks as notify

    project = load(ctx)
    if not project.config.webhooks and url is None:
        raise UsageError("no webhooks in syncer.yaml: add a `webhooks:` entry, or pass --url")
    policy = notify.Policy.from_env()
    store = open_store(ctx, project)
    try:
        with notify.client(policy) as http:
            outcomes = notify.ping(store, project.config.name, project.config.webhooks,
                                   notify.resolver(secrets_for(ctx, project)), http=http, url=url,
                                   timeout=policy.timeout)
    finally:
        store.close()
    return [dataclasses.asdict(o) for o in outcomes]


def generate_key(ctx: Context, *, name: str, permission: str, rate_limit: int | None) -> dict[str, Any]:
    """A new API key: the only time its secret part is returned."""
    from syncer.engine.operations import create_api_key

    with _store(ctx) as store:
        new = create_api_key(store, name=name, permission=permission, rate_limit=rate_limit)
    return {"id": new.id, "name": new.name, "key": new.key, "permissions": new.permissions,
            "rate_limit": new.rate_limit}


def list_keys(ctx: Context) -> list[dict[str, Any]]:
    """Every key (never the key itself), with its permissions and status."""
    from syncer.engine.operations import key_permissions

    with _store(ctx) as store:
        rows = store.api_keys()
    return [{**r, "permissions": key_permissions(r["permission"]),
             "status": "revoked" if r["revoked_at"] else "active"} for r in rows]


def revoke_key(ctx: Context, ident: str) -> dict[str, Any]:
    """Revoke a key at once."""
    with _store(ctx) as store:
        return store.revoke_api_key(ident)
