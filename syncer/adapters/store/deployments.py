"""Deployments (one definition brought to one revision) and their log lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from syncer.adapters.store.db import Db, new_id, now, where
from syncer.core.errors import NotFound


class Deployments(Db):
    """The `deployments` and `deployment_logs` tables."""

    def add_deployment(self, *, run_id: str | None, definition: str, server: str, revision: int,
                       actions: list[str], trigger: str, commit: str | None,
                       images: Mapping[str, str] | None = None) -> str:
        """A deployment, `pending`; `images`: each followed tag → the digest it named when planned."""
        ident = new_id("deploy")
        self._exec("INSERT INTO deployments (id, run_id, definition, server, revision, actions, status, trigger,"
                   " commit_sha, created_at, images) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (ident, run_id, definition, server, revision, json.dumps(actions), "pending", trigger, commit,
                    now(), json.dumps(dict(sorted(images.items()))) if images else None))
        return ident

    def deployment_running(self, ident: str) -> None:
        """pending → running."""
        self._exec("UPDATE deployments SET status='running', started_at=? WHERE id=?", (now(), ident))

    def finish_deployment(self, ident: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        """running → success | failed."""
        self._exec("UPDATE deployments SET status=?, rolled_back=?, error=?, finished_at=? WHERE id=?",
                   ("success" if ok else "failed", int(rolled_back), error or None, now(), ident))

    def failures_of(self, revisions: Mapping[str, int]) -> dict[str, tuple[int, bool, str]]:
        """For each definition → revision given, whose deployments of that revision failed since
        the definition's last successful deployment of it or of a later one (in the order they
        were added: two can share a millisecond; a heal at an earlier revision is no success of
        it): how many failed (a dependency's skip and an interrupted apply aside), whether one
        of them rolled back, and when the last one ended (stages/backoff.py)."""
        out: dict[str, tuple[int, bool, str]] = {}
        for name, revision in revisions.items():
            row = self._one(
                "SELECT COUNT(*) AS n, MAX(rolled_back) AS back, MAX(finished_at) AS last FROM deployments"
                " WHERE definition=? AND revision=? AND status='failed' AND COALESCE(error, '') != 'interrupted'"
                " AND COALESCE(error, '') NOT LIKE 'skipped: %' AND rowid > COALESCE((SELECT MAX(rowid)"
                " FROM deployments WHERE definition=? AND status='success' AND revision>=?), 0)",
                (name, revision, name, revision))
            if row is not None and row["n"] and row["last"]:
                out[name] = (int(row["n"]), bool(row["back"]), str(row["last"]))
        return out

    def unended(self) -> dict[str, tuple[int, int | None]]:
        """The definitions whose latest deployment (in the order they were added) did not end:
        marked `interrupted` by `recover`, or still pending or running → (its revision, the pid
        of the apply running it; None once marked interrupted). stages/interrupted.py"""
        rows = self._rows(  # (the partial index deployments_unended holds the few rows the WHERE wants)
            "SELECT d.definition, d.revision, d.status, r.pid FROM deployments d LEFT JOIN runs r ON r.id = d.run_id"
            " WHERE (d.status IN ('pending', 'running') OR d.error = 'interrupted')"
            " AND d.rowid = (SELECT MAX(x.rowid) FROM deployments x WHERE x.definition = d.definition)")
        return {str(r["definition"]): (int(r["revision"]), None if r["status"] == "failed" or r["pid"] is None
                                       else int(r["pid"])) for r in rows}

    def log(self, deployment: str, line: str) -> None:
        """One log line of a deployment."""
        self._exec("INSERT INTO deployment_logs (deployment_id, at, line) VALUES (?,?,?)", (deployment, now(), line))

    def deployments(self, *, definition: str | None = None, status: str | None = None,
                    limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Deployments, newest first, optionally filtered."""
        clause, args = where(definition=definition, status=status)
        return [_deployment(r) for r in self._rows(
            f"SELECT * FROM deployments {clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset))]

    def count_deployments(self, *, definition: str | None = None, status: str | None = None) -> int:
        """How many deployments match."""
        clause, args = where(definition=definition, status=status)
        return int(self._scalar(f"SELECT COUNT(*) FROM deployments {clause}", args))

    def deployment(self, ident: str) -> dict[str, Any]:
        """One deployment with its log lines."""
        with self._lock:  # the row and its lines from one moment
            row = self._one("SELECT * FROM deployments WHERE id=?", (ident,))
            if row is None:
                raise NotFound(f"no deployment '{ident}'")
            dep = _deployment(row)
            dep["logs"] = self._rows("SELECT at, line FROM deployment_logs WHERE deployment_id=? ORDER BY id",
                                     (ident,))
        return dep


def _deployment(r: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out["actions"] = json.loads(out["actions"])
    out["rolled_back"] = bool(out["rolled_back"])
    out["commit"] = out.pop("commit_sha")
    out["images"] = json.loads(out["images"]) if out.get("images") else {}
    return out
