"""`syncer serve`'s sync worker: one thread drains the engine's request queue and applies.

`syncer watch --listen` hands the API its own loop instead; both are served by the same
`RequestQueue` (ids, coalescing, outcomes), so GET /sync/{id} means the same in both.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from syncer.core.errors import GitError, LockHeld, SyncerError
from syncer.engine import facade as engine
from syncer.engine import operations, sources
from syncer.engine.requests import Batch, Kind, Outcome, RequestQueue

log = logging.getLogger("syncer.api.app")


class BackgroundSync:
    """`syncer serve`'s SyncRequester: one worker thread applies through the engine.

    Requests that arrive while an apply runs coalesce into exactly one follow-up: a full
    sync when any of them asked for one, else one apply per definition asked for. When
    another process holds the apply lock, the worker tries again every `retry` seconds.
    """

    def __init__(self, ctx: engine.Context, *, options: Any = None, retry: float = 2.0, keep: int = 500) -> None:
        from syncer.engine.options import ApplyOptions

        self.ctx, self.options, self.retry = ctx, options or ApplyOptions(), retry
        self.queue = RequestQueue(keep=keep)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self, reason: str, *, definition: str | None = None, kind: Kind = Kind.API) -> str:
        """Queue a sync; returns its request id (`req_…`)."""
        ident = self.queue.put(kind, reason, definition=definition)
        self._start()
        return ident

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="syncer-api-sync", daemon=True)
                self._thread.start()

    def push_problem(self) -> str | None:
        """Why a pushed commit cannot be fetched and applied here (None: the project's work
        tree is a git clone with a remote, fast-forwarded on each push)."""
        return sources.fetch_problem(self.ctx.root())

    def push(self, reason: str, *, branch: str, commit: str) -> str:
        """Queue a fetch of `branch` and a full sync of what it brings; the request id."""
        ident = self.queue.put(Kind.HOOK, reason, fetch=True, branch=branch, commit=commit)
        self._start()
        return ident

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """What became of a request (queued, running, success, failed)."""
        return self.queue.describe(request_id)

    def stop(self, timeout: float = 120.0) -> None:
        """Finish the apply in flight (nothing queued is started) and stop."""
        self._stopping.set()
        self.queue.close()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            batch = self.queue.take()
            if batch is None or self._stopping.is_set():
                return
            self.queue.serve(batch, self._apply, fetch=self._fetch)

    def _fetch(self, batch: Batch) -> Outcome | None:
        """Fast-forward the work tree to the pushed branch; a failed outcome when it cannot."""
        if not batch.fetch or batch.branch is None:
            return None
        try:
            sha = sources.fast_forward(self.ctx.root(), batch.branch)
        except GitError as exc:
            log.error("sync: fetch failed: %s", exc)
            return Outcome("failed", error=f"fetch failed: {str(exc).splitlines()[0]}")
        log.info("sync: %s at %s", batch.branch, sha[:12])
        return None

    def _apply(self, definition: str | None) -> Outcome:
        """One apply, retried while another process holds the lock."""
        while not self._stopping.is_set():
            try:
                operations.note_repo_state(self.ctx)
                report = engine.apply(self.ctx, options=self.options, confirm=lambda p: True, trigger="api",
                                      only=definition)
            except LockHeld as exc:
                log.info("sync waits: %s", exc)
                self._stopping.wait(self.retry)
                continue
            except SyncerError as exc:
                log.error("sync%s failed: %s", f" of {definition}" if definition else "", " | ".join(exc.lines()))
                return Outcome("failed", error=str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
            except Exception:  # noqa: BLE001 - a bug: logged, and the worker lives on
                log.exception("sync failed unexpectedly")
                return Outcome("failed", error="internal error (see the server log)")
            failed = [r.definition for r in report.results if not r.ok]
            commit = report.project.commit if report.project is not None else None
            runs = (report.run_id,) if report.run_id else ()
            if failed:
                return Outcome("failed", runs, commit, f"deployments failed: {', '.join(failed)}")
            return Outcome("success", runs, commit)
        return Outcome("failed", error="stopped before it ran")
