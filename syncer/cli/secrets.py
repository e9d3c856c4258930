"""secrets check: which secret names each definition uses and where each resolves from."""

from __future__ import annotations

from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import cli, context


@cli.group()
def secrets() -> None:
    """Secrets: where the `{secret: NAME}` references of the project resolve from.

    A secret comes from an environment variable, from `--secrets-file`, or from a SOPS
    file committed to git and listed in syncer.yaml (`secrets: {files: [...]}`), decrypted
    in memory with an age identity (SOPS_AGE_KEY_FILE / SOPS_AGE_KEY) or a GnuPG key.
    The environment wins over the secrets file, which wins over SOPS files.
    """


@secrets.command("check")
@click.option("--ref", help="Read the project (and its SOPS files) at this git commit, tag or branch.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON: {definitions: [{definition, secrets: "
                                                      "[{name, source, file}]}], config, missing}.")
@click.pass_obj
def secrets_check_command(obj: dict[str, Any], ref: str | None, as_json: bool) -> int:
    """List each definition's secret names and their source (env, secrets-file, sops FILE,
    or MISSING), never a value. Exits 1 when any is missing or a SOPS file cannot be
    decrypted."""
    from syncer.engine.secretcheck import secrets_check

    report = secrets_check(context(obj, ref))
    if as_json:
        click.echo(views.to_json(report), nl=False)
    else:
        click.echo(_text(report), nl=False)
    return 1 if report["missing"] else 0


def _text(report: dict[str, Any]) -> str:
    rows = [[r["definition"], s["name"], _where(s)] for r in report["definitions"] for s in r["secrets"]]
    rows += [["(syncer.yaml)", s["name"], _where(s)] for s in report["config"]]
    if not rows:
        return "No secrets referenced.\n"
    summary = f"{report['missing']} missing\n" if report["missing"] else "all resolved\n"
    return views.table(["DEFINITION", "SECRET", "SOURCE"], rows) + summary


def _where(s: dict[str, Any]) -> str:
    if s["source"] == "sops":
        return f"sops {s['file']}"
    return "MISSING" if s["source"] == "missing" else str(s["source"])
