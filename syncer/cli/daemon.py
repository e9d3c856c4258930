"""watch and serve: the long-running shells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from syncer.cli.base import cli, context
from syncer.core.errors import SyncerError
from syncer.engine import facade as engine


@cli.command()
@click.option("--repo", "source", metavar="DIR|URL",
              help="A local work tree (default: the project found as usual) or a git URL to clone into the"
                   " state dir and follow (https://, ssh://, file://, git@host:path; credentials from git's"
                   " own configuration, never logged).")
@click.option("--branch", default="main", show_default=True, help="The branch followed when --repo is a URL.")
@click.option("--git-poll", default="30s", show_default=True, metavar="DURATION",
              help="How often to fetch the remote / look for new local commits (0: never).")
@click.option("--resync", default="5m", show_default=True, metavar="DURATION",
              help="A full re-plan this often, for drift nothing reported (0: never).")
@click.option("--retry-failed", default="5m", show_default=True, metavar="DURATION",
              help="A spec that failed and was rolled back (held at the last good revision), a job whose run"
                   " failed or a first deployment that failed (deferred) is tried again after this, then twice as"
                   " long after each further failure, up to 12 times as long; at once when it changes (0: at every"
                   " cycle).")
@click.option("--debounce", default="500ms", show_default=True, metavar="DURATION",
              help="File changes closer together than this are one trigger; so are network events"
                   " (a container taken off a network, a network removed).")
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
def watch(obj: dict[str, Any], /, source: str | None, branch: str, git_poll: str, resync: str, retry_failed: str,
          debounce: str, self_heal: bool, listen: str | None, log_format: str, parallelism: int, health_timeout: float,
          stop_timeout: int) -> int:
    """Keep every server converged to the repository, continuously.

    Re-plans and applies when a file under the repo changes, when the branch moves, when
    Docker reports a managed container died or was removed (self-heal), on a push webhook
    or API request (with --listen), and every --resync. A state that fails validation is
    never applied: its problems are logged and shown by `status`, and what runs keeps
    running. SIGTERM/SIGINT finish the action in flight, release the lock and exit 0.
    """
    from syncer.daemon import watch as watch_
    from syncer.engine.options import ApplyOptions

    watch_.configure_logging(log_format)
    if listen is not None:
        from syncer.api.server import parse_listen  # (the standard library only: no server yet)

        parse_listen(listen)  # a bad one is refused before anything starts
    ctx = context(obj)
    remote = None
    if source is not None:
        if engine.is_remote(source):
            remote = source
        else:
            ctx = engine.Context(repo=Path(source), state_dir=ctx.state_dir, secrets_file=ctx.secrets_file,
                                 policy_file=ctx.policy_file)
    options = watch_.WatchOptions(
        source=remote, branch=branch, git_poll=watch_.parse_duration(git_poll),
        resync=watch_.parse_duration(resync), retry_failed=watch_.parse_duration(retry_failed),
        debounce=watch_.parse_duration(debounce), self_heal=self_heal,
        listen=listen, apply=ApplyOptions(parallelism=parallelism, health_timeout=health_timeout,
                                          stop_timeout=stop_timeout))
    # (the log book opens once the watch knows its repository: a URL's clone, not the cwd)
    return watch_.Watcher(ctx, options, on_ready=_keep_logs).run()


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
    convergence use `syncer watch --listen` instead. SIGTERM/SIGINT give the requests in
    flight 10 s (then answer them 503), finish the apply in flight, and exit 0.
    """
    import signal
    import threading

    from syncer.api import app as api
    from syncer.daemon import watch as watch_

    watch_.configure_logging(log_format)
    host, port = api.parse_listen(listen)
    interval = watch_.parse_duration(sample_interval)
    ctx = context(obj)
    app = api.create_app(ctx, sample_interval=interval or None,
                         sample_retention=watch_.parse_duration(sample_retention))
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    handle = api.serve_in_thread(app, host, port, access_log=access_log)
    notifier = _start_notifier(ctx)
    book = _keep_logs(ctx)
    click.echo(f"syncer: serving http://{host}:{handle.port}/api/v1 (SIGTERM or Ctrl-C stops)", err=True)
    try:
        while handle.alive and not stopping.wait(0.5):
            pass
    finally:
        handle.stop()
        if notifier is not None:
            notifier.stop()
        if book is not None:
            book.stop()
    return 0 if stopping.is_set() else 1


def _start_notifier(ctx: engine.Context) -> Any:
    """The webhook sender thread (None, with a warning, when the project cannot be read now)."""
    import logging

    try:
        return engine.start_notifier(ctx)
    except SyncerError as exc:
        logging.getLogger("syncer.api.app").warning("webhooks: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return None


def _keep_logs(ctx: engine.Context) -> Any:
    """File this process's log records into the store for `syncer logs` (None, with a
    warning, when the project cannot be read now)."""
    import logging

    from syncer.engine import logbook

    try:
        return logbook.keep_logs(ctx, engine.redactor(ctx, engine.load(ctx)))
    except SyncerError as exc:
        logging.getLogger("syncer.logs").warning("log records not kept: %s", str(exc).splitlines()[0])
        return None
