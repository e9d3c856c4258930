"""What the Applier needs to dispatch to Swarm servers, without importing the Swarm side of
syncer (services, configs, rolls) for a project that has none."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from syncer.adapters.docker import Engine
from syncer.core.model import Action, ContainerSpec, Desired, RegistryAnswer
from syncer.engine.observe import is_swarm

Log = Callable[[str], None]


class DeployFailed(Exception):
    """A service did not converge; `rolled_back` when Swarm restored the previous spec."""

    def __init__(self, message: str, *, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


class Swarms:
    """The Swarm servers of one apply, as the Applier dispatches to them: services instead of
    containers, behind the same plan actions."""

    def __init__(self, engines: Mapping[str, Engine], desired: Desired, secrets: Mapping[str, str], *,
                 timeout: float, job_timeout: float = 600.0, sleep: Callable[[float], None] = time.sleep,
                 registry: Mapping[str, Mapping[str, RegistryAnswer]] | None = None,
                 internal: Collection[str] = ()) -> None:
        self.deployers: dict[str, Any] = {}
        if any(is_swarm(eng) for eng in engines.values()):
            from syncer.engine.swarm_apply import SwarmDeployer  # only swarm projects pay for it

            self.deployers = {name: SwarmDeployer(eng, desired, secrets, timeout=timeout, job_timeout=job_timeout,
                                                  sleep=sleep, registry=(registry or {}).get(name, {}),
                                                  internal=internal)
                              for name, eng in engines.items() if is_swarm(eng)}

    def __contains__(self, server: object) -> bool:
        return server in self.deployers

    def workers(self, todo: Sequence[str], groups: Mapping[str, Sequence[Action]]) -> int:
        """Threads to add to a wave's pool: a Swarm deployment mostly waits while Swarm
        schedules its tasks, so it does not count against the engine's parallelism (all of
        a wave's services roll at once)."""
        return sum(1 for n in todo if groups[n][0].server in self.deployers)

    def run(self, a: Action, c: ContainerSpec | None,
            labels: Callable[[Action, ContainerSpec], Mapping[str, str]], log: Log) -> None:
        """Carry out one plan action on its Swarm server."""
        self.deployers[a.server].run(a, c, labels(a, c) if c is not None else {}, log)

    def close(self) -> None:
        """The end of the apply: the Swarm servers' event streams are read no more."""
        for deployer in self.deployers.values():
            deployer.close()

    def remove_network(self, a: Action, engine: Engine) -> None:
        """A `network remove` of the plan: on a Swarm server, an overlay the tasks of a
        service that left it still hold for a moment; elsewhere, at once."""
        if a.server in self.deployers:
            self.deployers[a.server].remove_network(a.container)
        else:
            engine.remove_network(a.container_id or a.container)
