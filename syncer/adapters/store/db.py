"""The state database's connection: the one file, its schema, its lock, its transactions.

`<state dir>/state.db` in WAL mode, with migrations numbered in code (`PRAGMA user_version`
counts the applied ones). One connection is shared by every thread of a process behind one
re-entrant lock, and every statement is executed *and its rows fetched* under that lock: a
cursor stepped outside it would read through another thread's open transaction. Every error
of sqlite3 leaves this module as a StoreError, so the CLI and the API can report it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from syncer.adapters.store import busy
from syncer.core import clock
from syncer.core.errors import SyncerError

DB_FILE = "state.db"

MIGRATIONS: tuple[str, ...] = (
    # 1: the deployment history
    """
    CREATE TABLE definitions (
        name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, server TEXT NOT NULL, template TEXT NOT NULL,
        current_revision INTEGER, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        deleted_at TEXT
    );
    CREATE TABLE revisions (
        definition TEXT NOT NULL, number INTEGER NOT NULL, def_hash TEXT NOT NULL, specs TEXT NOT NULL,
        commit_sha TEXT, created_at TEXT NOT NULL, rollback_of INTEGER,
        PRIMARY KEY (definition, number)
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, trigger TEXT NOT NULL, commit_sha TEXT, status TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, summary TEXT, pid INTEGER
    );
    CREATE TABLE deployments (
        id TEXT PRIMARY KEY, run_id TEXT, definition TEXT NOT NULL, server TEXT NOT NULL,
        revision INTEGER NOT NULL, actions TEXT NOT NULL, status TEXT NOT NULL,
        rolled_back INTEGER NOT NULL DEFAULT 0, trigger TEXT NOT NULL, commit_sha TEXT,
        created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, error TEXT
    );
    CREATE INDEX deployments_by_definition ON deployments (definition, created_at);
    CREATE TABLE deployment_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL, at TEXT NOT NULL, line TEXT NOT NULL
    );
    CREATE INDEX logs_by_deployment ON deployment_logs (deployment_id, id);
    CREATE TABLE pins (
        definition TEXT PRIMARY KEY, revision INTEGER NOT NULL, source_hash TEXT NOT NULL, created_at TEXT NOT NULL
    );
    """,
    # 2: the HTTP endpoint and the watch loop
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE holds (
        container TEXT PRIMARY KEY, definition TEXT NOT NULL, def_hash TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, permission TEXT NOT NULL,
        rate_limit INTEGER, created_at TEXT NOT NULL, last_used_at TEXT, revoked_at TEXT
    );
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,
        last_error TEXT, last_status_code INTEGER, created_at TEXT NOT NULL, delivered_at TEXT
    );
    CREATE INDEX deliveries_due ON webhook_deliveries (status, next_attempt_at);
    CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT NOT NULL, at TEXT NOT NULL,
        status_code INTEGER, error TEXT, duration_ms INTEGER
    );
    CREATE TABLE metric_samples (
        definition TEXT NOT NULL, container TEXT NOT NULL, at TEXT NOT NULL, cpu_percent REAL,
        memory_bytes INTEGER
    );
    CREATE INDEX samples_by_definition ON metric_samples (definition, at);
    """,
    # 3: syncer's own log records (`syncer logs`, GET /logs)
    """
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, level TEXT NOT NULL,
        component TEXT NOT NULL, message TEXT NOT NULL
    );
    CREATE INDEX logs_by_time ON logs (at);
    """,
    # 4: git webhook delivery ids seen (a provider's redelivery does nothing, across restarts)
    """
    CREATE TABLE hook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, seen_at TEXT NOT NULL
    );
    CREATE INDEX hook_deliveries_by_time ON hook_deliveries (seen_at);
    """,
    # 5: what each followed tag (`pull_policy: always`) named when its deployment was planned
    """
    ALTER TABLE deployments ADD COLUMN images TEXT;
    """,
    # 6: containers that ended on their own as their restart policy allows (watch saw it)
    """
    CREATE TABLE finished (
        container TEXT PRIMARY KEY, container_id TEXT NOT NULL, definition TEXT NOT NULL, created_at TEXT NOT NULL
    );
    """,
    # 7: the deployments that did not end (Deployments.unended, asked at every plan and status:
    # a scan of the whole history would grow with it)
    """
    CREATE INDEX deployments_unended ON deployments (definition)
        WHERE status IN ('pending', 'running') OR error = 'interrupted';
    """,
)

