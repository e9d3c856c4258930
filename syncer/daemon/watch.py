"""`syncer watch`: one queue of sync requests (the engine's `RequestQueue`), fed by files,
git, Docker events, a timer and the API, drained by one loop that validates and applies
through the engine.

Requests that arrive during an apply coalesce into exactly one follow-up apply, and each
of them gets that apply's outcome. Each request carries its `Kind`: a plan with changes
is reported as `drift.detected` only when no request of the cycle asked for a change. A
repository state that fails validation is never applied: its diagnostics are logged and
kept for `status`, and what runs keeps running until a valid state arrives.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncer.core.clock import parse_duration
from syncer.core.errors import (
    DockerUnavailable, GitError, InvalidProject, LockHeld, ProjectNotFound, SecretError, SyncerError,
)
from syncer.daemon.faults import DockerFaults
from syncer.daemon.logs import JsonFormatter, configure_logging, log_report
from syncer.engine import facade as engine
from syncer.engine import queries, sources
from syncer.engine.options import ApplyOptions
from syncer.engine.pool import EnginePool
from syncer.engine.requests import Batch, Kind, Outcome, RequestQueue

__all__ = ["JsonFormatter", "Kind", "WatchOptions", "Watcher", "configure_logging", "parse_duration"]

log = logging.getLogger("syncer.daemon.watch")
POLL = "git poll"  # the reason of a followed remote's poll


@dataclass(frozen=True)
class WatchOptions:
    """How the watch loop behaves."""

    source: str | None = None  # a remote URL to clone and follow; None: the local work tree
    branch: str = "main"
    git_poll: float = 30.0
    resync: float = 300.0
    retry_failed: float = 300.0  # the first wait before a failed spec is tried again (stages/backoff.py)
    debounce: float = 0.5
    self_heal: bool = True
    listen: str | None = None
    apply: ApplyOptions = field(default_factory=ApplyOptions)


class Watcher:
    """The daemon. `request()` is the API's way in (a SyncRequester)."""

    def __init__(self, ctx: engine.Context, options: WatchOptions,
                 on_ready: Callable[[engine.Context], Any] | None = None) -> None:
        self.ctx = ctx
        self.on_ready = on_ready  # called with the watch's context once it knows its repository: what
        # it returns (the log book) is stopped at the end
        self.opts = options
        self.queue = RequestQueue()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.repo: Path | None = None
        self.fetched = ""  # the followed remote's commit at the last fetch
        self.heal_backoff: dict[str, float] = {}  # definition → the wait before its last failure's retry
        self.state: Path | None = None
        self.docker_backoff = 1.0
        # clients kept between cycles: each new one costs a version round trip, and a
        # self-heal's cycle needs a few (plan, lock, re-plan, apply)
        self.engines = EnginePool()
        self.faults = DockerFaults(self)
        self.retries: set[tuple[str, float]] = set()  # held definitions' next tries already queued
        self.shown: dict[str, str] = {}  # the holds `status` shows (definition → until)

    # --- the way in --------------------------------------------------------------------

    def request(self, reason: str, *, definition: str | None = None, kind: Kind = Kind.API,
                ready: Callable[[], object] | None = None) -> str:
        """Queue a sync; returns the request id (the API's way in, and every source's)."""
        return self.queue.put(kind, reason, definition=definition, fetch=kind in (Kind.HOOK, Kind.GIT), ready=ready)

    def push_problem(self) -> str | None:
        """Why a push cannot be fetched and applied (None when the watch follows a remote)."""
        if self.opts.source is None:
            return "this watch follows the local work tree, not a remote"
        return None

    def push(self, reason: str, *, branch: str, commit: str) -> str:
        """Queue a fetch of the followed remote and a sync (POST /hooks/git)."""
        return self.queue.put(Kind.HOOK, reason, fetch=True, branch=branch, commit=commit)

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """What became of a request (queued, running, success, failed): GET /sync/{id}."""
        return self.queue.describe(request_id)

    # --- set-up ------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.opts.source is not None:
            self.state = (self.ctx.state_dir or Path.cwd() / engine.STATE_DIR).resolve()
            self.state.mkdir(parents=True, exist_ok=True, mode=0o700)  # (it holds the store and the key)
            self.repo = self.state / "clone"
            self.ctx = replace(self.ctx, repo=self.repo, state_dir=self.state)
            log.info("following %s (%s)", sources.safe_url(self.opts.source), self.opts.branch,
                     extra={"event": "source"})
            self._fetch()
        else:
            self.repo = self.ctx.root()
            self.state = self.ctx.state(self.repo)
            self.ctx = replace(self.ctx, repo=self.repo, state_dir=self.state)

    def _fetch(self) -> bool:
        """Fetch the remote; True when it answered. Failures are logged, never raised."""
        assert self.opts.source is not None and self.repo is not None
        try:
            sha = sources.fetch_remote(self.opts.source, self.repo, self.opts.branch)
        except GitError as exc:
            log.warning("git: %s (will retry)", exc, extra={"event": "git.error"})
            return False
        if sha != self.fetched:
            log.info("git: new commit %s%s", sha[:12], f" (was {self.fetched[:12]})" if self.fetched else "",
                     extra={"event": "git.fetched"})
        self.fetched = sha
        return True

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=self._guard(name, target), name=name, daemon=True)
        t.start()
        self.threads.append(t)

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self.stopping.is_set():
                try:
                    target()
                    return
                except Exception as exc:  # noqa: BLE001 - a watcher thread must not die
                    log.error("%s failed: %s (restarting)", name, exc, extra={"event": "thread.error"})
                    self.stopping.wait(2.0)

        return run

    # --- sources of triggers -----------------------------------------------------------

    def _watch_files(self) -> None:
        import watchfiles

        assert self.repo is not None and self.state is not None
        state = str(self.state)

        def wanted(change: Any, path: str) -> bool:
            return sources.watched(path, state)

        # `step` is the quiet time that ends a burst: an edit followed at once by a commit is
        # one trigger, seen after the commit, so the container is labelled with it.
        quiet = max(50, int(self.opts.debounce * 1000))
        for changes in watchfiles.watch(self.repo, watch_filter=wanted, step=quiet, debounce=max(1600, quiet * 4),
                                        stop_event=self.stopping, raise_interrupt=False):
            names = sorted({Path(p).name for _, p in changes})
            self.request(f"files changed: {', '.join(names)[:120]}", kind=Kind.FILE)

    def _poll_git(self) -> None:
        last = self._head()
        while not self.stopping.wait(self.opts.git_poll):
            if self.opts.source is not None:
                self.request(POLL, kind=Kind.GIT)
                continue
            now = self._head()
            if now != last:
                last = now
                self.request(f"new commit {str(now)[:12]}", kind=Kind.GIT)

    def _head(self) -> str | None:
        assert self.repo is not None
        return sources.head(self.repo)

    def _resync(self) -> None:
        while not self.stopping.wait(self.opts.resync):
            self.request("periodic resync", kind=Kind.TIMER)

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        """Watch until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        self._prepare()
        book = self.on_ready(self.ctx) if self.on_ready is not None else None
        try:
            return self._serve()
        finally:
            if book is not None:
                book.stop()

    def _serve(self) -> int:
        self._spawn("files", self._watch_files) if self.opts.source is None else None
        if self.opts.git_poll > 0:  # 0: off (a remote's pushes come by webhook)
            self._spawn("git", self._poll_git)
        if self.opts.resync > 0:  # 0: off (a wait of 0 would re-plan in a loop)
            self._spawn("resync", self._resync)
        self._spawn("docker-events", self.faults.run)
        server = self._start_api()
        notifier = self._start_notifier()
        self.queue.put(Kind.STARTUP, "startup", fetch=self.opts.source is not None)
        try:
            while not self.stopping.is_set():
                self.step()
        finally:
            if server is not None:
                server.stop()
            if notifier is not None:
                notifier.stop()
            self.engines.close()
        log.info("stopped", extra={"event": "stop"})
        return 0

    def step(self, timeout: float = 0.5) -> bool:
        """Run one cycle for everything queued; False when nothing came within `timeout`."""
        batch = self.queue.take(timeout)
        if batch is None:
            return False
        self._cycle(batch)
        return True

    def _cycle(self, batch: Batch) -> None:
        if self.opts.source is not None and batch.fetch:
            before = self.fetched
            self._fetch()
            if all(r.reason == POLL for r in batch.requests) and self.fetched == before:  # (as a work tree's
                log.debug("git: nothing new at %s", (before or "")[:12])  # poll: a new commit only)
                self.queue.serve(batch, lambda _definition: Outcome("success", commit=before or None))
                return
        log.info("trigger: %s", batch.reasons[:300], extra={"event": "trigger"})
        try:
            self.queue.serve(batch, lambda definition: self._apply(batch, definition))
        except Exception as exc:  # noqa: BLE001 - the loop outlives any one cycle
            log.error("cycle failed: %s: %s", exc.__class__.__name__, str(exc)[:300], extra={"event": "error"})
            self.later("retry after an error", 5.0)

    def _apply(self, batch: Batch, definition: str | None) -> Outcome:
        """One apply for `batch` (of `definition`, or everything); never raises a SyncerError."""
        try:
            # engine.apply loads (and validates) the project once, under the lock; a plan with
            # changes nobody asked for is queued as drift.detected there, with that project
            report = engine.apply(self.ctx, options=self.opts.apply, confirm=lambda p: True, trigger="watch",
                                  progress=self._progress, only=definition, engines=self.engines,
                                  drift=batch.reasons if batch.drift else None, ready=batch.ready,
                                  hold_failed=0.0 if batch.called else self.opts.retry_failed)
        except InvalidProject as exc:
            self._remember(last_validation_error=exc.lines())
            for line in exc.lines():
                log.error("invalid: %s", line, extra={"event": "validation.error"})
            log.error("not applying: the repository is invalid; what runs keeps running",
                      extra={"event": "validation.failed"})
            self.faults.heal_as_it_ran()
            return Outcome("failed", error="the repository is invalid: " + "; ".join(exc.lines())[:500])
        except LockHeld as exc:
            log.warning("%s; retrying", exc, extra={"event": "lock.held"})
            self.later("retry after lock", 2.0)
            return Outcome("failed", error=f"{exc} (retried)")
        except DockerUnavailable as exc:
            log.error("%s", str(exc).replace("\n", "; "), extra={"event": "docker.unavailable"})
            self.later("retry after docker error", self.docker_backoff)
            self.docker_backoff = min(self.docker_backoff * 2, 60.0)
            return Outcome("failed", error=str(exc)[:500])
        except SyncerError as exc:
            log.error("%s", " | ".join(exc.lines()), extra={"event": "error"})
            if isinstance(exc, (SecretError, ProjectNotFound)):  # (nothing could be rendered: syncer.yaml gone)
                self.faults.heal_as_it_ran()
            else:  # (the store locked past its busy timeout, say: the fault to heal is still there)
                self.later("retry after an error", self.docker_backoff, definition=definition)
                self.docker_backoff = min(self.docker_backoff * 2, 60.0)
            return Outcome("failed", error=" | ".join(exc.lines())[:500])
        if report.plan.unreachable:  # what waits for a server that did not answer is tried again, as after
            self.later("retry: a server did not answer", self.docker_backoff, definition=definition)  # a Docker error
            self.docker_backoff = min(self.docker_backoff * 2, 60.0)
        else:
            self.docker_backoff = 1.0
        self.faults.healed(definition)
        commit = None
        if report.project is not None:
            commit = report.project.commit
            self._remember(last_validation_error=None, last_commit={
                "sha": report.project.commit, "message": report.project.commit_message})
        log_report(report)
        if not batch.called:  # (a called-for sync holds nothing: what watch holds is unknown to it)
            self._retry_held(definition, report.held)
            self._retry_failed_heals(report)
        runs = (report.run_id,) if report.run_id else ()
        if report.ok:
            return Outcome("success", runs, commit)
        return Outcome("failed", runs, commit, "; ".join(r.error for r in report.results if not r.ok)[:500])

    def _retry_failed_heals(self, report: Any) -> None:
        """A deployment that failed and that no hold or deferral covers (a heal that met a race,
        a network removed while its plan was made, say) is tried again soon, its wait doubling
        from 2 s to 60 s while it keeps failing: the fault it was to heal is still there, and
        no event may come to say so (a new spec that failed is held, a first deployment or a
        job deferred: stages/backoff.py)."""
        for r in report.results:
            if r.ok:
                self.heal_backoff.pop(r.definition, None)
            elif r.definition not in report.held:
                wait = self.heal_backoff[r.definition] = min(self.heal_backoff.get(r.definition, 1.0) * 2, 60.0)
                self.later(f"retry {r.definition}: its deployment failed", wait, definition=r.definition)

    def _retry_held(self, definition: str | None, held: dict[str, engine.Hold]) -> None:
        """Queue each held (or deferred) definition's next try for when its wait ends (once per
        wait), and remember the holds for `status` (a cycle of one definition changes its own alone)."""
        from syncer.core.clock import iso, now

        shown = {d: iso(h.until) for d, h in held.items()}
        if definition is not None:
            shown = {**{d: u for d, u in self.shown.items() if d != definition}, **shown}
        if shown != self.shown:
            self.shown = shown
            self._remember(held=shown)

        moment = now()
        self.retries = {(d, u) for d, u in self.retries if u > moment - 60}  # (a watch runs for months)
        behind = {h.after for h in held.values() if h.after}  # deferred ones others wait for
        for name, h in sorted(held.items()):  # (said once per hold: the plan line counts them each cycle)
            if (name, h.until) in self.retries or h.after:  # (a dependent is tried with what it waits for)
                continue
            self.retries.add((name, h.until))
            if h.revision is not None:
                log.warning("%s: held: its spec failed and was rolled back; tried again at %s (at once when it"
                            " changes)", name, iso(h.until), extra={"event": "deployment.held"})
                self.later(f"retry {name}: its wait after a rolled-back deployment ended",
                           max(0.0, h.until - moment) + 0.5, definition=name)
                continue
            log.warning("%s: deferred: %s failed, nothing earlier to hold it at; tried again at %s (at once when"
                        " it changes)", name, "its job" if h.job else "its first deployment", iso(h.until),
                        extra={"event": "deployment.deferred"})
            # (a job's try is a sync of everything: one of its definition alone that nobody asked
            # for is a heal, and a heal never runs a job; so is the try of one others depend on,
            # whose deferred actions follow it in their waves)
            self.later(f"retry {name}: its wait after a failed deployment ended", max(0.0, h.until - moment) + 0.5,
                       definition=None if h.job or name in behind else name)

    def _remember(self, **values: Any) -> None:
        assert self.state is not None
        queries.remember(self.state, **values)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        try:
            engine.emit_event(self.ctx, engine.load(self.ctx), kind, data)
        except SyncerError as exc:
            log.warning("event %s not queued: %s", kind, exc, extra={"event": "webhooks.error"})

    def _progress(self, definition: str, line: str) -> None:
        log.info("%s: %s", definition or "-", line, extra={"event": "action"})

    def later(self, reason: str, delay: float, *, kind: Kind = Kind.RETRY, definition: str | None = None) -> None:
        """Queue a sync `delay` seconds from now (a retry, or a crash loop's next heal)."""
        def queue() -> None:
            if not self.stopping.is_set():
                self.request(reason, kind=kind, definition=definition)

        timer = threading.Timer(delay, queue)
        timer.daemon = True
        timer.start()

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: finishing the action in flight, then stopping", signum, extra={"event": "signal"})
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _start_api(self) -> Any:
        if not self.opts.listen:
            return None
        from syncer.api import app as api

        host, port = api.parse_listen(self.opts.listen)
        app = api.create_app(self.ctx, sync=self, branch=self.opts.branch if self.opts.source else None)
        return api.serve_in_thread(app, host, port)

    def _start_notifier(self) -> Any:
        """Deliver queued event webhooks in the background (retries survive restarts: the queue is the store)."""
        try:
            return engine.start_notifier(self.ctx)
        except SyncerError as exc:
            log.warning("webhooks: %s", exc, extra={"event": "webhooks.error"})
            return None

