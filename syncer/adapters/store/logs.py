"""syncer's own log records: what the daemon and the server did, kept for `syncer logs`
and GET /logs (the VersionTwo seed's logs resource)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncer.adapters.store.db import Db

LEVELS = ("debug", "info", "warn", "error")


class Logs(Db):
    """The `logs` table."""

    def add_logs(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """(at, level, component, message) rows, in one transaction."""
        with self.transaction():
            for row in rows:
                self._exec("INSERT INTO logs (at, level, component, message) VALUES (?,?,?,?)", row)

    def logs(self, *, level: str | None = None, component: str | None = None, start: str | None = None,
             end: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Records newest first; `level` keeps that level and the more severe ones."""
        sql, args = self._log_filter(level, component, start, end)
        return self._rows(f"SELECT at AS timestamp, level, component, message FROM logs{sql}"
                          " ORDER BY id DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def count_logs(self, *, level: str | None = None, component: str | None = None, start: str | None = None,
                   end: str | None = None) -> int:
        """How many records the same filters match."""
        sql, args = self._log_filter(level, component, start, end)
        row = self._one(f"SELECT COUNT(*) AS n FROM logs{sql}", args)
        return int(row["n"]) if row else 0

    def prune_logs(self, before: str) -> int:
        """Forget records older than `before`; returns how many went."""
        return self._exec("DELETE FROM logs WHERE at<?", (before,))

    @staticmethod
    def _log_filter(level: str | None, component: str | None, start: str | None,
                    end: str | None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if level is not None:
            kept = LEVELS[LEVELS.index(level):]
            clauses.append(f"level IN ({','.join('?' * len(kept))})")
            args.extend(kept)
        for sql, value in (("component=?", component), ("at>=?", start), ("at<?", end)):
            if value is not None:
                clauses.append(sql)
                args.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
