"""status, history, deployments: what runs and what happened, read from the servers and the store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import cli, context
from syncer.core.errors import InvalidProject, SecretError
from syncer.engine import facade as engine


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def status(obj: dict[str, Any], as_json: bool) -> int:
    """Per definition: server, revision, containers with state and health, in sync or drifted;
    then each server: reachable or not, and its engine's version. Exits 1 when a server did
    not answer."""
    ctx = context(obj)
    try:
        _, rows, servers = engine.status(ctx)
    except InvalidProject as exc:
        # what runs is what the operator needs during the incident: as of the last commit an
        # apply ran at (the errors follow, exit 1); outside git, or before any apply, the errors alone
        last = engine.last_applied(ctx)
        if last is None:
            raise
        _, rows, servers = engine.status(replace(ctx, ref=last))
        if as_json:
            click.echo(views.to_json({**views.status_dict(rows, servers), "as_of_commit": last}), nl=False)
        else:
            click.echo(f"The work tree is invalid (below): as of commit {last[:12]}, the last one applied\n"
                       + views.status_text(rows) + "\n" + views.servers_text(servers), nl=False)
        raise exc from None
    except SecretError:
        # the key is kept on a server that did not answer: nothing can be rendered, but which
        # servers answer is what the operator needs now (the error follows, exit 1)
        from syncer.engine import queries

        reach = [{k: r[k] for k in ("name", "reachable", "engine_version", "error")}
                 for r in queries.servers_info(engine.load(ctx))]
        click.echo(views.to_json({"servers": reach}) if as_json else views.servers_text(reach), nl=False)
        raise
    if as_json:
        click.echo(views.to_json(views.status_dict(rows, servers)), nl=False)
    else:
        click.echo(views.status_text(rows) + "\n" + views.servers_text(servers), nl=False)
    return 0 if all(s["reachable"] for s in servers) else 1


@cli.command()
@click.argument("definition", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the revisions as JSON.")
@click.pass_obj
def history(obj: dict[str, Any], definition: str | None, as_json: bool) -> int:
    """The revisions of DEFINITION (or of every definition), newest first."""
    from syncer.engine import records

    revisions = records.history(context(obj), definition)
    if as_json:
        click.echo(views.to_json([views.revision_dict(r) for r in revisions]), nl=False)
    else:
        click.echo(views.history_text(revisions), nl=False)
    return 0


@cli.group()
def deployments() -> None:
    """List deployments and show one with its log."""


@deployments.command("list")
@click.option("--definition", help="Only this definition's deployments.")
@click.option("--status", type=click.Choice(["pending", "running", "success", "failed"]), help="Only this status.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def deployments_list(obj: dict[str, Any], definition: str | None, status: str | None, limit: int,
                     as_json: bool) -> int:
    """Deployments, newest first."""
    from syncer.engine import records

    rows = records.deployments(context(obj), definition=definition, status=status, limit=limit)
    click.echo(views.to_json(rows) if as_json else views.deployments_text(rows), nl=False)
    return 0


@deployments.command("show")
@click.argument("deployment_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def deployments_show(obj: dict[str, Any], deployment_id: str, as_json: bool) -> int:
    """One deployment with its log lines."""
    from syncer.engine import records

    row = records.deployment(context(obj), deployment_id)
    click.echo(views.to_json(row) if as_json else views.deployment_text(row), nl=False)
    return 0
