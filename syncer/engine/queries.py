"""Read models for the shells: what the store remembers (definitions, revisions, deployments,
runs, webhook deliveries, metric samples) and what each Docker server says about itself,
as plain dicts and dataclasses. No shell opens the store or a Docker client itself.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncer.adapters.store import Revision, Store
from syncer.core import clock
from syncer.core.errors import NotFound, SyncerError
from syncer.core.model import Project, Server

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory


class StateView:
    """What the store remembers, read by a long-running server on one connection of its own."""

    def __init__(self, state_dir: Path) -> None:
        self.store = Store(state_dir)

    def close(self) -> None:
        """Close the connection."""
        self.store.close()

    def version(self) -> int:
        """Changes whenever another connection commits to the store (SQLite's data_version)."""
        return self.store.data_version()

    HOOK_IDS_KEPT, HOOK_IDS_DAYS = 10_000, 7  # git webhook delivery ids: the newest, none older

    def first_delivery(self, key: str) -> bool:
        """True the first time a git webhook's `key` (provider:delivery id) is offered, False
        for a redelivery: kept in the store, so a restarted server remembers it."""
        before = clock.stamp(clock.now() - self.HOOK_IDS_DAYS * 86400)
        return self.store.first_hook_delivery(key, keep=self.HOOK_IDS_KEPT, before=before)

    def problem(self) -> str | None:
        """Why the store cannot be read now (None when it can): for GET /health."""
        return self.store.problem()

    # definitions

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Definition name -> its row (id, server, template, status, current_revision, times)."""
        return {str(d["name"]): d for d in self.store.definitions()}

    def definition_row(self, ident: str) -> dict[str, Any] | None:
        """One definition's row by `def_` id or name (one indexed query), or None."""
        try:
            return self.store.definition(ident)
        except NotFound:
            return None

    def definition_ids(self) -> dict[str, str]:
        """Definition name -> its `def_` id, for those the store knows."""
        return {name: str(row["id"]) for name, row in self.definitions().items()}

    def pinned(self) -> set[str]:
        """Definitions pinned by a rollback."""
        return set(self.store.pins())

    def held(self) -> set[str]:
        """Containers held stopped by an operator."""
        return set(self.store.holds())

    def finished(self) -> dict[str, str]:
        """Containers watch saw end on their own as their restart policy allows: name → id."""
        return self.store.finished()

    def revisions(self, definition: str) -> list[Revision]:
        """A definition's revisions, newest first."""
        return self.store.revisions(definition)

    # runs and repository state

    def last_run(self) -> dict[str, Any] | None:
        """The newest apply run: id, trigger, status, commit, times, summary."""
        rows = self.store.runs(1)
        if not rows:
            return None
        r = rows[0]
        return {"id": r["id"], "trigger": r["trigger"], "status": r["status"], "commit": r["commit_sha"],
                "started_at": r["started_at"], "finished_at": r["finished_at"],
                "summary": json.loads(r["summary"]) if r.get("summary") else None}

    def meta(self, key: str) -> Any:
        """A remembered value (`last_commit`, `last_validation_error`), or None."""
        return self.store.get_meta(key)

    # deployments, deliveries, samples

    def deployments(self, *, definition: str | None, status: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of deployments, newest first, and how many match in all."""
        rows = self.store.deployments(definition=definition, status=status, limit=limit, offset=offset)
        return rows, self.store.count_deployments(definition=definition, status=status)

    def deployment(self, ident: str) -> dict[str, Any]:
        """One deployment with its log (NotFound when unknown)."""
        return self.store.deployment(ident)

    def deliveries(self, *, status: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of outgoing webhook deliveries with their attempts, and the total."""
        rows = self.store.deliveries(status=status, limit=limit, offset=offset)
        return rows, self.store.count_deliveries(status=status)

    def delivery(self, ident: str) -> dict[str, Any]:
        """One delivery with its attempts (NotFound when unknown)."""
        return self.store.delivery(ident)

    def samples(self, definition: str, start: str, end: str) -> list[dict[str, Any]]:
        """A definition's samples with start <= at < end (store times), oldest first."""
        return self.store.samples(definition, start, end)

    # counts for /metrics

    def counts(self, table: str) -> dict[str, int]:
        """status -> rows, for `runs`, `deployments` or `webhook_deliveries`."""
        return self.store.count_by_status(table)

    def run_durations(self) -> list[float]:
        """Seconds each finished apply run took."""
        return self.store.run_durations()


def remember(state_dir: Path, **values: Any) -> None:
    """Remember values (`last_commit`, `last_validation_error`) for `status` and the API."""
    store = Store(state_dir)
    try:
        for key, value in values.items():
            store.set_meta(key, value)
    finally:
        store.close()


def server_info(project: Project, server: Server, *, engines: EngineFactory | None = None) -> dict[str, Any]:
    """A server as the API shows it: reachable or not (and why), its engine's version, and the
    project's containers there by state (on a Swarm server: the tasks Swarm wants running, and
    `swarm`, its nodes)."""
    from syncer.adapters.docker import Engine

    out: dict[str, Any] = {"id": f"srv_{server.name}", "name": server.name,
                           "docker": server.docker or "DOCKER_HOST or the local socket",
                           "environment": server.environment, "description": server.description,
                           "reachable": False, "engine_version": None, "api_version": None, "error": None,
                           "containers": {"total": 0}}
    try:
        eng = (engines or Engine)(server)
        try:
            version = eng.version()
            if server.kind == "swarm":  # the tasks Swarm wants running, wherever they are
                states = _swarm_part(eng, project.config.name, out)
            else:
                states = [c.state for c in eng.list_project(project.config.name)]
        finally:
            eng.close()
    except SyncerError as exc:
        out["error"] = str(exc)
        return out
    counts: dict[str, int] = {"total": len(states), "running": 0, "exited": 0, "created": 0}
    for state in states:
        counts[state or "unknown"] = counts.get(state or "unknown", 0) + 1
    out.update(reachable=True, engine_version=version.get("Version"), api_version=version.get("ApiVersion"),
               os=version.get("Os"), arch=version.get("Arch"), containers=counts)
    return out


def _swarm_part(eng: Any, project: str, out: dict[str, Any]) -> list[str]:
    """A Swarm server's tasks' states, and its nodes in `out["swarm"]`; an engine that answers
    but is no manager (a worker, or out of its swarm) keeps `reachable`, with the error there."""
    from syncer.adapters.swarm import Swarm

    swarm = Swarm(eng)
    try:
        nodes, tasks = swarm.nodes(), swarm.project_tasks(project)
    except SyncerError as exc:
        out["swarm"] = {"error": str(exc)}
        return []
    out["swarm"] = swarm_nodes(nodes)
    return [(t.get("Status") or {}).get("State", "") for t in tasks if t.get("DesiredState") == "running"]


def swarm_nodes(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A swarm's nodes as the API shows them: how many, how many ready and active (where
    Swarm places tasks), how many managers, and each node that is not, with why."""
    def ready(n: dict[str, Any]) -> bool:
        return (n.get("Status") or {}).get("State") == "ready" and (n.get("Spec") or {}).get("Availability") == "active"

    def name(n: dict[str, Any]) -> str:
        return str((n.get("Description") or {}).get("Hostname") or n.get("ID", "")[:12])

    return {"nodes": len(nodes), "ready": sum(1 for n in nodes if ready(n)),
            "managers": sum(1 for n in nodes if (n.get("Spec") or {}).get("Role") == "manager"),
            "not_ready": sorted(f"{name(n)}: {(n.get('Status') or {}).get('State', '?')},"
                                f" {(n.get('Spec') or {}).get('Availability', '?')}" for n in nodes if not ready(n))}


def servers_info(project: Project, *, engines: EngineFactory | None = None) -> list[dict[str, Any]]:
    """`server_info` of every server of the project, by name, asked in parallel."""
    servers = sorted(project.config.servers.values(), key=lambda s: s.name)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
        return list(pool.map(lambda s: server_info(project, s, engines=engines), servers))
