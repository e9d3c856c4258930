"""instances and logs: the project's containers, and syncer's own records."""

from __future__ import annotations

from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import cli, context
from syncer.engine import facade as engine


@cli.group()
def instances() -> None:
    """The project's containers on every server: list, logs, stop, start, restart.

    `stop` holds a container stopped: plans, applies and self-heal leave it stopped until
    it is started through syncer (`start`, `restart`, the API) or its definition changes."""


@instances.command("list")
@click.option("--definition", help="Only this definition's containers.")
@click.option("--server", help="Only this server's containers.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def instances_list(obj: dict[str, Any], definition: str | None, server: str | None, as_json: bool) -> int:
    """Every managed container: id, name, definition, server, state, health, and a note: held
    stopped by an operator, finished (ended on its own as its restart policy allows), or why one
    does not run (`Exited (1) …`; a Swarm task's slot: `waiting out its restart delay (task
    ready); last failure: …`). A server that does not answer is named on stderr, and the exit
    code is 1."""
    from syncer.engine import operations

    ctx = context(obj)
    rows, down = operations.instance_rows(ctx, engine.load(ctx), definition=definition, server=server)
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo(views.table(["ID", "NAME", "DEFINITION", "SERVER", "STATE", "HEALTH", "NOTE"],
                               [[r["id"], r["name"], r["definition"], r["server"], r["state"], r["health"] or "-",
                                 _note(r)] for r in rows]), nl=False)
    for line in down:  # the rows of the others are listed; the exit code says the list is partial
        click.echo(line, err=True)
    return 1 if down else 0


def _note(row: dict[str, Any]) -> str:
    """`held stopped`, `finished`, else why one that does not run does not (its status)."""
    if row["held_stopped"] or row["finished"]:
        return "held stopped" if row["held_stopped"] else "finished"
    return "" if row["state"] == "running" else str(row.get("status") or "")


def _one(obj: dict[str, Any], act: str, ident: str, **kw: Any) -> int:
    from syncer.engine import operations

    ctx = context(obj)
    project = engine.load(ctx)
    do = {"stop": operations.stop_instance, "start": operations.start_instance,
          "restart": operations.restart_instance}[act]
    c = do(ctx, project, ident, **kw)
    click.echo(f"{c.name} on {c.server}: {c.state}")
    return 0


@instances.command("stop")
@click.argument("instance")
@click.option("--timeout", type=click.IntRange(0), default=10, show_default=True,
              help="Seconds before the container is killed.")
@click.pass_obj
def instances_stop(obj: dict[str, Any], instance: str, timeout: int) -> int:
    """Stop INSTANCE (inst_ id, container id or name) and hold it stopped."""
    return _one(obj, "stop", instance, timeout=timeout)


@instances.command("start")
@click.argument("instance")
@click.pass_obj
def instances_start(obj: dict[str, Any], instance: str) -> int:
    """Start INSTANCE and release its hold."""
    return _one(obj, "start", instance)


@instances.command("restart")
@click.argument("instance")
@click.option("--timeout", type=click.IntRange(0), default=10, show_default=True,
              help="Seconds before the container is killed.")
@click.pass_obj
def instances_restart(obj: dict[str, Any], instance: str, timeout: int) -> int:
    """Restart INSTANCE (and release its hold)."""
    return _one(obj, "restart", instance, timeout=timeout)


@instances.command("logs")
@click.argument("instance")
@click.option("--tail", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Last N lines.")
@click.option("--json", "as_json", is_flag=True, help='Print {"lines": [...]} as JSON.')
@click.pass_obj
def instances_logs(obj: dict[str, Any], instance: str, tail: int, as_json: bool) -> int:
    """The container's own output (stdout and stderr), secrets masked."""
    from syncer.engine import operations

    ctx = context(obj)
    lines = operations.instance_log_lines(ctx, engine.load(ctx), instance, tail=tail)
    click.echo(views.to_json({"lines": lines}) if as_json else "".join(f"{ln}\n" for ln in lines), nl=False)
    return 0


@cli.command()
@click.option("--level", type=click.Choice(["debug", "info", "warn", "error"]),
              help="This level and the more severe ones.")
@click.option("--component", help="Only this component (watch, api, webhooks, ...).")
@click.option("--since", metavar="TIME", help="ISO 8601 time, or a duration ago (30m, 2h, 1d).")
@click.option("--until", metavar="TIME", help="ISO 8601 time, or a duration ago.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def logs(obj: dict[str, Any], level: str | None, component: str | None, since: str | None, until: str | None,
         limit: int, as_json: bool) -> int:
    """syncer's own records (what `watch` and `serve` did), newest first, like GET /logs."""
    from syncer.engine import logbook

    rows, _ = logbook.read_logs(context(obj), level=level, component=component, since=since, until=until,
                                limit=limit)
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo("".join(f"{r['timestamp']}  {r['level']:<5}  {r['component']:<9}  {r['message']}\n"
                           for r in reversed(rows)) or "No log records.\n", nl=False)
    return 0
