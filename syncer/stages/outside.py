"""What someone changed by hand on a managed container that its spec hash does not show: the
networks it is attached to, and its name. Pure: read from the one container list call.

A container whose spec syncer still agrees with, but that was taken off a network its spec
joins (`docker network disconnect`, or the network removed and made again), is drift, as
Compose judges it (`checkExpectedNetworks`): it is recreated, so the recreate's order and
health gate apply, and the new container joins every network of its spec. A network added by
hand (`docker network connect bridge web`) is no drift on its own, as under Compose: an
operator may attach a container to a debugging or monitoring network on purpose; a recreate
for another reason drops it (the new container has its spec's networks only).

A container renamed by hand (`docker rename web web-old`) still carries its project,
definition and replica labels: it is that replica's container, under another name. The plan
recreates it under its name — the recreate path stops the old container before the new one
starts (a published host port is free again) and removes it after — rather than creating a
second one beside it (which fails on that port) and removing the renamed one after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import ContainerSpec, LiveContainer, Reason


def lost_networks(spec: Mapping[str, Any], live: LiveContainer) -> list[str]:
    """The engine names of the networks `spec` joins that `live` is not attached to (none when
    the spec sets `network_mode`: the container then has another's stack, or the host's)."""
    if spec.get("network_mode"):
        return []
    return sorted(set(spec.get("networks") or {}) - set(live.networks))


def network_cause(lost: list[str]) -> str:
    """The cause of a recreate for networks a container is not attached to."""
    return (f"not connected to network{'s' if len(lost) > 1 else ''} {', '.join(lost)}"
            " (changed outside syncer): made again on its spec's networks")


def network_reasons(spec: Mapping[str, Any], live: LiveContainer) -> tuple[Reason, ...]:
    """The networks the container is attached to, and those its spec joins."""
    return (Reason("networks", list(live.networks), sorted(spec.get("networks") or {})),)


def renamed(desired: Iterable[ContainerSpec], managed: Iterable[LiveContainer],
            taken: Iterable[str]) -> dict[str, LiveContainer]:
    """Desired name → the managed container of that definition and replica now under another
    name, for each desired long-running container whose name nobody holds (`taken`: the names
    of the server's containers, ours and others'). Of several such (renamed twice), the running
    one, then the newest; a job's containers are left out (a job runs again by its own rules)."""
    desired = list(desired)
    names = {c.name for c in desired}
    held = set(taken)
    wanted = {(c.definition, c.replica): c.name for c in desired if not c.is_job and c.name not in held}
    out: dict[str, LiveContainer] = {}
    for live in sorted(managed, key=lambda c: (c.state in ("running", "restarting"), c.created, c.id)):
        name = wanted.get((live.definition or "", live.replica))
        if name is not None and live.name not in names and not live.name.endswith(L.TEMP_SUFFIX):
            out[name] = live  # (sorted: the last one wins)
    return out


def renamed_cause(live: LiveContainer, name: str, *, held: bool = False) -> str:
    """The cause of the recreate of a container renamed by hand (`held`: held stopped by an
    operator, and stopped: the new one is made and left stopped)."""
    made = f"made again as {name}" + (", left stopped: held stopped by an operator" if held else "")
    return f"renamed to {live.name} outside syncer: {made} (the renamed container goes)"


def is_renamed(live: LiveContainer, desired: Iterable[ContainerSpec]) -> str:
    """The name of the replica `live` is, when that is not its own name ("" otherwise): a
    container renamed by hand (that replica's container under another name, or a second one)."""
    for c in desired:
        if c.definition == live.definition and c.replica == live.replica and c.name != live.name:
            return c.name
    return ""
