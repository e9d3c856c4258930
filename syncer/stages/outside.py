"""What someone changed by hand on a managed container that its spec hash does not show: the
networks it is attached to, and its name. Pure: read from the one container list call.

A container whose spec syncer still agrees with, but that was taken off a network its spec
joins (`docker network disconnect`, or the network removed and made again), is drift, as
Compose judges it (`checkExpectedNetworks`): it is recreated, so the recreate's order and
health gate apply, and the new container joins every network of its spec. A network added by
hand (`docker network connect bridge web`) is no drift on its own, as under Compose: an
operator may attach a container to a debugging or monitoring network on purpose; a recreate
for another reason drops it (the new container has its spec's networks only).

A network is judged by its id, not its name alone: a stopped container keeps its endpoint on a
network removed since (`docker network rm`), and one made again under that name is another
network, which the container cannot start on (`network … not found`). Such a container is not
on that network: it is made again on its spec's networks, not started — and one an operator
holds stopped is made again left stopped (still held), so that starting it through syncer works.
So is one that ran to completion as its restart policy allows (exit 0 under `restart: "no"` or
`on-failure`: finished, left exited): made again and never started (a one-shot that completed
does not run again because a network was removed or made again); the apply carries its finished
mark to the new container, which later plans leave as it is until it is started through syncer.

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
from syncer.core.model import Action, ContainerSpec, LiveContainer, LiveNetwork, Reason

# why a recreate leaves the new container stopped (stay_stopped): held, or it had finished
LEFT_STOPPED = ", left stopped: held stopped by an operator"
LEFT_FINISHED = (", left stopped: it ran to completion (exit 0) as its restart policy allows"
                 " (start it through syncer to run it again)")


def lost_networks(spec: Mapping[str, Any], live: LiveContainer, present: Iterable[LiveNetwork] | None = None,
                  *, gone_only: bool = False) -> list[str]:
    """The engine names of the networks `spec` joins that `live` is not attached to (none when
    the spec sets `network_mode`: the container then has another's stack, or the host's). With
    `present` (the server's networks), also those it is attached to by a stale endpoint
    (`gone_networks`), its spec's or not: it cannot start on them; `gone_only`: those alone."""
    if spec.get("network_mode"):
        return []
    gone = set(gone_networks(live, present)) if present is not None else set()
    if gone_only:
        return sorted(gone)
    return sorted((set(spec.get("networks") or {}) - set(live.networks)) | gone)


def gone_networks(live: LiveContainer, present: Iterable[LiveNetwork]) -> list[str]:
    """The networks `live` is attached to by name whose endpoint is not on the network of that
    name the server has (`present`): removed since, or removed and made again (another id). An
    endpoint whose network id is not known is taken as on it."""
    ids = {n.name: n.id for n in present}
    return sorted(name for name, nid in live.network_ids.items() if nid and ids.get(name) != nid)


def network_recreate(spec: Mapping[str, Any], live: LiveContainer, present: Iterable[LiveNetwork],
                     ident: Mapping[str, Any], *, judged: bool, left: str = "") -> Action | None:
    """The recreate of a container not on a network it should be on (None when it is, or is not
    judged): `judged` when it runs, or is stopped and to be started; `left` (LEFT_STOPPED,
    LEFT_FINISHED) when it stays stopped, held by an operator or finished: judged only on the
    networks that are gone (it cannot start on them), and made again left stopped."""
    if not (judged or left) or spec.get("network_mode"):
        return None
    gone = set(gone_networks(live, present))  # (once: `lost_networks` would work it out again)
    lost = sorted(gone if left else (set(spec.get("networks") or {}) - set(live.networks)) | gone)
    if not lost:
        return None
    return Action("recreate", cause=network_cause(lost, left=left), stay_stopped=bool(left),
                  reasons=network_reasons(spec, live, gone), **ident)


def network_cause(lost: list[str], *, left: str = "") -> str:
    """The cause of a recreate for networks a container is not attached to (`left`: why the new
    one is left stopped, when it is)."""
    return (f"not connected to network{'s' if len(lost) > 1 else ''} {', '.join(lost)}"
            " (changed outside syncer): made again on its spec's networks" + left)


def network_reasons(spec: Mapping[str, Any], live: LiveContainer, gone: Iterable[str] = ()) -> tuple[Reason, ...]:
    """The networks the container is attached to (less those `gone`), and those its spec joins."""
    left = set(gone)
    return (Reason("networks", [n for n in live.networks if n not in left], sorted(spec.get("networks") or {})),)


def start_blocked(live: LiveContainer, present: Iterable[LiveNetwork]) -> str:
    """Why starting `live` would fail, in one line ("" when nothing known stops it): it is
    attached to a network removed since (Docker's own words: `network … not found`)."""
    gone = gone_networks(live, present)
    if not gone:
        return ""
    which = f"network{'s' if len(gone) > 1 else ''} {', '.join(gone)}, which {'were' if len(gone) > 1 else 'was'}"
    return (f"{live.name} is attached to {which} removed since it stopped: run `syncer apply` to make it"
            " again on its spec's networks")


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


def renamed_cause(live: LiveContainer, name: str, *, left: str = "") -> str:
    """The cause of the recreate of a container renamed by hand (`left`: why the new one is made
    and left stopped, when it is: held stopped by an operator, or finished)."""
    made = f"made again as {name}" + left
    return f"renamed to {live.name} outside syncer: {made} (the renamed container goes)"


def is_renamed(live: LiveContainer, desired: Iterable[ContainerSpec]) -> str:
    """The name of the replica `live` is, when that is not its own name ("" otherwise): a
    container renamed by hand (that replica's container under another name, or a second one)."""
    for c in desired:
        if c.definition == live.definition and c.replica == live.replica and c.name != live.name:
            return c.name
    return ""
