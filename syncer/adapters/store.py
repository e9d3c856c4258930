"""The one module that imports sqlite3: revisions, deployments, apply runs, pins.

One file, `<state dir>/state.db`, in WAL mode, with migrations numbered in code. Every
write is one transaction, so a process killed at any moment leaves it consistent.
Specs are stored as rendered (secrets as keyed references, never values).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncer.core.errors import NotFound, SyncerError

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
)

FINAL = ("success", "failed")


class StoreError(SyncerError):
    """The state database cannot be used."""


def now() -> str:
    """UTC, to the millisecond, sortable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_id(prefix: str) -> str:
    """An id with the seeds' prefix: deploy_, def_, run_, ..."""
    return f"{prefix}_{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Revision:
    """One rendered state of a definition."""

    definition: str
    number: int
    def_hash: str
    specs: list[dict[str, Any]]
    commit: str | None
    created_at: str
    rollback_of: int | None


class Store:
    """The state database. Thread-safe: one connection behind a lock."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_FILE
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self._migrate()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path} was written by a newer syncer (schema {version})")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def _tx(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise StoreError(f"state database {self.path}: {exc}") from None

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._tx(sql, args).fetchall()]

    def transaction(self) -> _Transaction:
        """`with store.transaction():` groups writes into one atomic commit."""
        return _Transaction(self)

    # --- runs ------------------------------------------------------------------------

    def start_run(self, trigger: str, commit: str | None, pid: int) -> str:
        """A new apply run, `running`."""
        run_id = new_id("run")
        self._tx("INSERT INTO runs (id, trigger, commit_sha, status, started_at, pid) VALUES (?,?,?,?,?,?)",
                 (run_id, trigger, commit, "running", now(), pid))
        return run_id

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close a run with its outcome."""
        self._tx("UPDATE runs SET status=?, finished_at=?, summary=? WHERE id=?",
                 (status, now(), json.dumps(summary), run_id))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest apply runs."""
        return self._rows("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))

    def recover(self) -> int:
        """Mark what a killed apply left `running` as interrupted; returns how many deployments."""
        stamp = now()
        with self.transaction():
            cur = self._tx("UPDATE deployments SET status='failed', error='interrupted', finished_at=? "
                           "WHERE status NOT IN ('success','failed')", (stamp,))
            self._tx("UPDATE runs SET status='interrupted', finished_at=? WHERE status='running'", (stamp,))
            self._tx("UPDATE definitions SET status='failed' WHERE status='deploying'")
        return int(cur.rowcount)

    # --- definitions and revisions ---------------------------------------------------

    def upsert_definition(self, name: str, server: str, template: str) -> str:
        """Record a definition (or its new server/template); returns its id."""
        stamp = now()
        row = self._tx("SELECT id FROM definitions WHERE name=?", (name,)).fetchone()
        if row is None:
            ident = new_id("def")
            self._tx("INSERT INTO definitions (name, id, server, template, status, created_at, updated_at)"
                     " VALUES (?,?,?,?,?,?,?)", (name, ident, server, template, "pending", stamp, stamp))
            return ident
        self._tx("UPDATE definitions SET server=?, template=?, deleted_at=NULL, updated_at=? WHERE name=?",
                 (server, template, stamp, name))
        return str(row["id"])

    def set_definition_status(self, name: str, status: str, *, revision: int | None = None,
                              deleted: bool = False) -> None:
        """Status after a deployment: active, failed, deploying, removed."""
        stamp = now()
        if revision is not None:
            self._tx("UPDATE definitions SET status=?, current_revision=?, updated_at=? WHERE name=?",
                     (status, revision, stamp, name))
        else:
            self._tx("UPDATE definitions SET status=?, updated_at=?, deleted_at=? WHERE name=?",
                     (status, stamp, stamp if deleted else None, name))

    def definitions(self) -> list[dict[str, Any]]:
        """Every definition the store knows, removed ones included."""
        return self._rows("SELECT * FROM definitions ORDER BY name")

    def definition(self, ident: str) -> dict[str, Any]:
        """One definition by name or id."""
        rows = self._rows("SELECT * FROM definitions WHERE name=? OR id=?", (ident, ident))
        if not rows:
            raise NotFound(f"no definition '{ident}' in the store")
        return rows[0]

    def add_revision(self, definition: str, number: int, def_hash: str, specs: list[dict[str, Any]],
                     commit: str | None, rollback_of: int | None = None) -> None:
        """A new revision; recording the same number again is a no-op (retry of a failed one)."""
        self._tx("INSERT OR IGNORE INTO revisions (definition, number, def_hash, specs, commit_sha, created_at,"
                 " rollback_of) VALUES (?,?,?,?,?,?,?)",
                 (definition, number, def_hash, json.dumps(specs), commit, now(), rollback_of))

    def latest_revisions(self) -> dict[str, tuple[int, str]]:
        """definition → (latest revision number, its definition hash)."""
        rows = self._rows("SELECT definition, number, def_hash FROM revisions r WHERE number ="
                          " (SELECT MAX(number) FROM revisions WHERE definition = r.definition)")
        return {r["definition"]: (int(r["number"]), str(r["def_hash"])) for r in rows}

    def revisions(self, definition: str | None = None) -> list[Revision]:
        """Revisions, newest first, of one definition or all."""
        if definition is None:
            rows = self._rows("SELECT * FROM revisions ORDER BY created_at DESC, definition, number DESC")
        else:
            rows = self._rows("SELECT * FROM revisions WHERE definition=? ORDER BY number DESC", (definition,))
        return [_revision(r) for r in rows]

    def revision(self, definition: str, number: int) -> Revision:
        """One revision, or NotFound."""
        rows = self._rows("SELECT * FROM revisions WHERE definition=? AND number=?", (definition, number))
        if not rows:
            raise NotFound(f"definition '{definition}' has no revision {number}")
        return _revision(rows[0])

    # --- pins (rollback) -------------------------------------------------------------

    def pin(self, definition: str, revision: int, source_hash: str) -> None:
        """Keep `definition` at `revision` until git changes it (its rendered hash leaves `source_hash`)."""
        self._tx("INSERT OR REPLACE INTO pins (definition, revision, source_hash, created_at) VALUES (?,?,?,?)",
                 (definition, revision, source_hash, now()))

    def unpin(self, definition: str) -> None:
        """Forget a pin."""
        self._tx("DELETE FROM pins WHERE definition=?", (definition,))

    def pins(self) -> dict[str, tuple[int, str]]:
        """definition → (pinned revision, the git hash it was pinned against)."""
        return {r["definition"]: (int(r["revision"]), str(r["source_hash"]))
                for r in self._rows("SELECT * FROM pins")}

    # --- meta and holds ---------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Remember a small JSON value (last commit seen, last validation error, ...)."""
        self._tx("INSERT OR REPLACE INTO meta (key, value, updated_at) VALUES (?,?,?)",
                 (key, json.dumps(value), now()))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A value set with set_meta, or `default`."""
        row = self._tx("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def hold(self, container: str, definition: str, def_hash: str) -> None:
        """An operator stopped this container through syncer: keep it stopped until its definition changes."""
        self._tx("INSERT OR REPLACE INTO holds (container, definition, def_hash, created_at) VALUES (?,?,?,?)",
                 (container, definition, def_hash, now()))

    def release(self, container: str) -> None:
        """Started through syncer again (or its definition changed): self-heal applies again."""
        self._tx("DELETE FROM holds WHERE container=?", (container,))

    def holds(self) -> dict[str, tuple[str, str]]:
        """container → (definition, the definition hash it was held against)."""
        return {r["container"]: (str(r["definition"]), str(r["def_hash"]))
                for r in self._rows("SELECT * FROM holds")}

    # --- deployments -----------------------------------------------------------------

    def add_deployment(self, *, run_id: str | None, definition: str, server: str, revision: int,
                       actions: list[str], trigger: str, commit: str | None) -> str:
        """A deployment, `pending`."""
        ident = new_id("deploy")
        self._tx("INSERT INTO deployments (id, run_id, definition, server, revision, actions, status, trigger,"
                 " commit_sha, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                 (ident, run_id, definition, server, revision, json.dumps(actions), "pending", trigger, commit, now()))
        return ident

    def deployment_running(self, ident: str) -> None:
        """pending → running."""
        self._tx("UPDATE deployments SET status='running', started_at=? WHERE id=?", (now(), ident))

    def finish_deployment(self, ident: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        """running → success | failed."""
        self._tx("UPDATE deployments SET status=?, rolled_back=?, error=?, finished_at=? WHERE id=?",
                 ("success" if ok else "failed", int(rolled_back), error or None, now(), ident))

    def log(self, deployment: str, line: str) -> None:
        """One log line of a deployment."""
        self._tx("INSERT INTO deployment_logs (deployment_id, at, line) VALUES (?,?,?)", (deployment, now(), line))

    def deployments(self, *, definition: str | None = None, status: str | None = None,
                    limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Deployments, newest first, optionally filtered."""
        where, args = _filters(definition=definition, status=status)
        return [_deployment(r) for r in self._rows(
            f"SELECT * FROM deployments {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset))]

    def count_deployments(self, *, definition: str | None = None, status: str | None = None) -> int:
        """How many deployments match."""
        where, args = _filters(definition=definition, status=status)
        return int(self._tx(f"SELECT COUNT(*) FROM deployments {where}", args).fetchone()[0])

    def deployment(self, ident: str) -> dict[str, Any]:
        """One deployment with its log lines."""
        rows = self._rows("SELECT * FROM deployments WHERE id=?", (ident,))
        if not rows:
            raise NotFound(f"no deployment '{ident}'")
        dep = _deployment(rows[0])
        dep["logs"] = self._rows("SELECT at, line FROM deployment_logs WHERE deployment_id=? ORDER BY id", (ident,))
        return dep

    def integrity(self) -> str:
        """`PRAGMA integrity_check`'s answer ('ok' when sound)."""
        return str(self._tx("PRAGMA integrity_check").fetchone()[0])

    # --- API keys and metric samples ---------------------------------------------------

    _KEY_COLUMNS = "id, name, permission, rate_limit, created_at, last_used_at, revoked_at"

    def add_api_key(self, name: str, key_hash: str, permission: str, rate_limit: int | None) -> dict[str, Any]:
        """A new API key; only its hash is kept. Returns its record (never the hash)."""
        ident = new_id("key")
        self._tx("INSERT INTO api_keys (id, name, key_hash, permission, rate_limit, created_at) VALUES (?,?,?,?,?,?)",
                 (ident, name, key_hash, permission, rate_limit, now()))
        return self.api_key(ident)

    def api_keys(self) -> list[dict[str, Any]]:
        """Every key, revoked ones included, oldest first."""
        return self._rows(f"SELECT {self._KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")

    def api_key(self, ident: str) -> dict[str, Any]:
        """One key by id, or NotFound."""
        rows = self._rows(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE id=?", (ident,))
        if not rows:
            raise NotFound(f"no API key '{ident}'")
        return rows[0]

    def api_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key with this hash (revoked or not), read afresh on every call."""
        rows = self._rows(f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE key_hash=?", (key_hash,))
        return rows[0] if rows else None

    def touch_api_key(self, ident: str) -> None:
        """Record that the key was just used."""
        self._tx("UPDATE api_keys SET last_used_at=? WHERE id=?", (now(), ident))

    def revoke_api_key(self, ident: str) -> dict[str, Any]:
        """Revoke a key (at once; revoking twice keeps the first time)."""
        self._tx("UPDATE api_keys SET revoked_at=COALESCE(revoked_at, ?) WHERE id=?", (now(), ident))
        return self.api_key(ident)

    def add_samples(self, samples: Sequence[tuple[str, str, str, float | None, int | None]]) -> None:
        """(definition, container, at, cpu_percent, memory_bytes) rows, in one transaction."""
        with self.transaction():
            for row in samples:
                self._tx("INSERT INTO metric_samples (definition, container, at, cpu_percent, memory_bytes)"
                         " VALUES (?,?,?,?,?)", row)

    def samples(self, definition: str, start: str, end: str) -> list[dict[str, Any]]:
        """A definition's samples with start <= at < end, oldest first."""
        return self._rows("SELECT container, at, cpu_percent, memory_bytes FROM metric_samples"
                          " WHERE definition=? AND at>=? AND at<? ORDER BY at", (definition, start, end))

    def prune_samples(self, before: str) -> int:
        """Forget samples older than `before`; returns how many went."""
        return int(self._tx("DELETE FROM metric_samples WHERE at<?", (before,)).rowcount)

    def count_by_status(self, table: str) -> dict[str, int]:
        """status → rows, for `runs`, `deployments`, `definitions` or `webhook_deliveries`."""
        if table not in ("runs", "deployments", "definitions", "webhook_deliveries"):
            raise ValueError(f"no status column in {table}")
        return {str(r["status"]): int(r["n"])
                for r in self._rows(f"SELECT status, COUNT(*) AS n FROM {table} GROUP BY status")}

    def run_durations(self) -> list[float]:
        """Seconds each finished apply run took."""
        rows = self._rows("SELECT (julianday(finished_at) - julianday(started_at)) * 86400.0 AS s FROM runs"
                          " WHERE finished_at IS NOT NULL")
        return [max(0.0, float(r["s"])) for r in rows if r["s"] is not None]

    # --- webhook deliveries ---------------------------------------------------------------
    # A durable queue: a row per (event, target), `pending` until delivered or given up
    # (`failed`), with one webhook_attempts row per try. Bodies hold no secret values.

    def add_deliveries(self, rows: Sequence[tuple[str, str, str, str]], *, due: str, status: str = "pending") -> None:
        """Queue (id, url, event, body) rows, due at `due`, in one commit (`sending`: already
        claimed by the caller until `due`)."""
        stamp = now()
        with self.transaction():
            for ident, url, event, body in rows:
                self._tx("INSERT INTO webhook_deliveries (id, url, event, body, status, next_attempt_at, created_at)"
                         " VALUES (?,?,?,?,?,?,?)", (ident, url, event, body, status, due, stamp))

    def claim_deliveries(self, *, due_by: str, lease_until: str, limit: int = 100) -> list[dict[str, Any]]:
        """Deliveries due by `due_by`, oldest first, claimed (`sending`) until `lease_until`.

        The claim takes them out of reach of every other sender (thread or process) while
        this one tries them; a sender killed meanwhile leaves them due again at `lease_until`.
        """
        with self.transaction():
            rows = self._rows("SELECT * FROM webhook_deliveries WHERE status IN ('pending','sending')"
                              " AND next_attempt_at<=? ORDER BY next_attempt_at, created_at, id LIMIT ?",
                              (due_by, limit))
            for r in rows:
                self._tx("UPDATE webhook_deliveries SET status='sending', next_attempt_at=? WHERE id=?",
                         (lease_until, r["id"]))
        return rows

    def hasten_deliveries(self, url: str, *, due: str) -> int:
        """Make every pending delivery to `url` due by `due` (its receiver answered again)."""
        return int(self._tx("UPDATE webhook_deliveries SET next_attempt_at=? WHERE url=? AND status='pending'"
                            " AND next_attempt_at>?", (due, url, due)).rowcount)

    def record_attempt(self, ident: str, *, at: str, status_code: int | None, error: str | None,
                       duration_ms: int | None, status: str, next_attempt_at: str) -> None:
        """One try of a delivery and its outcome: `delivered`, `pending` (again at
        `next_attempt_at`) or `failed` (given up)."""
        with self.transaction():
            self._tx("INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)"
                     " VALUES (?,?,?,?,?)", (ident, at, status_code, error, duration_ms))
            self._tx("UPDATE webhook_deliveries SET status=?, attempts=attempts+1, next_attempt_at=?, last_error=?,"
                     " last_status_code=?, delivered_at=? WHERE id=?",
                     (status, next_attempt_at, error, status_code, at if status == "delivered" else None, ident))

    def next_delivery_at(self) -> str | None:
        """When the next pending delivery falls due (None when nothing is pending)."""
        row = self._tx("SELECT MIN(next_attempt_at) FROM webhook_deliveries"
                       " WHERE status IN ('pending','sending')").fetchone()
        return None if row[0] is None else str(row[0])

    def deliveries(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Deliveries, newest first, each with its `attempt_log` (oldest attempt first)."""
        where, args = _filters(status=status)
        rows = self._rows(f"SELECT * FROM webhook_deliveries {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
                          (*args, limit, offset))
        return self._with_attempts(rows)

    def count_deliveries(self, *, status: str | None = None) -> int:
        """How many deliveries match."""
        where, args = _filters(status=status)
        return int(self._tx(f"SELECT COUNT(*) FROM webhook_deliveries {where}", args).fetchone()[0])

    def delivery(self, ident: str) -> dict[str, Any]:
        """One delivery with its attempt log, or NotFound."""
        rows = self._rows("SELECT * FROM webhook_deliveries WHERE id=?", (ident,))
        if not rows:
            raise NotFound(f"no webhook delivery '{ident}'")
        return self._with_attempts(rows)[0]

    def retry_delivery(self, ident: str, *, due: str) -> dict[str, Any]:
        """Queue a delivery again, due at `due`, with a fresh retry budget (its past attempts
        stay in the log); `created_at` becomes the time it was queued again."""
        self.delivery(ident)
        self._tx("UPDATE webhook_deliveries SET status='pending', attempts=0, next_attempt_at=?, created_at=?,"
                 " delivered_at=NULL WHERE id=?", (due, now(), ident))
        return self.delivery(ident)

    def _with_attempts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            return rows
        marks = ",".join("?" * len(rows))
        log: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        for a in self._rows(f"SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts"
                            f" WHERE delivery_id IN ({marks}) ORDER BY id", [r["id"] for r in rows]):
            log[a.pop("delivery_id")].append(a)
        return [dict(r, attempt_log=log[r["id"]]) for r in rows]


class _Transaction:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        self.store._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self.store._db.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self.store._lock.release()


def _filters(**kw: Any) -> tuple[str, list[Any]]:
    parts, args = [], []
    for key, value in kw.items():
        if value is not None:
            parts.append(f"{key}=?")
            args.append(value)
    return ("WHERE " + " AND ".join(parts)) if parts else "", args


def _revision(r: Mapping[str, Any]) -> Revision:
    return Revision(r["definition"], int(r["number"]), r["def_hash"], json.loads(r["specs"]), r["commit_sha"],
                    r["created_at"], r["rollback_of"])


def _deployment(r: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["actions"] = json.loads(out["actions"])
    out["rolled_back"] = bool(out["rolled_back"])
    out["commit"] = out.pop("commit_sha")
    return out

