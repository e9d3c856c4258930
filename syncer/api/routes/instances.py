"""Instances: the project's containers (`inst_` + the short container id; a container's
name and id work too), stopped and held, started, restarted, and their output. The actions on
one instance take turns in the order they came, a later one waiting (engine/operations.py)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing, server_of
from syncer.api.routes.definitions import bounded, resolve_definition
from syncer.api.service import Service
from syncer.core import clock
from syncer.core.errors import DockerUnavailable
from syncer.core.model import LiveContainer
from syncer.engine import operations

router = APIRouter()

_UP = re.compile(r"^Up (?:(Less than a second)|About an? (minute|hour)|(\d+) (second|minute|hour|day|week|month|year)s?)")
_UNIT = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000,
         "year": 31536000}


def uptime_from_status(status: str) -> int | None:
    """Seconds up, as precise as the engine's list (`Up 5 minutes`) says; None when not up."""
    m = _UP.match(status)
    if m is None:
        return None
    if m.group(1):
        return 0
    if m.group(2):
        return _UNIT[m.group(2)]
    return int(m.group(3)) * _UNIT[m.group(4)]


def _instance(c: LiveContainer, ids: dict[str, str], held: set[str], marks: dict[str, str],
              now: float) -> dict[str, Any]:
    up = uptime_from_status(c.status) if c.state in ("running", "paused", "restarting") else None
    return {"id": operations.instance_id(c.id), "container_id": c.id[:12], "container_name": c.name,
            "definition_id": ids.get(c.definition or ""), "definition": c.definition,
            "server_id": f"srv_{c.server}", "server": c.server, "replica": c.replica,
            "revision": int(c.labels.get("syncer.revision", "0") or 0) or None, "status": c.state,
            "detail": c.status or None,  # the engine's line, or a task's (its last failure)
            "health": c.health, "held_stopped": c.name in held, "finished": operations.finished(c, marks),
            "created_at": clock.iso(c.created) if c.created else None,
            "started_at": clock.iso(now - up) if up is not None else None, "uptime_seconds": up}


def _precise(inst: dict[str, Any], record: dict[str, Any], now: float) -> dict[str, Any]:
    """started_at and uptime from an inspect, to the second."""
    if not record:
        return inst
    started = operations.started_at(record)
    running = bool((record.get("State") or {}).get("Running"))
    inst.update(started_at=clock.iso(started) if started is not None else None,
                uptime_seconds=max(0, int(now - started.timestamp())) if running and started is not None else None,
                image=(record.get("Config") or {}).get("Image"), restart_count=record.get("RestartCount"))
    return inst


# a container's state, or (on a Swarm server) a task's (`restarting`: waiting out its restart delay after
# a failure), or a service's with no task row (stages/swarm_status.py: `degraded`, `failing`)
InstanceStatus = Literal["created", "running", "paused", "restarting", "removing", "exited", "dead", "stopped",
                         "new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "complete",
                         "failed", "shutdown", "rejected", "orphaned", "remove", "degraded", "failing"]


@router.get("/instances", tags=["instances"], summary="The project's containers")
def list_instances(svc: Svc, page: Paging, definition_id: str | None = None, server_id: str | None = None,
                   status: Annotated[InstanceStatus | None, Query()] = None) -> Response:
    """One list call per server, made after the request arrived (simultaneous requests share
    one). `started_at`/`uptime_seconds` are as precise as the engine's list says
    (`Up 5 minutes`); GET /instances/{id} gives them to the second. An unknown definition or
    server is 404, an unknown status 400 (not an empty page)."""
    name = resolve_definition(svc, definition_id)[0] if definition_id is not None else None
    server = server_of(svc.defined(), server_id) if server_id is not None else None
    observed = svc.instances.get()
    down = [f"{n}: {s.error}" for n, s in sorted(observed.servers.items()) if not s.reachable]
    if down and len(down) == len(observed.servers):
        raise DockerUnavailable("; ".join(down))
    ids, held, marks, now = svc.state.definition_ids(), svc.state.held(), svc.state.finished(), time.time()
    items = [_instance(c, ids, held, marks, now) for s in observed.servers.values() for c in s.instances()]
    items.sort(key=lambda i: (i["server"], i["container_name"]))
    if name is not None:
        items = [i for i in items if i["definition"] == name]
    if server is not None:
        items = [i for i in items if i["server"] == server]
    if status is not None:
        items = [i for i in items if i["status"] == status]
    return listing(svc, items, page)


def _one(svc: Service, c: LiveContainer) -> dict[str, Any]:
    inst = _instance(c, svc.state.definition_ids(), svc.state.held(), svc.state.finished(), time.time())
    return _precise(inst, operations.inspect_instance(svc.defined(), c, engines=svc.engines), time.time())


@router.get("/instances/{instance_id}", tags=["instances"], summary="One container")
def get_instance(svc: Svc, instance_id: str) -> Response:
    """By `inst_` id, container id or name; started_at to the second."""
    return svc.ok(_one(svc, operations.find_instance(svc.defined(), instance_id, engines=svc.engines)))


Timeout = Annotated[int, Query(ge=0, le=600, description="Seconds to stop gracefully before a kill")]


@router.post("/instances/{instance_id}/stop", tags=["instances"], summary="Stop and hold stopped")
def stop_instance(svc: Svc, instance_id: str, timeout: Timeout = 10) -> Response:
    """Stops the container and records it as held stopped: syncs and self-heal leave it
    stopped until it is started through syncer or its definition changes."""
    c = operations.stop_instance(svc.ctx, svc.defined(), instance_id, timeout=timeout, engines=svc.engines)
    return svc.ok(_one(svc, c))


@router.post("/instances/{instance_id}/start", tags=["instances"], summary="Start (releases a hold)")
def start_instance(svc: Svc, instance_id: str) -> Response:
    """Starts the container; syncs and self-heal look after it again."""
    return svc.ok(_one(svc, operations.start_instance(svc.ctx, svc.defined(), instance_id, engines=svc.engines)))


@router.post("/instances/{instance_id}/restart", tags=["instances"], summary="Restart (releases a hold)")
def restart_instance(svc: Svc, instance_id: str, timeout: Timeout = 10) -> Response:
    """Restarts the container (starting it if stopped)."""
    c = operations.restart_instance(svc.ctx, svc.defined(), instance_id, timeout=timeout, engines=svc.engines)
    return svc.ok(_one(svc, c))


def _since(since: datetime | float | None) -> int | None:
    """Unix seconds for Docker (None: from the start)."""
    if since is None:
        return None
    seconds = int(bounded(since, datetime.now(UTC)).timestamp())
    return seconds if seconds > 0 else None


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)\s(.*)$")


@router.get("/instances/{instance_id}/logs", tags=["instances"], summary="A container's output")
def instance_logs(svc: Svc, instance_id: str,
                  tail: Annotated[int, Query(ge=1, le=10000, description="Last N lines")] = 100,
                  since: Annotated[datetime | float | None,
                                   Query(description="Only lines after this time: ISO 8601, or unix seconds")] = None
                  ) -> Response:
    """stdout and stderr lines with their timestamps; secret values masked. A `since` at or
    before the epoch means every line."""
    start = _since(since)
    c, lines = operations.instance_logs(svc.ctx, svc.defined(), instance_id, tail=tail, since=start,
                                        engines=svc.engines)
    out = []
    for line in lines:
        m = _LOG_LINE.match(line)
        out.append({"timestamp": m.group(1), "line": m.group(2)} if m else {"timestamp": None, "line": line})
    return svc.ok({"instance_id": operations.instance_id(c.id), "container_name": c.name, "lines": out})
