"""templates, servers, init, completion: the catalog, the servers, a new repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import PATH, cli, context
from syncer.engine import facade as engine


@cli.group()
def templates() -> None:
    """The template catalog: list it (filtered on taxonomy) and show one template."""



@templates.command("list")
@click.option("--kingdom", help="Only templates of this taxonomy kingdom (e.g. assets).")
@click.option("--family", help="Only this family (e.g. database).")
@click.option("--species", help="Only this species (e.g. mysql).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def templates_list(obj: dict[str, Any], kingdom: str | None, family: str | None, species: str | None,
                   as_json: bool) -> int:
    """Every template (id@version, name, taxonomy, deprecated), like GET /templates."""
    from syncer.engine import catalog

    rows = catalog.list_templates(engine.load(context(obj)), kingdom=kingdom, family=family, species=species)
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo(views.table(["REF", "NAME", "TAXONOMY", "DEPRECATED", "FILE"],
                               [[r["ref"], r["name"], "/".join(str(v) for v in r["taxonomy"].values()) or "-",
                                 "yes" if r["deprecated"] else "", r["file"]] for r in rows]), nl=False)
    return 0


@templates.command("show")
@click.argument("template")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def templates_show(obj: dict[str, Any], template: str, as_json: bool) -> int:
    """One template (by id, id@version or tpl_ id) with its inputs, spec and profiles.

    A plain id shows the version a definition naming that id gets."""
    from syncer.engine import catalog

    found = catalog.template_dict(catalog.find_template(engine.load(context(obj)), template), detail=True)
    if as_json:
        click.echo(views.to_json(found), nl=False)
    else:
        click.echo(views.template_text(found), nl=False)
    return 0


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def servers(obj: dict[str, Any], as_json: bool) -> int:
    """Each server: reachable or not (and why), engine version, the project's containers there
    (on a Swarm server: its tasks, and its nodes: how many, how many ready, those that are not).

    Exits 1 when a server does not answer."""
    from syncer.engine import queries

    rows = queries.servers_info(engine.load(context(obj)))
    if as_json:
        click.echo(views.to_json(rows), nl=False)
    else:
        click.echo(views.table(["SERVER", "ENVIRONMENT", "REACHABLE", "ENGINE", "CONTAINERS", "NODES", "DOCKER"],
                               [[r["name"], r["environment"] or "-", "yes" if r["reachable"] else f"no: {r['error']}",
                                 r["engine_version"] or "-", views.counts(r["containers"]),
                                 views.swarm_nodes(r.get("swarm")), r["docker"]]
                                for r in rows]), nl=False)
    return 0 if all(r["reachable"] for r in rows) else 1


@cli.command()
@click.argument("directory", required=False, type=PATH, default=Path("."))
@click.option("--project", "name", help="The project name (default: the directory's name).")
def init(directory: Path, name: str | None) -> int:
    """Start a repository in DIRECTORY: syncer.yaml, one template, one definition.

    It validates at once (`syncer --repo DIRECTORY validate`); existing files are never
    overwritten."""
    written = engine.init_repository(directory, name)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"Next: syncer --repo {directory} plan")
    return 0


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the shell completion script for SHELL.

    bash: `eval "$(syncer completion bash)"` in ~/.bashrc; zsh: the same with zsh in
    ~/.zshrc; fish: `syncer completion fish > ~/.config/fish/completions/syncer.fish`."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the three choices are click's own
    click.echo(cls(cli, {}, "syncer", "_SYNCER_COMPLETE").source())
    return 0
