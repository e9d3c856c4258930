"""syncer's own log records, kept in the store: what `syncer watch` and `syncer serve` did,
for `syncer logs` and GET /logs. A logging handler queues each record of the `syncer.*`
loggers (secrets masked) and a thread writes them in batches, so logging never waits for
SQLite."""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from syncer.adapters.store import Store
from syncer.adapters.store.logs import LEVELS
from syncer.core import clock
from syncer.core.errors import UsageError
from syncer.core.redact import NOTHING, Redactor
from syncer.engine.project import Context, state_store

RETENTION = 7 * 86400.0  # seconds records are kept
_LEVEL = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
          logging.CRITICAL: "error"}


def level_name(levelno: int) -> str:
    """A Python logging level as the seed names it (debug, info, warn, error)."""
    return _LEVEL.get(levelno, "error" if levelno > logging.ERROR else "debug")


def component_of(logger: str) -> str:
    """`syncer.watch` → `watch`; the component a record is filed under."""
    return logger.removeprefix("syncer.").split(".")[0] or "syncer"


class LogBook(logging.Handler):
    """Files `syncer.*` log records into the store from a background thread."""

    def __init__(self, state: Path, *, redact: Redactor = NOTHING, interval: float = 1.0) -> None:
        super().__init__(logging.INFO)
        self.state, self.redact, self.interval = state, redact, interval
        self._queue: queue.SimpleQueue[tuple[str, str, str, str]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syncer-logbook", daemon=True)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue one record (never blocks, never raises)."""
        try:
            message = self.redact.text(record.getMessage())
            self._queue.put((clock.stamp(record.created), level_name(record.levelno),
                             component_of(record.name), message))
        except Exception:  # noqa: BLE001 - logging must never fail the caller
            self.handleError(record)

    def start(self) -> LogBook:
        """Attach to the `syncer` logger (letting its INFO records through) and start writing."""
        logger = logging.getLogger("syncer")
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Detach, write what is queued, stop."""
        logging.getLogger("syncer").removeHandler(self)
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        store = Store(self.state)
        try:
            store.prune_logs(clock.stamp(clock.now() - RETENTION))
            while not self._stop.wait(self.interval):
                self._flush(store)
            self._flush(store)
        finally:
            store.close()

    def _flush(self, store: Store) -> None:
        rows = []
        while not self._queue.empty():
            rows.append(self._queue.get())
        if rows:
            try:
                store.add_logs(rows)
            except Exception:  # noqa: BLE001 - a full disk must not stop the daemon
                pass


def keep_logs(ctx: Context, redact: Redactor = NOTHING) -> LogBook:
    """Start filing this process's log records into the project's store."""
    return LogBook(ctx.state(ctx.root()), redact=redact).start()


def read_logs(ctx: Context, *, level: str | None = None, component: str | None = None,
              since: str | None = None, until: str | None = None, limit: int = 100,
              offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Records newest first (and how many match), filtered like the seed's GET /logs."""
    if level is not None and level not in LEVELS:
        raise UsageError(f"level must be one of {', '.join(LEVELS)}, not '{level}'")
    start, end = (_stamp(v, name) for v, name in ((since, "since"), (until, "until")))
    store = state_store(ctx)
    try:
        rows = store.logs(level=level, component=component, start=start, end=end, limit=limit, offset=offset)
        total = store.count_logs(level=level, component=component, start=start, end=end)
    finally:
        store.close()
    return rows, total


def _stamp(value: str | None, name: str) -> str | None:
    """An ISO 8601 time, or a duration ago (`30m`, `2h`, `1d`), as the store writes times."""
    if value is None:
        return None
    if value[:1].isdigit() and not value[-1:].isdigit() and "-" not in value:
        return clock.stamp(clock.now() - clock.parse_duration(value))
    try:  # a datetime all the way: the calendar's last moment survives (a float would not)
        return clock.stamp(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise UsageError(f"{name}: '{value}' is not an ISO 8601 time (e.g. 2026-11-30T12:00:00Z) or a duration ago (30m, 2h, 1d)") from None
