"""Outgoing webhook deliveries: a durable queue.

A row per (event, target), `pending` until delivered or given up (`failed`), with one
`webhook_attempts` row per try. Bodies hold no secret values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncer.adapters.store.db import Db, now, where
from syncer.core.errors import NotFound


class Deliveries(Db):
    """The `webhook_deliveries` and `webhook_attempts` tables."""

    def add_deliveries(self, rows: Sequence[tuple[str, str, str, str]], *, due: str, status: str = "pending") -> None:
        """Queue (id, url, event, body) rows, due at `due`, in one commit (`sending`: already
        claimed by the caller until `due`)."""
        stamp = now()
        with self.transaction():
            for ident, url, event, body in rows:
                self._exec("INSERT INTO webhook_deliveries (id, url, event, body, status, next_attempt_at,"
                           " created_at) VALUES (?,?,?,?,?,?,?)", (ident, url, event, body, status, due, stamp))

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
                self._exec("UPDATE webhook_deliveries SET status='sending', next_attempt_at=? WHERE id=?",
                           (lease_until, r["id"]))
        return rows

    def hasten_deliveries(self, url: str, *, due: str) -> int:
        """Make every pending delivery to `url` due by `due` (its receiver answered again)."""
        return self._exec("UPDATE webhook_deliveries SET next_attempt_at=? WHERE url=? AND status='pending'"
                          " AND next_attempt_at>?", (due, url, due))

    def record_attempt(self, ident: str, *, at: str, status_code: int | None, error: str | None,
                       duration_ms: int | None, status: str, next_attempt_at: str) -> None:
        """One try of a delivery and its outcome: `delivered`, `pending` (again at
        `next_attempt_at`) or `failed` (given up)."""
        with self.transaction():
            self._exec("INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms)"
                       " VALUES (?,?,?,?,?)", (ident, at, status_code, error, duration_ms))
            self._exec("UPDATE webhook_deliveries SET status=?, attempts=attempts+1, next_attempt_at=?,"
                       " last_error=?, last_status_code=?, delivered_at=? WHERE id=?",
                       (status, next_attempt_at, error, status_code, at if status == "delivered" else None, ident))

    def next_delivery_at(self) -> str | None:
        """When the next pending delivery falls due (None when nothing is pending)."""
        due = self._scalar("SELECT MIN(next_attempt_at) FROM webhook_deliveries"
                           " WHERE status IN ('pending','sending')")
        return None if due is None else str(due)

    def deliveries(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Deliveries, newest first, each with its `attempt_log` (oldest attempt first)."""
        clause, args = where(status=status)
        with self._lock:  # the rows and their attempts from one moment
            rows = self._rows(f"SELECT * FROM webhook_deliveries {clause} ORDER BY created_at DESC, id"
                              " LIMIT ? OFFSET ?", (*args, limit, offset))
            return self._with_attempts(rows)

    def count_deliveries(self, *, status: str | None = None) -> int:
        """How many deliveries match."""
        clause, args = where(status=status)
        return int(self._scalar(f"SELECT COUNT(*) FROM webhook_deliveries {clause}", args))

    def delivery(self, ident: str) -> dict[str, Any]:
        """One delivery with its attempt log, or NotFound."""
        with self._lock:
            row = self._one("SELECT * FROM webhook_deliveries WHERE id=?", (ident,))
            if row is None:
                raise NotFound(f"no webhook delivery '{ident}'")
            return self._with_attempts([row])[0]

    def retry_delivery(self, ident: str, *, due: str) -> dict[str, Any]:
        """Queue a delivery again, due at `due`, with a fresh retry budget (its past attempts
        stay in the log); `created_at` becomes the time it was queued again."""
        self.delivery(ident)
        self._exec("UPDATE webhook_deliveries SET status='pending', attempts=0, next_attempt_at=?, created_at=?,"
                   " delivered_at=NULL WHERE id=?", (due, now(), ident))
        return self.delivery(ident)

    def _with_attempts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each row with its `attempt_log`, read in one query."""
        if not rows:
            return rows
        marks = ",".join("?" * len(rows))
        log: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        for a in self._rows(f"SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts"
                            f" WHERE delivery_id IN ({marks}) ORDER BY id", [r["id"] for r in rows]):
            log[a.pop("delivery_id")].append(a)
        return [dict(r, attempt_log=log[r["id"]]) for r in rows]