FINAL = ("success", "failed")
_PRIVATE_FILE, _PRIVATE_DIR = 0o600, 0o700


class StoreError(SyncerError):
    """The state database cannot be used (locked by another process too long, damaged, newer)."""


def now() -> str:
    """The time as the store writes it: the one clock's `stamp()` (UTC, ms, sortable as text)."""
    return clock.stamp()


def new_id(prefix: str) -> str:
    """An id with the seeds' prefix: deploy_, def_, run_, ..."""
    return f"{prefix}_{os.urandom(6).hex()}"  # secrets.token_hex, without its `random` import


def where(**filters: Any) -> tuple[str, list[Any]]:
    """`WHERE a=? AND b=?` and its arguments for the filters that are not None."""
    parts, args = [], []
    for column, value in filters.items():
        if value is not None:
            parts.append(f"{column}=?")
            args.append(value)
    return ("WHERE " + " AND ".join(parts)) if parts else "", args


class Db:
    """The connection and the helpers every table group uses. Thread-safe: one lock."""

    def __init__(self, state_dir: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = state_dir / DB_FILE
        self._lock = threading.RLock()
        self._timeout = busy_timeout
        self._db = _connect(self.path, busy_timeout)
        try:
            self._file = os.stat(self.path)
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def transaction(self) -> Transaction:
        """`with store.transaction():` groups writes into one atomic commit."""
        return Transaction(self)

    def problem(self, *, write_wait: float = 1.0) -> str | None:
        """Why this store cannot be used now (None when it can): the file at its path is gone
        or is no longer the one opened, a read of the schema fails, or another process holds
        its write lock (writes would wait for it): a `BEGIN IMMEDIATE` waiting `write_wait`
        seconds at most, rolled back at once. Never opens the file anew (closing a second
        handle would drop this process's SQLite locks)."""
        try:
            now = os.stat(self.path)
        except OSError as exc:
            return f"state database {self.path}: {exc.strerror or exc}"
        if (now.st_dev, now.st_ino) != (self._file.st_dev, self._file.st_ino):
            return f"state database {self.path} was replaced or removed while in use"
        try:
            self._scalar("SELECT count(*) FROM sqlite_master")
            with self._locked() as db:
                busy.probe_write(db, write_wait, self._timeout)
        except StoreError as exc:
            return str(exc)
        return None

    def data_version(self) -> int:
        """`PRAGMA data_version`: changes when another connection commits (not on our own writes)."""
        return int(self._scalar("PRAGMA data_version"))

    def integrity(self) -> str:
        """`PRAGMA integrity_check`'s answer ('ok' when sound)."""
        return str(self._scalar("PRAGMA integrity_check"))

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """The connection, held for this thread, with sqlite3's errors turned into StoreError."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(_message(self.path, exc)) from None

    def _run(self, db: sqlite3.Connection, sql: str, args: Sequence[Any] = (), *, write: bool) -> sqlite3.Cursor:
        """Execute one statement (holding the lock); a wait for another process's write lock
        says so (busy.py)."""
        cursor = busy.execute(db, sql, args, path=self.path, timeout=self._timeout)
        if write:
            busy.through(self.path)
        return cursor

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        with self._locked() as db:
            return int(self._run(db, sql, args, write=True).rowcount)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of a query, fetched before the lock is let go."""
        with self._locked() as db:
            return [dict(r) for r in self._run(db, sql, args, write=False).fetchall()]

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        with self._locked() as db:
            row = self._run(db, sql, args, write=False).fetchone()
        return None if row is None else row[0]

    def _migrate(self) -> None:
        """Apply the migrations this file lacks, each in its own immediate transaction that
        reads the version again: two processes opening a new file at once apply each once."""
        version = int(self._scalar("PRAGMA user_version"))
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} was written by a newer syncer (schema {version})")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction(), self._locked() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] < number:
                    for statement in _statements(script):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number}")


