"""What the Engine API's list rows say, as syncer's records: a network, the networks a
container is attached to, and the address pools a network is made with. Pure: no calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncer.core.model import LiveNetwork


def live_network(row: Mapping[str, Any]) -> LiveNetwork:
    """A network as the engine's network list reports it."""
    pools = (row.get("IPAM") or {}).get("Config") or []
    return LiveNetwork(str(row.get("Id", "")), str(row.get("Name", "")), row.get("Labels") or {},
                       row.get("Internal") is True, tuple(sorted(str(p["Subnet"]) for p in pools if p.get("Subnet"))))


def endpoints(row: Mapping[str, Any]) -> dict[str, str]:
    """The networks a container list's row says it is attached to, by name, each with the id of
    the network its endpoint is on: a stopped container keeps the endpoint of a network removed
    since (and of one removed and made again: that name, another id)."""
    nets = (row.get("NetworkSettings") or {}).get("Networks") or {}
    return {str(name): str((e or {}).get("NetworkID") or "") for name, e in nets.items()}


def ipam_config(pools: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The Engine API's IPAM of a network made with syncer.yaml's pools (the default driver)."""
    keys = {"subnet": "Subnet", "gateway": "Gateway", "ip_range": "IPRange"}
    return {"Driver": "default", "Config": [{keys[k]: v for k, v in p.items() if k in keys} for p in pools]}
