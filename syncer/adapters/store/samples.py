"""Metric samples of running containers, and the counts the metrics endpoint serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncer.adapters.store.db import Db

_STATUS_TABLES = ("runs", "deployments", "definitions", "webhook_deliveries")


class Samples(Db):
    """The `metric_samples` table, and status counts over the others."""

    def add_samples(self, samples: Sequence[tuple[str, str, str, float | None, int | None]]) -> None:
        """(definition, container, at, cpu_percent, memory_bytes) rows, in one transaction."""
        with self.transaction():
            for row in samples:
                self._exec("INSERT INTO metric_samples (definition, container, at, cpu_percent, memory_bytes)"
                           " VALUES (?,?,?,?,?)", row)

    def samples(self, definition: str, start: str, end: str) -> list[dict[str, Any]]:
        """A definition's samples with start <= at < end, oldest first."""
        return self._rows("SELECT container, at, cpu_percent, memory_bytes FROM metric_samples"
                          " WHERE definition=? AND at>=? AND at<? ORDER BY at", (definition, start, end))

    def prune_samples(self, before: str) -> int:
        """Forget samples older than `before`; returns how many went."""
        return self._exec("DELETE FROM metric_samples WHERE at<?", (before,))

    def count_by_status(self, table: str) -> dict[str, int]:
        """status → rows, for `runs`, `deployments`, `definitions` or `webhook_deliveries`."""
        if table not in _STATUS_TABLES:
            raise ValueError(f"no status column in {table}")
        return {str(r["status"]): int(r["n"])
                for r in self._rows(f"SELECT status, COUNT(*) AS n FROM {table} GROUP BY status")}
