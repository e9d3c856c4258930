"""`instances stop|start|restart|logs` on a Swarm server's definition, whose instance is its
service: stop scales it to 0 replicas (held there by the store, as a stopped container is),
start scales it back to the replicas of the spec it was deployed from, restart rolls every
task (ForceUpdate + 1). A global service (a task on each node) has no replicas to scale: stop
refuses it, restart rolls it. A job (replicated or global) cannot be stopped; start and restart
run it again (and return, as `docker start` does). The others wait until Swarm shows the
result. Logs are every task's.
"""

from __future__ import annotations

import time
from typing import Any

from syncer.adapters.docker import Engine
from syncer.adapters.swarm import Swarm
from syncer.core.errors import Conflict, SyncerError
from syncer.core.model import LiveContainer, spec_replicas
from syncer.engine.heal import marked_swarm

POLL = 0.2


def deployed_replicas(c: LiveContainer) -> int:
    """The replicas of the spec the service was deployed from (its `syncer.spec` label)."""
    return spec_replicas(c.labels)


def logs(engine: Engine, c: LiveContainer, *, tail: int, since: int | None) -> str:
    """The service's output: its tasks' lines in time order, the last `tail`."""
    return Swarm(engine).logs(c.id, tail=tail, since=since)


def stop(engine: Engine, c: LiveContainer, *, timeout: float) -> None:
    """Scale the service to 0 and wait until none of its tasks runs."""
    if c.mode.endswith("-job"):
        raise Conflict(f"service {c.name} is a job (it runs to completion), which Swarm cannot stop:"
                       " remove its definition to remove it")
    if c.mode == "global":
        raise Conflict(f"service {c.name} runs one task on each node (mode: global), which Swarm cannot scale"
                       " to 0: remove its definition to stop it")
    swarm: Swarm = marked_swarm(engine)  # (a watch serving the API: its own scale is no drift)
    swarm.scale(c.id, 0)
    _wait(lambda: not [t for t in swarm.service_tasks(c.id) if _state(t) == "running"], timeout,
          f"service {c.name}: tasks still running after {timeout:g}s")


def start(engine: Engine, c: LiveContainer, *, timeout: float, force: bool = False) -> None:
    """Scale the service back to its deployed replicas (with `force`, roll every task too),
    and wait until that many tasks run (a forced roll: until Swarm says it completed)."""
    swarm: Swarm = marked_swarm(engine)  # (a watch serving the API: its own scale is no drift)
    if c.mode.endswith("-job"):
        return _run_again(swarm, c)
    before = (swarm.inspect_service(c.id).get("UpdateStatus") or {}).get("StartedAt", "")
    replicas = None if c.mode == "global" else deployed_replicas(c)  # (global: a task on each node)
    swarm.scale(c.id, replicas, force=force)

    def done() -> bool:
        if force:
            status = swarm.inspect_service(c.id).get("UpdateStatus") or {}
            if status.get("StartedAt", "") == before or status.get("State") != "completed":
                return False
        wanted = [t for t in swarm.service_tasks(c.id) if t.get("DesiredState") == "running"]
        running = [t for t in wanted if _state(t) == "running"]
        if replicas is None:  # global: every task Swarm wants running, at least one
            return bool(wanted) and len(running) == len(wanted)
        return len(running) == replicas

    many = replicas if replicas is not None else "its"
    _wait(done, timeout, f"service {c.name}: {many} task(s) not running after {timeout:g}s")


def _run_again(swarm: Swarm, c: LiveContainer) -> None:
    """A job service runs once more, as `docker start` runs a finished job container again
    (and, as it, without waiting for the run to end: the plan judges the run as any job's).
    Any change of a job's spec starts a new run (Swarm's JobIteration)."""
    swarm.scale(c.id, None, force=True)


def _state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State", ""))


def _wait(condition: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SyncerError(message)
        time.sleep(POLL)
