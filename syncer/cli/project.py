"""validate, plan, apply, rollback: the commands that read the repository and change servers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from syncer.cli import views
from syncer.cli.base import PATH, cli, context, flush_webhooks
from syncer.core.errors import SyncerError
from syncer.engine import facade as engine


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def validate(obj: dict[str, Any], as_json: bool) -> int:
    """Check every file of the project; print each problem as FILE:LINE:COLUMN: message.

    Nothing touches Docker. Exits 0 when the project is valid, 1 otherwise.
    """
    project = engine.validated(context(obj))
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
    ctx = context(obj, ref)
    project = engine.load(ctx)
    result, desired, _ = engine.compute_plan(ctx, project)
    data = engine.plan_document(result, desired)
    if out is not None:
        _write_atomic(out, views.to_json(data))
    click.echo(views.to_json(data) if as_json else views.plan_text(result, show_noop=show_noop), nl=False)
    if result.unreachable:  # the plan is shown, but it is not the whole plan: an error
        return 1
    if detailed_exitcode and result.has_changes:
        return 2
    return 0


def _apply_options(f: Any) -> Any:
    """The options every command that changes containers takes."""
    options = [
        click.option("--auto-approve", is_flag=True, help="Apply without asking (for CI and scripts)."),
        click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
                     help="Actions at once within a dependency wave."),
        click.option("--health-timeout", type=click.FloatRange(0), default=120.0, show_default=True,
                     help="Seconds a new container has to become healthy (when it has a healthcheck)."),
        click.option("--stop-timeout", type=click.IntRange(0), default=10, show_default=True,
                     help="Seconds a container gets to stop before it is killed."),
        click.option("--settle", type=click.FloatRange(0), default=0.0, show_default=True,
                     help="Seconds a new container without a healthcheck must stay running to count as started"
                          " (one its restart policy restarts meanwhile: it must then stay up 2s at least)."),
        click.option("--prune-volumes", is_flag=True, help="Also remove the named volumes of removed containers."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(kw: dict[str, Any]) -> Any:
    from syncer.engine.options import ApplyOptions

    return ApplyOptions(parallelism=kw["parallelism"], health_timeout=kw["health_timeout"],
                        stop_timeout=kw["stop_timeout"], prune_volumes=kw["prune_volumes"], settle=kw["settle"])


def _confirm(auto_approve: bool, as_json: bool) -> Any:
    from syncer.core.errors import UsageError

    def confirm(p: Any) -> bool:
        if not as_json:
            click.echo(views.plan_text(p), nl=False)
        if auto_approve:
            return True
        if not sys.stdin.isatty():
            raise UsageError("refusing to apply without confirmation: no terminal to ask on;"
                             " pass --auto-approve (after reviewing `syncer plan`)")
        answer = click.prompt("Apply these changes? Only 'yes' will be accepted", default="", show_default=False)
        if answer.strip() != "yes":
            click.echo("Apply cancelled.")
            return False
        return True

    return confirm


class _Quiet:
    def __call__(self, definition: str, line: str) -> None:
        return None

    def close(self) -> None:
        return None


def _progress(as_json: bool) -> Any:
    """Live rows on a terminal, plain lines otherwise, nothing with --json."""
    if as_json:
        return _Quiet()
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        return views.LiveProgress()
    return views.PlainProgress()


def _finish_apply(report: Any, as_json: bool) -> int:
    if as_json:
        click.echo(views.to_json(views.apply_dict(report)), nl=False)
    elif report.applied:
        click.echo(views.apply_text(report), nl=False)
    return 0 if report.ok else 1


@cli.command()
@click.argument("plan_file", required=False, type=PATH)
@_apply_options
@click.pass_obj
def apply(obj: dict[str, Any], /, plan_file: Path | None, **kw: Any) -> int:
    """Apply the project (or exactly the saved PLAN_FILE) to the servers.

    Without PLAN_FILE: plan, show it, ask for confirmation (or --auto-approve). With
    PLAN_FILE (from `syncer plan --out`): apply exactly that plan, refusing it if the
    repository or the live containers moved since it was made, or if it is not the plan
    they give (edited by hand). A recreate keeps the old container until the new one runs
    (and is healthy); if the new one fails, the old one is started again. Exits 1 when
    anything failed.
    """
    auto = kw["auto_approve"] or plan_file is not None
    confirm = _confirm(auto, kw["as_json"])
    progress: Any = None

    def approve(p: Any) -> bool:
        nonlocal progress
        if progress is not None:  # asked again: the live state moved while the lock was taken
            progress.close()
            progress = None
        ok = bool(confirm(p))
        progress = _progress(kw["as_json"]) if ok else None
        return ok

    def show(definition: str, line: str) -> None:
        (progress or views.PlainProgress())(definition, line) if not kw["as_json"] else None

    try:
        report = engine.apply(context(obj), options=_options(kw), confirm=approve, plan_file=plan_file,
                              progress=show)
    finally:
        if progress is not None:
            progress.close()
    if not report.plan.has_changes and not kw["as_json"]:
        click.echo(views.closing_line(report.plan))
    code = _finish_apply(report, kw["as_json"])
    flush_webhooks(obj, kw["as_json"], report.project)  # after the report: a slow receiver must not hold it back
    return code


@cli.command()
@click.argument("definition")
@click.option("--to", "to", type=int, metavar="N",
              help="The revision to go back to, at the digests it last ran (default: what ran before).")
@_apply_options
@click.pass_obj
def rollback(obj: dict[str, Any], /, definition: str, to: int | None, **kw: Any) -> int:
    """Deploy what ran before of DEFINITION again, as a new revision.

    What ran before: the last successful deployment of another revision, or of the same one
    while a followed tag (`pull_policy: always`) named another image; that tag is pinned to
    the digest it named then. The new revision records `rollback_of`. The definition stays
    pinned to it (in `apply` and `watch`) until git next changes that definition.
    """
    progress = _progress(kw["as_json"])
    try:
        report = engine.rollback(context(obj), definition, to=to, options=_options(kw),
                                 confirm=_confirm(kw["auto_approve"], kw["as_json"]), progress=progress)
    finally:
        progress.close()
    code = _finish_apply(report, kw["as_json"])
    flush_webhooks(obj, kw["as_json"], report.project)  # after the report: a slow receiver must not hold it back
    return code




def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SyncerError(f"cannot write {path}: {exc.strerror}") from None
