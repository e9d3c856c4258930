"""`syncer watch`: one trigger queue, fed by files, git, Docker events, a timer and the
API, drained by one loop that validates and applies through the engine.

Triggers that arrive during an apply coalesce into exactly one follow-up apply. A
repository state that fails validation is never applied: its diagnostics are logged and
kept for `status`, and what runs keeps running until a valid state arrives.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncer.engine import facade as engine
from syncer.engine.apply import ApplyOptions
from syncer.core.errors import DockerUnavailable, GitError, InvalidProject, LockHeld, SyncerError
from syncer.adapters.store import Store, new_id

log = logging.getLogger("syncer.daemon.watch")


@dataclass(frozen=True)
class Trigger:
    """Why a cycle should run."""

    reason: str
    definition: str | None = None
    request_id: str = ""
    fetch: bool = False  # the remote should be fetched first


@dataclass(frozen=True)
class WatchOptions:
    """How the watch loop behaves."""

    source: str | None = None  # a remote URL to clone and follow; None: the local work tree
    branch: str = "main"
    git_poll: float = 30.0
    resync: float = 300.0
    debounce: float = 0.5
    self_heal: bool = True
    listen: str | None = None
    apply: ApplyOptions = field(default_factory=ApplyOptions)


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h`, `250ms` or plain seconds → seconds."""
    text = text.strip()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        raise SyncerError(f"invalid duration '{text}' (use e.g. 30s, 5m, 1h)") from None


