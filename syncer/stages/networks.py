"""The project network and the networks of syncer.yaml: their normal form in a rendered
spec, and the `network create` / `network remove` actions of a plan. Pure.

Every container (unless it sets `network_mode`) joins the project network, named after
the project, with its definition name as a DNS alias; so containers find each other by
definition name and two projects on one host never see each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from syncer.core import labels as L
from syncer.core.model import (
    Action,
    ContainerSpec,
    Desired,
    LiveContainer,
    LiveNetwork,
    Observed,
    Reason,
)

Declared = Mapping[str, bool]  # syncer.yaml `networks:` name → external
Pools = tuple[Mapping[str, str], ...]  # a network's address pools: `{subnet, gateway, ip_range}`


def normalise(spec: Mapping[str, Any], *, project: str, definition: str, declared: Declared,
              internal: Iterable[str] = ()) -> dict[str, Any]:
    """`networks` as `{engine name: {aliases, ipv4_address}}`, the project network in but for
    a container that says `project_network: false`, or that joins `internal` networks only
    (syncer.yaml's names: it is to have no route out, and the project network has one); none
    at all with `network_mode` (the container then shares another's stack)."""
    out = dict(spec)
    if out.get("network_mode"):
        out.pop("networks", None)
        return out
    given = out.get("networks") or []
    # off the project network: by `project_network: false`, or on `internal` networks only
    closed = out.get("project_network") is False or (bool(given) and {str(n) for n in given} <= set(internal))
    wanted: dict[str, Mapping[str, Any]] = {} if closed else {L.DEFAULT_NETWORK: {}}
    if isinstance(given, Mapping):
        wanted.update({str(k): dict(v or {}) for k, v in given.items()})
    else:
        wanted.update({str(n): {} for n in given})
    networks: dict[str, Any] = {}
    for name, opts in wanted.items():
        entry: dict[str, Any] = {"aliases": sorted({definition, *(str(a) for a in opts.get("aliases") or [])})}
        if opts.get("ipv4_address"):
            entry["ipv4_address"] = str(opts["ipv4_address"])
        networks[L.network_name(project, name, external=declared.get(name, False))] = entry
    out["networks"] = networks
    return out


def unknown(spec: Mapping[str, Any], declared: Declared) -> Iterable[tuple[tuple[Any, ...], str]]:
    """(path, name) of each network a spec names that syncer.yaml does not declare."""
    given = spec.get("networks") or []
    names = list(given) if isinstance(given, (list, Mapping)) else []
    for i, name in enumerate(names):
        if isinstance(name, str) and "${" not in name and name != L.DEFAULT_NETWORK and name not in declared:
            yield (("networks", name) if isinstance(given, Mapping) else ("networks", i)), name


def wanted(desired: Desired, server: str) -> set[str]:
    """Engine names of the networks the containers on `server` join."""
    return {n for c in desired.containers if c.server == server for n in c.spec.get("networks") or {}}


def external_names(project: str, declared: Declared) -> set[str]:
    """Engine names of the networks that must exist and are never created or removed."""
    return {L.network_name(project, n, external=True) for n, ext in declared.items() if ext}


def missing_external(desired: Desired, observed: Observed, declared: Declared) -> list[tuple[str, str]]:
    """(server, declared name) of each external network a container needs that is absent."""
    out = []
    for server, state in sorted(observed.servers.items()):
        if not state.reachable:
            continue  # its own `unreachable` actions say so
        present = {n.name for n in state.networks}
        needed = wanted(desired, server)
        for name, external in sorted(declared.items()):
            if external and name in needed and name not in present:
                out.append((server, name))
    return out


def internal_names(project: str, internal: Iterable[str]) -> frozenset[str]:
    """Engine names of the networks syncer.yaml makes `internal: true` (no route out of the host)."""
    return frozenset(L.network_name(project, n) for n in internal)


def actions(desired: Desired, observed: Observed, *, declared: Declared, prune: bool,
            internal: Iterable[str] = (), ipam: Mapping[str, Pools] = {}) -> list[Action]:
    """`network create` for each needed network that is absent (`internal`: syncer.yaml's
    names of those made without a route out; `ipam`: its names → their address pools, which
    the action carries as its `ipam` reason); a `conflict` for each needed one whose
    Internal, or subnets, are not what syncer.yaml says; with prune, `network remove` for
    each of the project's networks that no container will use any more. (On a Swarm
    server, an overlay takes Swarm's own address pools: `ipam` is not read there.)"""
    out: list[Action] = []
    external = external_names(desired.project, declared)
    closed = internal_names(desired.project, internal)
    pools = {L.network_name(desired.project, n): tuple(p) for n, p in ipam.items()}
    for server, state in sorted(observed.servers.items()):
        if not state.reachable:
            continue  # what exists there is unknown: nothing is planned
        need = wanted(desired, server) - external
        ours = {n.name: n for n in state.networks if n.labels.get(L.PROJECT) == desired.project}
        present = {n.name: n for n in state.networks}
        fixed = pools if state.kind != "swarm" else {}
        for name in sorted(need - set(present)):
            cause = "network absent" + (" (internal: no route out of the host)" if name in closed else "")
            subnets = ", ".join(p["subnet"] for p in fixed.get(name, ()))
            out.append(Action("network create", server, "", name, 0, cause + (f" (subnet {subnets})" if subnets else ""),
                              reasons=(Reason("ipam", None, [dict(p) for p in fixed[name]]),) if subnets else ()))
        out.extend(_mismatch(server, present[n], n in closed) for n in sorted(need & set(present))
                   if present[n].internal != (n in closed))
        out.extend(_moved(server, present[n], fixed[n]) for n in sorted(need & set(present) & set(fixed))
                   if present[n].subnets != tuple(sorted(p["subnet"] for p in fixed[n])))
        if not prune:
            continue
        staying = _staying(desired, server, state.managed)
        for name in sorted(set(ours) - need):
            if not any(name in c.networks for c in staying):
                out.append(Action("network remove", server, "", name, 0, "no container of the project uses it",
                                  container_id=ours[name].id))
    return out


def _mismatch(server: str, live: LiveNetwork, internal: bool) -> Action:
    """Docker cannot change a network's Internal flag in place: the network must go (once no
    container uses it) for the next apply to make it as syncer.yaml says. A conflict, as for
    a container whose name is held: syncer does not tear down a network containers still use,
    and an apply reports it as not done (exit 1) until someone removes it."""
    now, says = ("internal", "not internal") if live.internal else ("not internal", "internal")
    return Action("conflict", server, "", live.name, 0,
                  f"the network is {now} but syncer.yaml makes it {says}: Docker cannot change that in place."
                  " Remove it once no container uses it (take the definitions off it and `syncer apply`, or"
                  f" `docker rm -f` its containers and `docker network rm {live.name}`), then apply again;"
                  " until then nothing is done to it",
                  reasons=(Reason("internal", live.internal, internal),), container_id=live.id)


def _moved(server: str, live: LiveNetwork, pools: Pools) -> Action:
    """Docker cannot change a network's subnets in place either: a conflict, as `_mismatch`."""
    want = sorted(p["subnet"] for p in pools)
    return Action("conflict", server, "", live.name, 0,
                  f"the network's subnets are {', '.join(live.subnets) or 'what Docker chose'} but syncer.yaml gives it"
                  f" {', '.join(want)}: Docker cannot change that in place. Remove it once no container uses it"
                  f" (take the definitions off it and `syncer apply`, or `docker rm -f` its containers and"
                  f" `docker network rm {live.name}`), then apply again; until then nothing is done to it",
                  reasons=(Reason("subnets", list(live.subnets), want),), container_id=live.id)


def pools_of(raw: Mapping[str, Any] | None) -> dict[str, Pools]:
    """syncer.yaml's `networks:` → the address pools (`ipam.config`) of those that give them."""
    return {str(name): tuple(opts["ipam"]["config"]) for name, opts in (raw or {}).items()
            if isinstance(opts, Mapping) and isinstance(opts.get("ipam"), Mapping) and not opts.get("external")}


def _staying(desired: Desired, server: str, managed: Iterable[LiveContainer]) -> list[LiveContainer]:
    """Live containers this plan keeps as they are (a recreated one leaves its networks)."""
    kept = {(c.name, c.spec_hash) for c in desired.containers if c.server == server}
    return [c for c in managed if (c.name, c.labels.get(L.SPEC_HASH, "")) in kept]


def sharers(desired: Iterable[ContainerSpec], definition: str) -> set[str]:
    """The containers (of other definitions) that share the network of one of `definition`'s
    (`network_mode: container:X`): what a plan of that definition alone must judge too."""
    desired = list(desired)
    mine = {c.name for c in desired if c.definition == definition}
    return {c.name for c in desired if c.definition != definition and L.shared_with(c.spec.get("network_mode")) in mine}


def shared(actions: list[Action], desired: Iterable[ContainerSpec], managed: Iterable[LiveContainer]) -> list[Action]:
    """`network_mode: container:X` joins the network namespace X has when it starts: a
    container made again under X's name, or X started again (Docker gives it a new namespace),
    leaves a running sharer with the old one: a loopback only (Compose recreates it with X).
    Such a sharer is recreated, after X (render made X a dependency)."""
    live = {c.name: c for c in managed}
    replaced = {a.container for a in actions if a.action in ("create", "recreate")}
    started = {a.container for a in actions if a.action == "start"}
    targets = {c.name: L.shared_with(c.spec.get("network_mode")) for c in desired}
    out = []
    for a in actions:
        target, current = targets.get(a.container, ""), live.get(a.container)
        # (X outside this plan's scope — a heal of the sharer alone — is not judged)
        if a.action in ("noop", "start") and target in targets and current is not None:
            joined = L.shared_with(current.network_mode)
            now = live.get(target)
            why = ""
            if target in replaced:
                why = f"it shares the network of {target}, which is made again"
            elif joined and (now is None or not now.id.startswith(joined)):
                why = f"it shares the network of a {target} container that is gone"
            elif a.action == "noop" and target in started:
                why = f"it shares the network of {target}, which starts again"
            elif a.action == "noop" and now is not None and instant(now.started_at) > instant(current.started_at):
                why = f"it shares the network of {target}, which started again after it (a new network)"
            if why:
                a = replace(a, action="recreate", cause=why)
        out.append(a)
    return out


def instant(stamp: str) -> tuple[str, str]:
    """Docker's RFC 3339 time (nanoseconds, trailing zeros cut) in an order that compares."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return whole, fraction.ljust(9, "0")