class Transaction:
    """One `BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on an exception) under the lock; a
    transaction opened inside another one of the same thread is a SAVEPOINT of it.

    Whatever fails (the BEGIN when another process holds the write lock past the busy
    timeout, the COMMIT, the ROLLBACK) the lock is released and the connection is left out
    of any transaction, so the next call of any thread starts clean.
    """

    def __init__(self, db: Db) -> None:
        self.db = db
        self.nested = False

    def __enter__(self) -> None:
        self.db._lock.acquire()
        try:
            with self.db._locked() as conn:
                # holding the lock, an open transaction can only be this thread's own, outside us
                self.nested = conn.in_transaction
                self.db._run(conn, "SAVEPOINT nested" if self.nested else "BEGIN IMMEDIATE", write=True)
        except BaseException:
            self.db._lock.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            with self.db._locked() as conn:
                _end(conn, nested=self.nested, failed=kind is not None)
        finally:
            self.db._lock.release()


def _end(conn: sqlite3.Connection, *, nested: bool, failed: bool) -> None:
    """Close a transaction or savepoint: keep its writes, or undo them after a failure."""
    if not conn.in_transaction:  # SQLite itself rolled back (it does on some errors)
        if failed:
            return
        raise sqlite3.OperationalError("the transaction was rolled back by an earlier error")
    if nested:
        if failed:
            conn.execute("ROLLBACK TO nested")
        conn.execute("RELEASE nested")
    elif failed:
        conn.execute("ROLLBACK")
    else:
        _commit(conn)


def _commit(conn: sqlite3.Connection) -> None:
    """COMMIT; when that fails, roll back before the error goes on (never leave BEGIN open)."""
    try:
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _message(path: Path, exc: sqlite3.Error) -> str:
    """What went wrong, in words a user can act on."""
    if str(exc).startswith(busy.HELD):  # (problem()'s write probe: it says it all)
        return f"state database {path} is {exc}"
    if busy.is_busy(exc):
        return f"state database {path}: {exc} (another process holds its write lock: a syncer, or a tool that opened the file)"
    return f"state database {path}: {exc}"


def _statements(script: str) -> list[str]:
    """A migration script cut into statements (none of ours has `;` inside a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open (creating, private to this user) the database file in WAL mode; SQLite itself
    waits the quiet part of the busy timeout for a lock (busy.execute the rest)."""
    try:
        _private(path)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                             timeout=busy.parts(busy_timeout)[0])
        db.row_factory = sqlite3.Row
        _wal(db, busy_timeout)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the state database {path}: {exc}") from None
    return db


def _wal(db: sqlite3.Connection, busy_timeout: float) -> None:
    """WAL mode. Switching to it needs a moment alone with the file, and SQLite does not wait
    for that with its busy timeout: processes opening a new state dir at once retry here."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not busy.is_busy(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _private(path: Path) -> None:
    """The state dir 0700 when we create it, and the database 0600: SQLite gives its -wal and
    -shm files the mode of the database file. An existing database is tightened if it is ours."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=_PRIVATE_DIR, exist_ok=True)
    if not path.exists():
        # create it 0600 before SQLite does. Never open (and close) an existing database file
        # here: closing any descriptor of a SQLite file drops every POSIX lock this process
        # holds on it, which corrupts the other connections of a long-running server.
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE))
        except FileExistsError:
            pass
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077 and name.stat().st_uid == os.getuid():
                os.chmod(name, _PRIVATE_FILE)
        except OSError:
            pass
