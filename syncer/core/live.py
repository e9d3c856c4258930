"""What observe reads of the servers: containers, networks, Swarm tasks, each server's state
and one snapshot of them all (frozen dataclasses, stdlib only). `syncer.core.model` names them too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field, replace

from syncer.core.labels import spec_of
from syncer.core.record import Record, record


# a long-running Swarm service's state words beyond a container's (stages/swarm_status.py): some of
# its tasks run, not all; none runs and Swarm placed none of those (no node can take them); none runs
# after failures (Swarm restarts them, or its restart policy gave up)
SERVICE_DEGRADED, SERVICE_PENDING, SERVICE_FAILING = "degraded", "pending", "failing"
SERVICE_SHORT = (SERVICE_DEGRADED, SERVICE_PENDING, SERVICE_FAILING, "starting")  # fewer tasks run than it wants


@record
class LiveContainer(Record):
    """One container as one list call reports it."""

    id: str
    name: str
    server: str
    state: str
    health: str | None
    labels: Mapping[str, str]
    created: int = 0
    status: str = ""
    networks: tuple[str, ...] = ()  # the networks it is attached to (from the same list call)
    # name → the id of the network its endpoint is on ("": not known): a stopped container keeps the
    # endpoint of a network removed since, which is not that name's live network any more (stages/outside.py)
    network_ids: Mapping[str, str] = field(default_factory=dict)
    replicas: int | None = None  # a Swarm service's: the replicas its spec asks for (None: a job, a global one)
    mode: str = ""  # a Swarm service's: `replicated`, `global`, `replicated-job` or `global-job`
    image: str = ""  # the image it runs: a container's image id, a service's image as its spec names it
    digests: tuple[str, ...] = ()  # `repo@sha256:…` that image is known as (asked only for pull_policy: always)
    network_mode: str = ""  # HostConfig.NetworkMode: `container:<id>` when it shares another's network
    started_at: str = ""  # State.StartedAt, inspected for a network's sharer and owner, a restart's dependent
    made_at: str = ""  # Created (RFC 3339, to the nanosecond), inspected alike (a restart's dependency)
    template: str = ""  # a Swarm service's live TaskTemplate and ports (stages/swarm_drift.live_template)

    @property
    def exit_code(self) -> int | None:
        """The code an exited container ended with, read from its status ("Exited (0) ...")."""
        m = re.match(r"Exited \((-?[0-9]+)\)", self.status)
        return int(m.group(1)) if m else None

    @property
    def definition(self) -> str | None:
        """The `syncer.definition` label."""
        return self.labels.get("syncer.definition")

    @property
    def replica(self) -> int:
        """The `syncer.replica` label, 0 when absent or malformed."""
        try:
            return int(self.labels.get("syncer.replica", "0"))
        except ValueError:
            return 0


@record
class LiveNetwork(Record):
    """One network as the one network list call reports it; `internal` and `subnets` are fixed when made."""
    id: str
    name: str
    labels: Mapping[str, str]
    internal: bool = False
    subnets: tuple[str, ...] = ()


@record
class LiveTask(Record):
    """One Swarm task (a replica of a service) as one `GET /tasks` reports it."""

    id: str
    service: str  # the service's name (= the definition's)
    service_id: str
    slot: int
    node: str
    state: str  # Status.State: new, pending, starting, running, failed, shutdown, ...
    desired: str  # DesiredState
    error: str = ""  # Status.Err
    container_id: str = ""
    updated: str = ""
    spec_hash: str = ""  # the syncer.spec-hash its container carries (which revision it runs)
    message: str = ""  # Status.Message (`pending task scheduling`): why it waits, where Err says nothing
    # its container's health (the container list's), read for `instances` where the container is on
    # the manager syncer talks to (a task's row has no health); None elsewhere, or with no healthcheck
    health: str | None = None


@record
class RegistryAnswer(Record):
    """What a registry said a tag names now: its manifest digest, or why it could not tell."""

    digest: str = ""
    error: str = ""


@record
class ServerState(Record):
    """One server's snapshot: our containers (on a Swarm server: our services, one
    LiveContainer each, and their tasks), who holds the names we want, and its networks."""

    server: str
    reachable: bool
    managed: tuple[LiveContainer, ...] = ()
    name_holders: tuple[LiveContainer, ...] = ()
    error: str = ""
    engine_version: str = ""
    networks: tuple[LiveNetwork, ...] = ()
    kind: str = "docker"
    tasks: tuple[LiveTask, ...] = ()
    api_version: str = ""  # the engine API's version (Swarm jobs need 1.41, start_interval 1.44)
    registry: Mapping[str, RegistryAnswer] = field(default_factory=dict)  # pull_policy always: ref → now
    volumes: tuple[str, ...] = ()  # of the `external: true` volumes its specs mount, those that exist

    def instances(self) -> tuple[LiveContainer, ...]:
        """What `instances` lists: the containers, or on a Swarm server one row per slot Swarm
        wants (core/swarm_slots.py: LiveContainers named `<service>.<slot>`, a global service's
        `<service>.<node>`; `restarting` while a task waits out its restart delay), and one row
        for each service with none (held at 0 by `instances stop`, a finished job)."""
        if self.kind != "swarm":
            return self.managed
        from syncer.core.swarm_slots import slot_rows  # (a module of its own that builds on this one's records)

        project = next((c.labels.get("syncer.project", "") for c in self.managed), "")
        rows = slot_rows(self.server, project, self.managed, self.tasks)
        return tuple(r for made in rows.values() for r in made) + tuple(
            _idle_service(c) for c in self.managed if c.id not in rows)


def _idle_service(c: LiveContainer) -> LiveContainer:
    """A service no task of which Swarm wants running, as its one `instances` row."""
    if c.replicas is None:  # a job: its state reads as a finished container's
        return c
    wanted = spec_replicas(c.labels)
    status = (f"stopped: 0/{wanted} replicas (`instances start` scales it back to {wanted})" if c.replicas == 0
              else f"0/{c.replicas} replicas running")
    return replace(c, state="stopped" if c.replicas == 0 else c.state, status=status)


def spec_replicas(labels: Mapping[str, str]) -> int:
    """The replicas of the spec a service was deployed from (its `syncer.spec` label)."""
    try:
        return int(spec_of(labels).get("replicas", 1))
    except (ValueError, TypeError):
        return 1


@record
class Observed(Record):
    """One snapshot of every server."""

    project: str
    servers: Mapping[str, ServerState]