class Watcher:
    """The daemon. `request()` is the API's way in (a SyncRequester)."""

    def __init__(self, ctx: engine.Context, options: WatchOptions) -> None:
        self.ctx = ctx
        self.opts = options
        self.queue: queue.Queue[Trigger] = queue.Queue()
        self.stopping = threading.Event()
        self.busy = threading.Event()
        self.threads: list[threading.Thread] = []
        self.repo: Path | None = None
        self.state: Path | None = None
        self.docker_backoff = 1.0
        self.lock = threading.Lock()
        self.records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.outcome: dict[str, Any] = {}

    # --- the way in --------------------------------------------------------------------

    def request(self, reason: str, *, definition: str | None = None) -> str:
        """Queue a sync; returns the request id."""
        ident = new_id("req")
        with self.lock:
            self.records[ident] = {"id": ident, "status": "queued", "reason": reason, "definition": definition,
                                   "requested_at": engine.now_iso(), "started_at": None, "finished_at": None,
                                   "run_ids": [], "error": None}
            while len(self.records) > 500:
                self.records.popitem(last=False)
        self.queue.put(Trigger(reason, definition, ident, fetch=reason.startswith("git")))
        return ident

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """What became of an API request (queued, running, success, failed): GET /sync/{id}."""
        with self.lock:
            record = self.records.get(request_id)
            return dict(record) if record is not None else None

    def _mark(self, batch: list[Trigger], **changes: Any) -> None:
        with self.lock:
            for t in batch:
                if t.request_id in self.records:
                    record = self.records[t.request_id]
                    run_id = changes.pop("run_id", None)
                    record.update(changes)
                    if run_id:
                        record["run_ids"].append(run_id)

    # --- set-up ------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.opts.source is not None:
            from syncer.adapters import git as gitsource

            self.state = (self.ctx.state_dir or Path.cwd() / engine.STATE_DIR).resolve()
            self.state.mkdir(parents=True, exist_ok=True)
            self.repo = self.state / "clone"
            self.ctx = replace(self.ctx, repo=self.repo, state_dir=self.state)
            log.info("following %s (%s)", gitsource.safe_url(self.opts.source), self.opts.branch,
                     extra={"event": "source"})
            self._fetch()
        else:
            self.repo = self.ctx.root()
            self.state = self.ctx.state(self.repo)
            self.ctx = replace(self.ctx, repo=self.repo, state_dir=self.state)

    def _fetch(self) -> bool:
        """Fetch the remote; True when it answered. Failures are logged, never raised."""
        from syncer.adapters import git as gitsource

        assert self.opts.source is not None and self.repo is not None
        try:
            sha = gitsource.sync_clone(self.opts.source, self.repo, self.opts.branch)
        except GitError as exc:
            log.warning("git: %s (will retry)", exc, extra={"event": "git.error"})
            return False
        log.debug("git: at %s", sha[:12], extra={"event": "git.fetched"})
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
            return not path.startswith(state) and "/.git/" not in path and path.endswith((".yaml", ".yml"))

        # `step` is the quiet time that ends a burst: an edit followed at once by a commit is
        # one trigger, seen after the commit, so the container is labelled with it.
        quiet = max(50, int(self.opts.debounce * 1000))
        for changes in watchfiles.watch(self.repo, watch_filter=wanted, step=quiet, debounce=max(1600, quiet * 4),
                                        stop_event=self.stopping, raise_interrupt=False):
            names = sorted({Path(p).name for _, p in changes})
            self.queue.put(Trigger(f"files changed: {', '.join(names)[:120]}"))

    def _poll_git(self) -> None:
        last = self._head()
        while not self.stopping.wait(self.opts.git_poll):
            if self.opts.source is not None:
                self.queue.put(Trigger("git poll", fetch=True))
                continue
            now = self._head()
            if now != last:
                last = now
                self.queue.put(Trigger(f"new commit {str(now)[:12]}"))

    def _head(self) -> str | None:
        from syncer.adapters import git as gitsource

        assert self.repo is not None
        return gitsource.head(self.repo)[0]

    def _resync(self) -> None:
        while not self.stopping.wait(self.opts.resync):
            self.queue.put(Trigger("periodic resync"))

    def _docker_events(self) -> None:
        """Follow each server's event stream; reconnect with backoff; heal on the way back."""
        from syncer.adapters.docker import Engine

        project = engine.load(self.ctx)
        watchers = [threading.Thread(target=self._server_events, args=(Engine, project.config.name, s),
                                     daemon=True, name=f"events-{s.name}")
                    for s in project.config.servers.values()]
        for t in watchers:
            t.start()
        self.stopping.wait()

    def _server_events(self, factory: Any, project: str, server: Any) -> None:
        backoff, lost = 1.0, False
        while not self.stopping.is_set():
            try:
                eng = factory(server)
                eng.version()
                if lost:
                    log.info("docker %s: reachable again", server.name, extra={"event": "docker.back"})
                    self.queue.put(Trigger(f"docker {server.name} reachable again"))
                lost, backoff = False, 1.0
                for event in eng.events(project, since=int(time.time())):
                    if self.stopping.is_set():
                        return
                    self._docker_event(server.name, event)
            except Exception as exc:  # noqa: BLE001 - any failure: the daemon went away
                if not lost:
                    log.warning("docker %s: %s (reconnecting)", server.name, str(exc)[:200],
                                extra={"event": "docker.lost"})
                lost = True
            self.stopping.wait(backoff + random.random() * 0.2 * backoff)
            backoff = min(backoff * 2, 30.0)

    def _docker_event(self, server: str, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        name = attrs.get("name", "?")
        if action in ("die", "stop", "destroy", "kill") or action.startswith("health_status: unhealthy"):
            if name.endswith("_syncer-new"):
                return  # our own recreate at work
            log.info("docker %s: %s %s", server, action, name, extra={"event": "docker.event"})
            if action.startswith("health_status: unhealthy"):
                self._emit("instance.unhealthy", {"container": name, "server": server,
                                                  "definition": attrs.get("syncer.definition")})
            if self.opts.self_heal and not self.busy.is_set():
                self.queue.put(Trigger(f"docker: {name} {action}"))

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        """Watch until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        self._prepare()
        self._spawn("files", self._watch_files) if self.opts.source is None else None
        self._spawn("git", self._poll_git)
        self._spawn("resync", self._resync)
        self._spawn("docker-events", self._docker_events)
        server = self._start_api()
        notifier = self._start_notifier()
        self.queue.put(Trigger("startup", fetch=self.opts.source is not None))
        try:
            while not self.stopping.is_set():
                self.step()
        finally:
            if server is not None:
                server.stop()
            if notifier is not None:
                notifier.stop()
        log.info("stopped", extra={"event": "stop"})
        return 0

    def step(self, timeout: float = 0.5) -> bool:
        """Run one cycle for everything queued; False when nothing came within `timeout`."""
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return False
        self._cycle(self._drain(first))
        return True

    def _drain(self, first: Trigger) -> list[Trigger]:
        """The first trigger and everything queued behind it: one cycle serves them all."""
        batch = [first]
        while True:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                return batch

    def _cycle(self, batch: list[Trigger]) -> None:
        reasons = "; ".join(dict.fromkeys(t.reason for t in batch))
        log.info("trigger: %s", reasons[:300], extra={"event": "trigger"})
        if self.opts.source is not None and any(t.fetch for t in batch):
            self._fetch()
        only = {t.definition for t in batch}
        definition = only.pop() if len(only) == 1 else None
        self.busy.set()
        self._mark(batch, status="running", started_at=engine.now_iso())
        self.outcome = {"status": "failed", "error": "the cycle did not finish"}
        try:
            self._apply(reasons, definition)
        except Exception as exc:  # noqa: BLE001 - the loop outlives any one cycle
            log.error("cycle failed: %s: %s", exc.__class__.__name__, str(exc)[:300], extra={"event": "error"})
            self._later(Trigger("retry after an error"), 5.0)
        finally:
            self._mark(batch, finished_at=engine.now_iso(), **self.outcome)
            self.busy.clear()

    def _apply(self, reasons: str, definition: str | None) -> None:
        drift = not any(word in reasons for word in ("files changed", "commit", "git", "startup", "api"))

        def confirm(p: Any) -> bool:
            if drift and p.has_changes:  # nobody asked for this change: report it, then heal
                self._emit("drift.detected", {"reason": reasons, "actions": [
                    f"{a.action} {a.container}" for a in p.actions if a.action != "noop"]})
            return True

        try:
            # engine.apply loads (and validates) the project once, under the lock
            report = engine.apply(self.ctx, options=self.opts.apply, confirm=confirm, trigger="watch",
                                  progress=self._progress, only=definition)
        except InvalidProject as exc:
            self.outcome = {"status": "failed", "error": "the repository is invalid: " + "; ".join(exc.lines())[:500]}
            self._remember(last_validation_error=exc.lines())
            for line in exc.lines():
                log.error("invalid: %s", line, extra={"event": "validation.error"})
            log.error("not applying: the repository is invalid; what runs keeps running",
                      extra={"event": "validation.failed"})
            return
        except LockHeld as exc:
            self.outcome = {"status": "failed", "error": f"{exc} (retried)"}
            log.warning("%s; retrying", exc, extra={"event": "lock.held"})
            self._later(Trigger("retry after lock"), 2.0)
            return
        except DockerUnavailable as exc:
            self.outcome = {"status": "failed", "error": str(exc)[:500]}
            log.error("%s", str(exc).replace("\n", "; "), extra={"event": "docker.unavailable"})
            self._later(Trigger("retry after docker error"), self.docker_backoff)
            self.docker_backoff = min(self.docker_backoff * 2, 60.0)
            return
        except SyncerError as exc:
            self.outcome = {"status": "failed", "error": " | ".join(exc.lines())[:500]}
            log.error("%s", " | ".join(exc.lines()), extra={"event": "error"})
            return
        self.docker_backoff = 1.0
        self.outcome = {"status": "success" if report.ok else "failed", "run_id": report.run_id,
                        "error": None if report.ok else "; ".join(r.error for r in report.results if not r.ok)[:500]}
        if report.project is not None:
            self._remember(last_validation_error=None, last_commit={
                "sha": report.project.commit, "message": report.project.commit_message})
        s = report.plan.summary()
        log.info("plan: %d create, %d recreate, %d start, %d remove, %d conflict, %d in sync",
                 s["create"], s["recreate"], s["start"], s["remove"], s["conflict"], s["noop"],
                 extra={"event": "plan"})
        for r in report.results:
            level = logging.INFO if r.ok else logging.ERROR
            log.log(level, "deployment %s %s: %s%s", r.deployment, r.definition, "success" if r.ok else "failed",
                    "" if r.ok else f" ({r.error})", extra={"event": "deployment"})

    def _remember(self, **values: Any) -> None:
        assert self.state is not None
        store = Store(self.state)
        try:
            for key, value in values.items():
                store.set_meta(key, value)
        finally:
            store.close()

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        try:
            engine.emit_event(self.ctx, engine.load(self.ctx), kind, data)
        except SyncerError as exc:
            log.warning("event %s not queued: %s", kind, exc, extra={"event": "webhooks.error"})

    def _progress(self, definition: str, line: str) -> None:
        log.info("%s: %s", definition or "-", line, extra={"event": "action"})

    def _later(self, trigger: Trigger, delay: float) -> None:
        timer = threading.Timer(delay, lambda: self.queue.put(trigger))
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

        host, _, port = self.opts.listen.rpartition(":")
        app = api.create_app(self.ctx, sync=self, branch=self.opts.branch if self.opts.source else None)
        return api.serve_in_thread(app, host or "127.0.0.1", int(port))

    def _start_notifier(self) -> Any:
        """Deliver queued event webhooks in the background (retries survive restarts: the queue is the store)."""
        try:
            return engine.start_notifier(self.ctx)
        except SyncerError as exc:
            log.warning("webhooks: %s", exc, extra={"event": "webhooks.error"})
            return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                           "event": getattr(record, "event", "log"), "message": record.getMessage()})


def configure_logging(fmt: str) -> None:
    """Text or JSON lines on stderr."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("syncer")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
