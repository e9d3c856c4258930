"""The command line: parse → engine → view → exit code. Nothing is decided here.

Exit codes: 0 success, 1 any error (usage errors included), 2 only for
`plan --detailed-exitcode` when there are changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from syncer import __version__, engine, views
from syncer.errors import SyncerError

PATH = click.Path(path_type=Path)


def _context(obj: dict[str, Any], ref: str | None = None) -> engine.Context:
    return engine.Context(repo=obj.get("repo"), state_dir=obj.get("state_dir"),
                          secrets_file=obj.get("secrets_file"), ref=ref)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--repo", type=PATH, envvar="SYNCER_REPO",
              help="Project directory (default: the current directory or the nearest parent holding syncer.yaml). Env: SYNCER_REPO.")
@click.option("--state-dir", type=PATH, envvar="SYNCER_STATE_DIR",
              help="Where the store and the secret-hashing key live (default: .syncer/ beside syncer.yaml). Env: SYNCER_STATE_DIR.")
@click.option("--secrets-file", type=PATH, envvar="SYNCER_SECRETS_FILE",
              help="A file of NAME=value lines (or a YAML mapping) kept outside git; the environment wins over it. Env: SYNCER_SECRETS_FILE.")
@click.version_option(__version__, prog_name="syncer")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, state_dir: Path | None, secrets_file: Path | None) -> None:
    """syncer keeps Docker servers converged to a git repository of YAML.

    Templates (a catalog with JSON Schema inputs) and definitions (a template, params, a
    profile, a server) say what should run; `syncer plan` shows how live Docker differs,
    `syncer apply` makes it so.
    """
    ctx.obj = {"repo": repo, "state_dir": state_dir, "secrets_file": secrets_file}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def validate(obj: dict[str, Any], as_json: bool) -> int:
    """Check every file of the project; print each problem as FILE:LINE:COLUMN: message.

    Nothing touches Docker. Exits 0 when the project is valid, 1 otherwise.
    """
    project = engine.load(_context(obj))
    if as_json:
        click.echo(views.to_json({"valid": True, "templates": len(project.templates),
                                  "definitions": len(project.definitions)}), nl=False)
    else:
        click.echo(f"Valid: {len(project.templates)} template(s), {len(project.definitions)} definition(s).")
    return 0


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (the format of DESIGN.md) on stdout.")
@click.option("--out", type=PATH, help="Also save the plan as JSON to FILE, for `syncer apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are changes, 1 on error.")
@click.option("--ref", metavar="REV", help="Plan from a git commit, tag or branch, without touching the work tree.")
@click.option("--show-noop", is_flag=True, help="Also list containers that are in sync.")
@click.pass_obj
def plan(obj: dict[str, Any], as_json: bool, out: Path | None, detailed_exitcode: bool, ref: str | None,
         show_noop: bool) -> int:
    """Show what apply would change: create, recreate, start, remove, conflict.

    Observes every server with one list call each and compares it with the rendered
    project. Secrets appear only as "(sensitive value changed)".
    """
    from syncer.plan import desired_hash, to_dict

    ctx = _context(obj, ref)
    project = engine.load(ctx)
    result, desired, _ = engine.compute_plan(ctx, project)
    data = to_dict(result, desired_hash=desired_hash(desired))
    if out is not None:
        _write_atomic(out, views.to_json(data))
    click.echo(views.to_json(data) if as_json else views.plan_text(result, show_noop=show_noop), nl=False)
    if detailed_exitcode and result.has_changes:
        return 2
    return 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SyncerError(f"cannot write {path}: {exc.strerror}") from None


def _fail(lines: list[str], code: int = 1) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; every error becomes one clear message and exit code 1."""
    try:
        code = cli.main(args=argv, prog_name="syncer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail([f"syncer: {exc.format_message()}" + _usage_hint(exc)])
    except click.exceptions.Abort:
        _fail(["syncer: aborted"])
    except SyncerError as exc:
        _fail(exc.lines(), exc.exit_code)
    except KeyboardInterrupt:
        _fail(["syncer: interrupted"], 130)
    except Exception as exc:  # a bug: say so in one line, never a traceback
        if os.environ.get("SYNCER_DEBUG"):
            raise
        _fail([f"syncer: internal error: {exc.__class__.__name__}: {exc} (set SYNCER_DEBUG=1 for details)"])
    sys.exit(code if isinstance(code, int) else 0)


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f" (see '{ctx.command_path} --help')"
    return ""
