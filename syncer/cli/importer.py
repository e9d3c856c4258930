"""import: a Compose file becomes a syncer repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import PATH, cli


@cli.command("import")
@click.argument("compose_files", metavar="COMPOSE_FILE...", nargs=-1, required=True, type=PATH)
@click.option("--project", "project_name", metavar="NAME",
              help="The project's name, as Compose's -p (default, as Compose picks it: COMPOSE_PROJECT_NAME from"
                   " the environment, else from .env or --env-file, else the Compose file's name:, else its"
                   " folder's name).")
@click.option("--out", type=PATH, required=True, help="The directory to write the repository to (new or empty).")
@click.option("--partial", is_flag=True, help="Write what can be carried and exit 0, still listing the rest.")
@click.option("--profile", "profiles", multiple=True, metavar="NAME",
              help="A Compose profile to start, as `docker compose --profile NAME up` (repeatable); a service"
                   " in profiles none of which is given is left out, as Compose leaves it (default, as Compose's:"
                   " COMPOSE_PROFILES from the environment, else from .env or --env-file; `*`: all).")
@click.option("--env-file", "env_files", multiple=True, type=PATH, metavar="PATH",
              help="Read the variables from this file instead of the .env beside the Compose file, as `docker"
                   " compose --env-file PATH` does (repeatable: a later file's value wins).")
@click.option("--name-prefix", metavar="PREFIX", default="",
              help="Begin each definition's name, which is its container's, with PREFIX (`--name-prefix shop-`:"
                   " shop-db), so that several Compose applications, each with its own db, run side by side on"
                   " one host, as Compose's <project>-db-1; the service's name stays a DNS alias on its networks,"
                   " so the application still reaches `db`. A service's container_name is kept as it is.")
@click.option("--no-override", is_flag=True,
              help="Read the one file given, not the compose.override.yaml beside it that `docker compose` reads.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_(compose_files: tuple[Path, ...], project_name: str | None, out: Path, partial: bool,
            profiles: tuple[str, ...], env_files: tuple[Path, ...], name_prefix: str, no_override: bool,
            as_json: bool) -> int:
    """Write a syncer repository from a Docker Compose file (or several, merged in order as
    `docker compose -f A -f B` merges them; one named compose.yaml or docker-compose.yml
    gets the compose.override.yaml beside it merged in, as `docker compose` run there does).

    One template and one definition per service, syncer.yaml with the Compose networks,
    files/ for configs and relative bind mounts the container only reads (a directory's
    files, up to 100, each as a files: entry; a data directory stays the host directory
    Compose mounts, by its absolute path), and {secret: NAME} for every value that looks
    like a password (set those secrets before `syncer apply`). Compose variables
    (${VAR:-default}) become template inputs (${COMPOSE_PROJECT_NAME}: the project's name);
    a service in profiles none of which --profile names is left out, as Compose leaves it.
    Several applications onto one host: --name-prefix keeps their `db`s apart. What cannot
    be carried (build:, say) is listed as FILE:LINE:COLUMN; then nothing is written and the
    exit code is 1, unless --partial.
    """
    from syncer.engine.importer import import_compose  # the Compose stages: only for import

    report = import_compose(compose_files[0], out=out, project=project_name, partial=partial, profiles=profiles,
                            more=compose_files[1:], override=not no_override, env_files=env_files,
                            name_prefix=name_prefix)
    if as_json:
        click.echo(views.to_json({"project": report.project, "out": str(report.out), "merged": report.merged,
                                  "written": report.written,
                                  "not_carried": [str(p) for p in report.problems],
                                  "secrets": report.secrets, "skipped": report.skipped, "needs": report.needs,
                                  "shell": report.shell, "host_paths": report.host_paths}),
                   nl=False)
    else:
        _text(report)
    return 1 if report.problems and not partial else 0


def _text(report: Any) -> None:
    for problem in report.problems:
        click.echo(str(problem), err=True)
    if not report.written:
        click.echo(f"Nothing written: {len(report.problems)} thing(s) cannot be carried (--partial writes the rest).",
                   err=True)
        return
    click.echo(f"Wrote project '{report.project}' to {report.out}: {len(report.written)} file(s).")
    if report.merged:
        how = " (as `docker compose` run in its folder reads it; --no-override reads the first alone)" \
            if report.override_found else ""
        click.echo(f"  merged into the first file, in order: {', '.join(report.merged)}{how}")
    for name, origin in report.secrets.items():
        where = "in the environment (syncer.yaml allows it) or in --secrets-file" if name in report.from_env else \
            "in --secrets-file"
        click.echo(f"  secret {name} ({origin}): set it {where} before apply")
    for where, variable in report.needs.items():
        click.echo(f"  {where}: the Compose file requires ${{{variable}}} and gives it no value: set it before apply")
    for where, variable in report.shell.items():
        click.echo(f"  {where}: Compose passes the shell's {variable} (`{variable}:` with no value): set it, or"
                   " the variable is not set")
    for path, service in report.host_paths.items():
        click.echo(f"  service '{service}' mounts {path} from the host, as Compose does (its data stays"
                   " there): a server that runs it needs that path")
    for name, why in report.skipped.items():
        click.echo(f"  left out service '{name}': {why}")
