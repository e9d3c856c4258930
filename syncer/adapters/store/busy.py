"""A write that waits for another process's lock on the state database says so, once.

SQLite waits for a write lock held by another process for the whole busy timeout without
a sign: `syncer watch` looked stalled for 30 s, then failed. The store waits in two parts
instead (`parts`): a short quiet one, then — after one warning line naming the file — the
rest. However many writes of the process wait meanwhile (watch's, its log book's, the
API's), the warning is said once per file until a write gets through, which says so once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

WARN_AFTER = 2.0  # seconds a write waits in silence: longer than any write of syncer's own takes
HELD = "locked by another process"  # how probe_write's error begins


def _log() -> Any:
    """The store's logger (`logging` imported only when a write waited: a no-op never does)."""
    import logging

    return logging.getLogger("syncer.store")


def parts(busy_timeout: float, warn_after: float = WARN_AFTER) -> tuple[float, float]:
    """The busy timeout cut in two: the quiet wait, and the rest, waited after the warning
    (0 when the whole timeout is no longer than the quiet part: no warning then)."""
    first = max(0.0, min(busy_timeout, warn_after))
    return first, max(0.0, busy_timeout - first)


class Waits:
    """The files this process's writes wait on now, and since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}

    def begin(self, path: str, since: float) -> bool:
        """A write on `path` has waited its quiet part (since `since`): True for the first
        one, which warns; False while another's warning stands."""
        with self._lock:
            if path in self._since:
                return False
            self._since[path] = since
            return True

    def through(self, path: str, now: float) -> float | None:
        """A write on `path` got through: seconds since the wait began when a warning was
        given (once: say it went on), else None."""
        if path not in self._since:  # (every write asks: no lock taken when nothing waits)
            return None
        with self._lock:
            since = self._since.pop(path, None)
        return None if since is None else max(0.0, now - since)


WAITS = Waits()


def waiting(path: object, quiet: float, busy_timeout: float) -> None:
    """A write on `path` has waited `quiet` seconds for another process's lock: the warning,
    when it is the first to."""
    if WAITS.begin(str(path), time.monotonic() - quiet):
        _log().warning("store: %s is locked by another process; waiting up to %gs", path, busy_timeout,
                    extra={"event": "store.locked"})


def through(path: object) -> None:
    """A write on `path` got through: one line when a warning said it waited."""
    waited = WAITS.through(str(path), time.monotonic())
    if waited is not None:
        _log().info("store: %s is writable again; writes go on (it was locked for %.0fs or more)", path, waited,
                 extra={"event": "store.unlocked"})


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock this statement needs (SQLITE_BUSY / SQLITE_LOCKED)."""
    return "locked" in str(exc) or "busy" in str(exc)


def execute(db: sqlite3.Connection, sql: str, args: Sequence[Any], *, path: object,
            timeout: float) -> sqlite3.Cursor:
    """Execute one statement on `db`, whose own busy wait is the quiet part of `timeout`.
    One that finds another process's lock outside a transaction (nothing done yet: safe to
    run again) warns and waits the rest; failing again, it raises as SQLite does."""
    inside = db.in_transaction  # (inside one, BEGIN IMMEDIATE took the write lock: no wait)
    try:
        return db.execute(sql, args)
    except sqlite3.OperationalError as exc:
        quiet, rest = parts(timeout)
        if inside or not rest or not is_busy(exc):
            raise
        waiting(path, quiet, timeout)
        db.execute(f"PRAGMA busy_timeout = {int(rest * 1000)}")
        try:
            return db.execute(sql, args)
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(quiet * 1000)}")


def probe_write(db: sqlite3.Connection, wait: float, timeout: float) -> None:
    """Take the write lock and let it go at once, waiting `wait` seconds at most for it: an
    OperationalError starting with HELD when another process holds it."""
    if db.in_transaction:  # (a write of this connection is under way: writable)
        return
    db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        raise sqlite3.OperationalError(f"{HELD}: writes wait for it (up to {timeout:g}s each, then fail)") from None
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(parts(timeout)[0] * 1000)}")
