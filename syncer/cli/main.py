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

from syncer import __version__
from syncer.engine import facade as engine
from syncer.engine import operations
from syncer.cli import views
from syncer.core.errors import SyncerError

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
    from syncer.stages.plan import desired_hash, to_dict

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
                     help="Seconds a new container without a healthcheck must stay running to count as started."),
        click.option("--prune-volumes", is_flag=True, help="Also remove the named volumes of removed containers."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _options(kw: dict[str, Any]) -> Any:
    from syncer.engine.apply import ApplyOptions

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
    PLAN_FILE (from `syncer plan --out`): apply that plan, refusing it if the repository or
    the live containers moved since it was made. A recreate keeps the old container until
    the new one runs (and is healthy); if the new one fails, the old one is started again.
    Exits 1 when anything failed.
    """
    import json as _json

    saved = None
    if plan_file is not None:
        try:
            saved = _json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SyncerError(f"cannot read plan file {plan_file}: {exc}") from None
        if not isinstance(saved, dict) or saved.get("format_version") != 1:
            raise SyncerError(f"{plan_file} is not a syncer plan (format_version 1)")
    auto = kw["auto_approve"] or saved is not None
    confirm = _confirm(auto, kw["as_json"])
    progress: Any = None

    def approve(p: Any) -> bool:
        nonlocal progress
        ok = bool(confirm(p))
        progress = _progress(kw["as_json"]) if ok else None
        return ok

    def show(definition: str, line: str) -> None:
        (progress or views.PlainProgress())(definition, line) if not kw["as_json"] else None

    try:
        report = engine.apply(_context(obj), options=_options(kw), confirm=approve, plan_file=saved,
                              progress=show)
    finally:
        if progress is not None:
            progress.close()
    if not report.plan.has_changes and not kw["as_json"]:
        click.echo(views.closing_line(report.plan))
    code = _finish_apply(report, kw["as_json"])
    _flush_webhooks(obj, kw["as_json"], report.project)  # after the report: a slow receiver must not hold it back
    return code


@cli.command()
@click.argument("definition")
@click.option("--to", "to", type=int, metavar="N", help="The revision to go back to (default: the previous one).")
@_apply_options
@click.pass_obj
def rollback(obj: dict[str, Any], /, definition: str, to: int | None, **kw: Any) -> int:
    """Deploy an earlier revision of DEFINITION again, as a new revision.

    The new revision records `rollback_of`. The definition stays pinned to it (in
    `apply` and `watch`) until git next changes that definition.
    """
    progress = _progress(kw["as_json"])
    try:
        report = engine.rollback(_context(obj), definition, to=to, options=_options(kw),
                                 confirm=_confirm(kw["auto_approve"], kw["as_json"]), progress=progress)
    finally:
        progress.close()
    code = _finish_apply(report, kw["as_json"])
    _flush_webhooks(obj, kw["as_json"], report.project)  # after the report: a slow receiver must not hold it back
    return code


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def status(obj: dict[str, Any], as_json: bool) -> int:
    """Per definition: server, revision, containers with state and health, in sync or drifted."""
    _, rows = engine.status(_context(obj))
    click.echo(views.to_json(views.status_dict(rows)) if as_json else views.status_text(rows), nl=False)
    return 0


@cli.command()
@click.argument("definition", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the revisions as JSON.")
@click.pass_obj
def history(obj: dict[str, Any], definition: str | None, as_json: bool) -> int:
    """The revisions of DEFINITION (or of every definition), newest first."""
    ctx = _context(obj)
    store = engine.open_store(ctx, engine.load(ctx))
    try:
        revisions = store.revisions(definition)
        if definition is not None and not revisions:
            store.definition(definition)  # NotFound when it was never applied
    finally:
        store.close()
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
    ctx = _context(obj)
    store = engine.open_store(ctx, engine.load(ctx))
    try:
        rows = store.deployments(definition=definition, status=status, limit=limit)
    finally:
        store.close()
    click.echo(views.to_json(rows) if as_json else views.deployments_text(rows), nl=False)
    return 0


@deployments.command("show")
@click.argument("deployment_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def deployments_show(obj: dict[str, Any], deployment_id: str, as_json: bool) -> int:
    """One deployment with its log lines."""
    ctx = _context(obj)
    store = engine.open_store(ctx, engine.load(ctx))
    try:
        row = store.deployment(deployment_id)
    finally:
        store.close()
    click.echo(views.to_json(row) if as_json else views.deployment_text(row), nl=False)
    return 0


@cli.command()
@click.option("--repo", "source", metavar="DIR|URL",
              help="A local work tree (default: the project found as usual) or a git URL to clone into the"
                   " state dir and follow (https://, ssh://, file://, git@host:path; credentials from git's"
                   " own configuration, never logged).")
@click.option("--branch", default="main", show_default=True, help="The branch followed when --repo is a URL.")
@click.option("--git-poll", default="30s", show_default=True, metavar="DURATION",
              help="How often to fetch the remote / look for new local commits.")
@click.option("--resync", default="5m", show_default=True, metavar="DURATION",
              help="A full re-plan this often, for drift nothing reported.")
@click.option("--debounce", default="500ms", show_default=True, metavar="DURATION",
              help="File changes closer together than this are one trigger.")
@click.option("--self-heal/--no-self-heal", default=True, show_default=True,
              help="Converge again when Docker reports a managed container died, stopped or was removed.")
@click.option("--listen", metavar="HOST:PORT", help="Also serve the HTTP API (status, REST, webhooks) here.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One line per event, as text or JSON (for log shippers).")
@click.option("--parallelism", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Actions at once within a dependency wave.")
@click.option("--health-timeout", type=click.FloatRange(0), default=120.0, show_default=True,
              help="Seconds a new container has to become healthy.")
@click.option("--stop-timeout", type=click.IntRange(0), default=10, show_default=True,
              help="Seconds a container gets to stop before it is killed.")
@click.pass_obj
def watch(obj: dict[str, Any], /, source: str | None, branch: str, git_poll: str, resync: str, debounce: str,
          self_heal: bool, listen: str | None, log_format: str, parallelism: int, health_timeout: float,
          stop_timeout: int) -> int:
    """Keep every server converged to the repository, continuously.

    Re-plans and applies when a file under the repo changes, when the branch moves, when
    Docker reports a managed container died or was removed (self-heal), on a push webhook
    or API request (with --listen), and every --resync. A state that fails validation is
    never applied: its problems are logged and shown by `status`, and what runs keeps
    running. SIGTERM/SIGINT finish the action in flight, release the lock and exit 0.
    """
    from syncer.daemon import watch as watch_
    from syncer.engine.apply import ApplyOptions

    watch_.configure_logging(log_format)
    ctx = _context(obj)
    remote = None
    if source is not None:
        from syncer.adapters import git as gitsource

        if gitsource.is_remote(source):
            remote = source
        else:
            ctx = engine.Context(repo=Path(source), state_dir=ctx.state_dir, secrets_file=ctx.secrets_file)
    options = watch_.WatchOptions(
        source=remote, branch=branch, git_poll=watch_.parse_duration(git_poll),
        resync=watch_.parse_duration(resync), debounce=watch_.parse_duration(debounce), self_heal=self_heal,
        listen=listen, apply=ApplyOptions(parallelism=parallelism, health_timeout=health_timeout,
                                          stop_timeout=stop_timeout))
    return watch_.Watcher(ctx, options).run()


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


# --- webhooks ---------------------------------------------------------------------------

def _flush_webhooks(obj: dict[str, Any], as_json: bool, project: Any = None) -> None:
    """One-shot commands have no Notifier: try the due deliveries for a few seconds."""
    delivered, queued = engine.flush_webhooks(_context(obj), timeout=3.0, project=project)
    if queued and not as_json:
        click.echo(f"webhooks: {queued} delivery(ies) still queued; `syncer watch`/`serve` or the next apply"
                   " retries them (see `syncer webhooks deliveries`)", err=True)


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


def _webhook_store(obj: dict[str, Any]) -> Any:
    ctx = _context(obj)
    return engine.open_store(ctx, engine.load(ctx))


@webhooks.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "failed"]),
              help="Only deliveries in this state (pending: waiting for a retry; failed: given up).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (each body parsed, under `payload`).")
@click.pass_obj
def webhooks_deliveries(obj: dict[str, Any], status: str | None, limit: int, as_json: bool) -> int:
    """Deliveries, newest first, each with its attempts (time, HTTP status or error, duration)."""
    import json as _json

    store = _webhook_store(obj)
    try:
        rows = store.deliveries(status=status, limit=limit)
    finally:
        store.close()
    if as_json:
        out = [{**{k: v for k, v in r.items() if k != "body"}, "payload": _json.loads(r["body"])} for r in rows]
        click.echo(views.to_json(out), nl=False)
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
    import dataclasses

    from syncer.adapters import webhooks as notify
    from syncer.core.errors import UsageError

    ctx = _context(obj)
    project = engine.load(ctx)
    if not project.config.webhooks and url is None:
        raise UsageError("no webhooks in syncer.yaml: add a `webhooks:` entry, or pass --url")
    policy = notify.Policy.from_env()
    store = engine.open_store(ctx, project)
    try:
        with notify.client(policy) as http:
            outcomes = notify.ping(store, project.config.name, project.config.webhooks,
                                   notify.resolver(engine.secrets_for(ctx, project)), http=http, url=url,
                                   timeout=policy.timeout)
    finally:
        store.close()
    if as_json:
        click.echo(views.to_json([dataclasses.asdict(o) for o in outcomes]), nl=False)
    else:
        for o in outcomes:
            how = f"HTTP {o.status_code}" if o.error is None else o.error
            click.echo(f"ping {o.url}: {o.status} ({how}, {o.duration_ms} ms) [{o.delivery}]")
    return 0 if all(o.status == "delivered" for o in outcomes) else 1


@webhooks.command("retry")
@click.argument("delivery_id")
@click.pass_obj
def webhooks_retry(obj: dict[str, Any], delivery_id: str) -> int:
    """Queue DELIVERY_ID again (typically a failed one), due now with a fresh retry budget.

    It is tried at once for a few seconds; if the receiver still does not answer, it stays
    queued for `syncer watch`/`serve` or the next apply.
    """
    import time

    from syncer.adapters import webhooks as notify

    store = _webhook_store(obj)
    try:
        store.retry_delivery(delivery_id, due=notify.iso(time.time()))
    finally:
        store.close()
    engine.flush_webhooks(_context(obj), timeout=3.0)
    store = _webhook_store(obj)
    try:
        row = store.delivery(delivery_id)
    finally:
        store.close()
    click.echo(f"{delivery_id}: {row['status']}" + (f" ({row['last_error']})" if row["status"] != "delivered"
                                                     and row["last_error"] else ""))
    return 0


@cli.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where to serve the API (port 0 picks a free one).")
@click.option("--sample-interval", default="15s", show_default=True, metavar="DURATION",
              help="How often CPU and memory of the project's containers are sampled (0 turns it off).")
@click.option("--sample-retention", default="24h", show_default=True, metavar="DURATION",
              help="How long samples are kept.")
@click.option("--access-log", is_flag=True, help="Log one line per request.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines as text or JSON.")
@click.pass_obj
def serve(obj: dict[str, Any], listen: str, sample_interval: str, sample_retention: str, access_log: bool,
          log_format: str) -> int:
    """Serve the HTTP API: status, templates, definitions, instances, servers, deployments,
    sync, git webhooks and Prometheus metrics under /api/v1 (OpenAPI at /api/v1/openapi.json).

    Every route but /health needs `Authorization: Bearer KEY` (see `syncer keys`). POST
    /sync and POST /deployments apply in a worker thread of this process; for continuous
    convergence use `syncer watch --listen` instead. SIGTERM/SIGINT finish the requests and
    the apply in flight, then exit 0.
    """
    import signal
    import threading

    from syncer.api import app as api
    from syncer.daemon import watch as watch_

    watch_.configure_logging(log_format)
    host, port = api.parse_listen(listen)
    interval = watch_.parse_duration(sample_interval)
    ctx = _context(obj)
    app = api.create_app(ctx, sample_interval=interval or None,
                         sample_retention=watch_.parse_duration(sample_retention))
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    handle = api.serve_in_thread(app, host, port, access_log=access_log)
    notifier = _start_notifier(ctx)
    click.echo(f"syncer: serving http://{host}:{handle.port}/api/v1 (SIGTERM or Ctrl-C stops)", err=True)
    try:
        while handle.alive and not stopping.wait(0.5):
            pass
    finally:
        handle.stop()
        if notifier is not None:
            notifier.stop()
    return 0 if stopping.is_set() else 1


def _start_notifier(ctx: engine.Context) -> Any:
    """The webhook sender thread (None, with a warning, when the project cannot be read now)."""
    import logging

    try:
        return engine.start_notifier(ctx)
    except SyncerError as exc:
        logging.getLogger("syncer.api.app").warning("webhooks: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return None


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
    store = operations.state_store(_context(obj))
    try:
        new = operations.create_api_key(store, name=name, permission=permission, rate_limit=rate_limit)
    finally:
        store.close()
    if as_json:
        click.echo(views.to_json({"id": new.id, "name": new.name, "key": new.key, "permissions": new.permissions,
                                  "rate_limit": new.rate_limit}), nl=False)
    else:
        click.echo(f"API key {new.id} ({new.name}, {permission}):\n\n    {new.key}\n\n"
                   "Store it now: it is not shown again (syncer keeps only its hash).")
    return 0


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def keys_list(obj: dict[str, Any], as_json: bool) -> int:
    """Every key (never the key itself): permission, rate limit, last use, revoked or not."""
    store = operations.state_store(_context(obj))
    try:
        rows = store.api_keys()
    finally:
        store.close()
    if as_json:
        click.echo(views.to_json([{**r, "permissions": operations.key_permissions(r["permission"]),
                                   "status": "revoked" if r["revoked_at"] else "active"} for r in rows]), nl=False)
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
    store = operations.state_store(_context(obj))
    try:
        row = store.revoke_api_key(key_id)
    finally:
        store.close()
    click.echo(f"Revoked {row['id']} ({row['name']}).")
    return 0
