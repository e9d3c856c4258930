"""webhooks and keys: outgoing event deliveries and the API's keys."""

from __future__ import annotations

from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import cli, context


@cli.group()
def webhooks() -> None:
    """Outgoing event webhooks: the delivery queue, test pings, retries.

    Each `webhooks:` target of syncer.yaml gets the events it lists (all when it lists
    none) as JSON POSTs with X-Syncer-Event, X-Syncer-Delivery, X-Syncer-Timestamp and
    X-Syncer-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>. Events
    are queued in the store, so a restart loses none; `syncer watch` and `syncer serve`
    deliver them continuously, `syncer apply` for a few seconds at its end. A failed
    delivery is retried with exponential backoff (5 s doubling to 1 h; given up after 10
    tries or 24 h; env SYNCER_WEBHOOK_BACKOFF, _BACKOFF_MAX, _MAX_ATTEMPTS, _MAX_AGE,
    _TIMEOUT in seconds). It never fails the deployment that caused it.
    """


@webhooks.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "failed"]),
              help="Only deliveries in this state (pending: waiting for a retry; failed: given up).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (each body parsed, under `payload`).")
@click.pass_obj
def webhooks_deliveries(obj: dict[str, Any], status: str | None, limit: int, as_json: bool) -> int:
    """Deliveries, newest first, each with its attempts (time, HTTP status or error, duration)."""
    from syncer.engine import records

    rows = records.deliveries(context(obj), status=status, limit=limit)
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo(_deliveries_text(rows), nl=False)
    return 0


def _deliveries_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No webhook deliveries.\n"
    lines = []
    for r in rows:
        state = r["status"] + (f" (next try {r['next_attempt_at']})" if r["status"] == "pending" else "")
        lines.append(f"{r['id']}  {r['event']:<22}  {state}  {r['url']}  queued {r['created_at']}")
        for a in r["attempt_log"]:
            answer = str(a["status_code"] or "-") + (f"  {a['error']}" if a["error"] else "")
            lines.append(f"    {a['at']}  {answer}  ({a['duration_ms'] or 0} ms)")
    return "\n".join(lines) + "\n"


@webhooks.command("test")
@click.option("--url", help="Send to this URL only (signed with its secret when syncer.yaml configures it,"
                            " unsigned otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def webhooks_test(obj: dict[str, Any], url: str | None, as_json: bool) -> int:
    """Send a signed `ping` event now to every webhook of syncer.yaml (or to --url).

    Prints how each receiver answered; the pings are recorded as deliveries but never
    retried. Exits 1 when any of them failed.
    """
    from syncer.engine import records

    outcomes = records.ping_webhooks(context(obj), url)
    if as_json:
        click.echo(views.to_json(outcomes), nl=False)
    else:
        for o in outcomes:
            how = f"HTTP {o['status_code']}" if o["error"] is None else o["error"]
            click.echo(f"ping {o['url']}: {o['status']} ({how}, {o['duration_ms']} ms) [{o['delivery']}]")
    return 0 if all(o["status"] == "delivered" for o in outcomes) else 1


@webhooks.command("retry")
@click.argument("delivery_id")
@click.pass_obj
def webhooks_retry(obj: dict[str, Any], delivery_id: str) -> int:
    """Queue DELIVERY_ID again (typically a failed one), due now with a fresh retry budget.

    It is tried at once for a few seconds; if the receiver still does not answer, it stays
    queued for `syncer watch`/`serve` or the next apply.
    """
    from syncer.engine import records

    row = records.retry_delivery(context(obj), delivery_id)
    click.echo(f"{delivery_id}: {row['status']}" + (f" ({row['last_error']})" if row["status"] != "delivered"
                                                     and row["last_error"] else ""))
    return 0


@cli.group()
def keys() -> None:
    """API keys for `syncer serve` and `syncer watch --listen`: generate, list, revoke.

    A key is shown once, when generated; the store keeps only its SHA-256. Send it as
    `Authorization: Bearer KEY`. A read key may GET; a write key may also POST.
    """


@keys.command("generate")
@click.option("--name", required=True, help="What the key is for (shown in `keys list`).")
@click.option("--permission", type=click.Choice(["read", "write"]), required=True,
              help="read: GET only; write: also POST (sync, deploy, rollback, stop/start).")
@click.option("--rate-limit", type=click.IntRange(min=1), metavar="N",
              help="Requests a minute for this key (default: syncer.yaml's api.rate_limit, else 100).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "name", "key", "permissions"} as JSON.')
@click.pass_obj
def keys_generate(obj: dict[str, Any], name: str, permission: str, rate_limit: int | None, as_json: bool) -> int:
    """Generate a key and print it, once."""
    from syncer.engine import records

    new = records.generate_key(context(obj), name=name, permission=permission, rate_limit=rate_limit)
    if as_json:
        click.echo(views.to_json(new), nl=False)
    else:
        click.echo(f"API key {new['id']} ({new['name']}, {permission}):\n\n    {new['key']}\n\n"
                   "Store it now: it is not shown again (syncer keeps only its hash).")
    return 0


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def keys_list(obj: dict[str, Any], as_json: bool) -> int:
    """Every key (never the key itself): permission, rate limit, last use, revoked or not."""
    from syncer.engine import records

    rows = records.list_keys(context(obj))
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo(views.table(["ID", "NAME", "PERMISSION", "RATE LIMIT", "CREATED", "LAST USED", "STATUS"],
                               [[r["id"], r["name"], r["permission"], r["rate_limit"] or "default", r["created_at"],
                                 r["last_used_at"] or "never", f"revoked {r['revoked_at']}" if r["revoked_at"]
                                 else "active"] for r in rows]), nl=False)
    return 0


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(obj: dict[str, Any], key_id: str) -> int:
    """Revoke KEY_ID: requests with it fail (401) from now on."""
    from syncer.engine import records

    row = records.revoke_key(context(obj), key_id)
    click.echo(f"Revoked {row['id']} ({row['name']}).")
    return 0
