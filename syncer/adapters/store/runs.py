"""Apply runs, definitions and their revisions, rollback pins, meta values and holds.

Specs are stored as rendered (secrets as keyed references, never values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from syncer.adapters.store.db import Db, new_id, now
from syncer.core.errors import NotFound
from syncer.core.record import Record, record


@record
class Revision(Record):
    """One rendered state of a definition."""

    definition: str
    number: int
    def_hash: str
    specs: list[dict[str, Any]]
    commit: str | None
    created_at: str
    rollback_of: int | None


class Runs(Db):
    """The `runs`, `definitions`, `revisions`, `pins`, `meta` and `holds` tables."""

    # --- runs ------------------------------------------------------------------------

    def start_run(self, trigger: str, commit: str | None, pid: int) -> str:
        """A new apply run, `running`."""
        run_id = new_id("run")
        self._exec("INSERT INTO runs (id, trigger, commit_sha, status, started_at, pid) VALUES (?,?,?,?,?,?)",
                   (run_id, trigger, commit, "running", now(), pid))
        return run_id

    def finish_run(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close a run with its outcome."""
        self._exec("UPDATE runs SET status=?, finished_at=?, summary=? WHERE id=?",
                   (status, now(), json.dumps(summary), run_id))

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest apply runs."""
        return self._rows("SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,))

    def run_durations(self) -> list[float]:
        """Seconds each finished apply run took."""
        rows = self._rows("SELECT (julianday(finished_at) - julianday(started_at)) * 86400.0 AS s FROM runs"
                          " WHERE finished_at IS NOT NULL")
        return [max(0.0, float(r["s"])) for r in rows if r["s"] is not None]

    def recover(self) -> int:
        """Mark what a killed apply left `running` as interrupted; returns how many deployments."""
        stamp = now()
        with self.transaction():
            count = self._exec("UPDATE deployments SET status='failed', error='interrupted', finished_at=? "
                               "WHERE status NOT IN ('success','failed')", (stamp,))
            self._exec("UPDATE runs SET status='interrupted', finished_at=? WHERE status='running'", (stamp,))
            self._exec("UPDATE definitions SET status='failed' WHERE status='deploying'")
        return count

    # --- definitions and revisions ---------------------------------------------------

    def upsert_definition(self, name: str, server: str, template: str) -> str:
        """Record a definition (or its new server/template); returns its id."""
        stamp = now()
        with self.transaction():  # the read and the write as one: two writers never both insert
            row = self._one("SELECT id FROM definitions WHERE name=?", (name,))
            if row is None:
                ident = new_id("def")
                self._exec("INSERT INTO definitions (name, id, server, template, status, created_at, updated_at)"
                           " VALUES (?,?,?,?,?,?,?)", (name, ident, server, template, "pending", stamp, stamp))
                return ident
            self._exec("UPDATE definitions SET server=?, template=?, deleted_at=NULL, updated_at=? WHERE name=?",
                       (server, template, stamp, name))
        return str(row["id"])

    def set_definition_status(self, name: str, status: str, *, revision: int | None = None,
                              deleted: bool = False) -> None:
        """Status after a deployment: active, failed, deploying, removed."""
        stamp = now()
        if revision is not None:
            self._exec("UPDATE definitions SET status=?, current_revision=?, updated_at=? WHERE name=?",
                       (status, revision, stamp, name))
        else:
            self._exec("UPDATE definitions SET status=?, updated_at=?, deleted_at=? WHERE name=?",
                       (status, stamp, stamp if deleted else None, name))

    def definitions(self) -> list[dict[str, Any]]:
        """Every definition the store knows, removed ones included."""
        return self._rows("SELECT * FROM definitions ORDER BY name")

    def succeeded(self) -> dict[str, int]:
        """The definitions whose last deployment succeeded → that revision (stages/plan: a job
        that ran at it is not run again)."""
        return {r["name"]: int(r["current_revision"]) for r in self._rows(
            "SELECT name, current_revision FROM definitions WHERE status='active' AND current_revision IS NOT NULL")}

    def failed_definitions(self) -> dict[str, int | None]:
        """The definitions whose last deployment failed → the revision each last deployed
        successfully (None: none did): what watch reads at every cycle (engine/holds.py)."""
        return {r["name"]: r["current_revision"]
                for r in self._rows("SELECT name, current_revision FROM definitions WHERE status='failed'")}

    def definition(self, ident: str) -> dict[str, Any]:
        """One definition by name or id."""
        row = self._one("SELECT * FROM definitions WHERE name=? OR id=?", (ident, ident))
        if row is None:
            raise NotFound(f"no definition '{ident}' in the store")
        return row

    def add_revision(self, definition: str, number: int, def_hash: str, specs: list[dict[str, Any]],
                     commit: str | None, rollback_of: int | None = None) -> None:
        """A new revision; recording the same number again is a no-op (retry of a failed one)."""
        self._exec("INSERT OR IGNORE INTO revisions (definition, number, def_hash, specs, commit_sha, created_at,"
                   " rollback_of) VALUES (?,?,?,?,?,?,?)",
                   (definition, number, def_hash, json.dumps(specs), commit, now(), rollback_of))

    def drop_revision(self, definition: str, number: int) -> None:
        """Forget a revision nothing ran (a rollback declined, or that could not be applied)."""
        self._exec("DELETE FROM revisions WHERE definition=? AND number=?", (definition, number))

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
        row = self._one("SELECT * FROM revisions WHERE definition=? AND number=?", (definition, number))
        if row is None:
            raise NotFound(f"definition '{definition}' has no revision {number}")
        return _revision(row)

    # --- pins (rollback) -------------------------------------------------------------

    def pin(self, definition: str, revision: int, source_hash: str) -> None:
        """Keep `definition` at `revision` until git changes it (its rendered hash leaves `source_hash`)."""
        self._exec("INSERT OR REPLACE INTO pins (definition, revision, source_hash, created_at) VALUES (?,?,?,?)",
                   (definition, revision, source_hash, now()))

    def unpin(self, definition: str) -> None:
        """Forget a pin."""
        self._exec("DELETE FROM pins WHERE definition=?", (definition,))

    def pins(self) -> dict[str, tuple[int, str]]:
        """definition → (pinned revision, the git hash it was pinned against)."""
        return {r["definition"]: (int(r["revision"]), str(r["source_hash"]))
                for r in self._rows("SELECT * FROM pins")}

    # --- meta and holds ---------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Remember a small JSON value (last commit seen, last validation error, ...)."""
        self._exec("INSERT OR REPLACE INTO meta (key, value, updated_at) VALUES (?,?,?)",
                   (key, json.dumps(value), now()))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A value set with set_meta, or `default`."""
        row = self._one("SELECT value FROM meta WHERE key=?", (key,))
        return default if row is None else json.loads(row["value"])

    def hold(self, container: str, definition: str, def_hash: str) -> None:
        """An operator stopped this container through syncer: keep it stopped until its definition changes."""
        self._exec("INSERT OR REPLACE INTO holds (container, definition, def_hash, created_at) VALUES (?,?,?,?)",
                   (container, definition, def_hash, now()))

    def release(self, container: str) -> None:
        """Started through syncer again (or its definition changed): self-heal applies again."""
        self._exec("DELETE FROM holds WHERE container=?", (container,))

    def holds(self) -> dict[str, tuple[str, str]]:
        """container → (definition, the definition hash it was held against)."""
        return {r["container"]: (str(r["definition"]), str(r["def_hash"]))
                for r in self._rows("SELECT * FROM holds")}


    def mark_finished(self, container: str, container_id: str, definition: str) -> None:
        """The container `container_id` ended on its own as its restart policy allows (a
        one-shot that exited 0): plans leave it exited while that container stays so."""
        self._exec("INSERT OR REPLACE INTO finished (container, container_id, definition, created_at)"
                   " VALUES (?,?,?,?)", (container, container_id, definition, now()))

    def unmark_finished(self, container: str) -> None:
        """Started through syncer again: the next end is judged afresh."""
        self._exec("DELETE FROM finished WHERE container=?", (container,))

    def finished(self) -> dict[str, str]:
        """container name → the id of the container that finished under it."""
        return {str(r["container"]): str(r["container_id"]) for r in self._rows("SELECT * FROM finished")}


def _revision(r: Mapping[str, Any]) -> Revision:
    return Revision(r["definition"], int(r["number"]), r["def_hash"], json.loads(r["specs"]), r["commit_sha"],
                    r["created_at"], r["rollback_of"])
