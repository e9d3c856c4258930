"""Caches that keep the API's answers honest under load: `Memo` (a value at most `ttl`
seconds old, errors included) and `Coalesced` (simultaneous callers share a computation,
yet none gets a result older than its call)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from syncer.core.errors import SyncerError

T = TypeVar("T")


class Memo(Generic[T]):
    """A value computed at most once per `ttl` seconds; concurrent callers share one
    computation, and a SyncerError is remembered for the same time (no stampede on Docker).

    With `slow` (seconds): once a computation has taken that long (a plan of 10k
    definitions takes seconds), a stale value is answered at once while one refresh runs in
    the background, instead of every caller waiting for it (the value says when it was made),
    and refreshes are spaced by four times the computation (at most a fifth of a core).
    """

    def __init__(self, compute: Callable[[], T], ttl: float, *, slow: float | None = None) -> None:
        self.compute, self.ttl, self.slow = compute, ttl, slow
        self._lock = threading.Lock()
        self._at: float | None = None
        self._took = 0.0
        self._refreshing = False
        self._value: T | None = None
        self._error: SyncerError | None = None

    def get(self) -> T:
        """The fresh-enough value, or the fresh-enough error raised again."""
        with self._lock:
            if self._at is None or time.monotonic() - self._at >= self._ttl():
                if self.slow is not None and self._at is not None and self._took >= self.slow:
                    if not self._refreshing:
                        self._refreshing = True
                        threading.Thread(target=self._refresh, name="syncer-memo", daemon=True).start()
                else:
                    self._store(*self._run())
            if self._error is not None:
                raise self._error
            return self._value  # type: ignore[return-value]

    def _ttl(self) -> float:
        # a slow computation runs at most a fifth of the time, not back to back
        return max(self.ttl, 4 * self._took) if self.slow is not None and self._took >= self.slow else self.ttl

    def _run(self) -> tuple[T | None, SyncerError | None, float]:
        started = time.monotonic()
        try:
            return self.compute(), None, time.monotonic() - started
        except SyncerError as exc:
            return None, exc, time.monotonic() - started

    def _store(self, value: T | None, error: SyncerError | None, took: float) -> None:
        self._value, self._error, self._took, self._at = value, error, took, time.monotonic()

    def _refresh(self) -> None:
        try:
            outcome = self._run()
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._store(*outcome)


class Coalesced(Generic[T]):
    """Concurrent callers share computations, yet none gets a result older than its call: a
    caller that arrives while a computation runs waits for the next one, which then serves
    every caller that waited. Under load, N simultaneous callers cost two computations."""

    KEEP = 64  # outcomes kept for waiters still waking up

    def __init__(self, compute: Callable[[], T]) -> None:
        self.compute = compute
        self._cond = threading.Condition()
        self._running = False
        self._started = 0
        self._done: dict[int, tuple[bool, Any]] = {}

    def get(self) -> T:
        """A result computed entirely after this call began."""
        with self._cond:
            mine = self._started + 1
            while mine not in self._done:
                if not self._running and self._started < mine:
                    self._running, self._started = True, mine
                    break
                self._cond.wait()
            else:
                return self._outcome(self._done[mine])
        try:
            outcome: tuple[bool, Any] = (True, self.compute())
        except Exception as exc:  # noqa: BLE001 - handed to every caller it serves
            outcome = (False, exc)
        with self._cond:
            self._done[mine] = outcome
            self._done.pop(mine - self.KEEP, None)
            self._running = False
            self._cond.notify_all()
        return self._outcome(outcome)

    @staticmethod
    def _outcome(outcome: tuple[bool, Any]) -> T:
        ok, value = outcome
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

