"""Compose's networks as syncer's: the top-level ones as syncer.yaml's `networks:` (external,
internal, their address pools) and a service's `networks` as its spec's. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.stages.compose_fields import Problems


def top_level(doc: dict[str, Any]) -> tuple[dict[str, Any], Problems]:
    """The top-level `networks` as syncer.yaml's (`default` is the project network; an
    external one keyed by its Docker name, which syncer finds it by), and what they say that syncer does not carry;
    problems with their whole key path."""
    out: dict[str, Any] = {}
    problems: Problems = []
    named = external_names(doc)
    for name, conf in (doc.get("networks") or {}).items():
        conf = conf or {}
        where = ("networks", name)
        if conf.get("external") and (name != "default" or name in named):  # (default: the stack on network X)
            given = named.get(name, name)
            if not isinstance(given, str) or "$" in given:
                problems.append((where + ("name",), f"networks: {name}: name: a name with a variable is not carried"))
            elif given != name and given in (doc.get("networks") or {}):
                problems.append((where + ("name",), f"networks: {name}: name: {given} is another network's key"))
            else:
                out[given] = {"external": True}  # (syncer finds an external network by its key: the Docker name)
            continue
        made = _made(name, conf, where, problems)  # (the project network's, for `default`)
        if made or name != "default":
            out[name] = made
        if name == "default":
            if set(conf) - {"internal", "ipam"}:
                problems.append((where, "networks: default: syncer's project network takes no settings but"
                                        " internal and ipam"))
            continue
        for key in sorted(set(conf) - {"driver", "internal", "ipam"}):
            problems.append((where + (key,), f"networks: {name}: {key}: not carried (syncer makes plain bridge"
                                             " networks)"))
        if conf.get("driver", "bridge") != "bridge":
            problems.append((where + ("driver",), f"networks: {name}: driver: syncer makes bridge networks"))
    return out, problems


def external_names(doc: dict[str, Any]) -> dict[str, Any]:
    """Each external network's Docker name by its Compose key, when they differ (`name:`, or the
    older `external: {name: ...}`): Traefik's `proxy: {external: true, name: traefik_proxy}`."""
    out: dict[str, Any] = {}
    for key, conf in (doc.get("networks") or {}).items():
        external = (conf or {}).get("external")
        given = (conf or {}).get("name") or (external.get("name") if isinstance(external, dict) else None)
        if external and given not in (None, key):
            out[key] = given
    return out


def join_external_default(spec: dict[str, Any], name: Any) -> None:
    """`networks: default: {external: true, name: X}` (a stack put on an existing network, as
    behind a Traefik that made it): a service that joins Compose's default network joins X
    instead of a project network of its own (X among its networks, with the aliases it gave
    `default`, and `project_network: false`). Not one that lists networks without `default`,
    nor one on another's network or the host's."""
    if not isinstance(name, str) or spec.get("network_mode") or spec.get("project_network") is False:
        return
    nets = spec.get("networks")
    if isinstance(nets, dict):
        spec["networks"] = {**{k: v for k, v in nets.items() if k != "default"}, name: nets.get("default") or {}}
    else:
        spec["networks"] = [*(nets or []), name]
    spec["project_network"] = False


def _made(name: str, conf: dict[str, Any], where: tuple[Any, ...], problems: Problems) -> dict[str, Any]:
    """What syncer.yaml says of a network syncer makes: `internal`, and `ipam`'s pools."""
    made: dict[str, Any] = {"internal": True} if conf.get("internal") is True else {}
    if conf.get("ipam") is not None:
        pools, why = _ipam(conf["ipam"])
        if pools:
            made["ipam"] = {"config": pools}
        problems.extend((where + ("ipam", *path), f"networks: {name}: "
                         + ".".join(["ipam", *(str(p) for p in path if not isinstance(p, int))]) + f": {reason}")
                        for path, reason in why)
    return made


_POOL_KEYS = ("subnet", "gateway", "ip_range")


def _ipam(value: Any) -> tuple[list[dict[str, str]], Problems]:
    """Compose's `ipam` as syncer.yaml's: its pools (`config`) of the default driver."""
    problems: Problems = []
    if not isinstance(value, dict):
        return [], [((), "expected a mapping (config: [{subnet, gateway, ip_range}])")]
    if value.get("driver", "default") != "default":
        problems.append((("driver",), "syncer makes networks with Docker's default IPAM driver"))
    problems.extend(((key,), "not carried (syncer carries the pools of config:)")
                    for key in sorted(set(value) - {"driver", "config"}))
    pools: list[dict[str, str]] = []
    for i, pool in enumerate(value.get("config") or []):
        if not isinstance(pool, dict) or "subnet" not in pool:
            problems.append((("config", i), "a pool needs a subnet"))
            continue
        problems.extend((("config", i, key), "not carried (a pool is its subnet, gateway and ip_range)")
                        for key in sorted(set(pool) - set(_POOL_KEYS)))
        pools.append({key: str(pool[key]) for key in _POOL_KEYS if key in pool})
    return pools, problems


def networks(value: Any, declared: Mapping[str, Any], *, renamed: dict[str, Any] | None = None
             ) -> tuple[Any, Problems]:
    """Compose's `default` network is syncer's project network (every container joins it):
    it goes from the list, and stays in a mapping only to carry aliases (and an
    `ipv4_address` when the file gives `default` an `ipam`: the project network has pools of
    its own) — but beside `internal` networks only, where it stays: syncer leaves a container
    on internal networks alone off the project network. `declared`: the file's `networks:`.
    An external network is named by its Docker name (`renamed`: external_names)."""
    problems: Problems = []
    names = renamed or {}
    fixed_default = bool((declared.get("default") or {}).get("ipam"))
    internal = {n for n, conf in declared.items() if isinstance(conf, dict) and conf.get("internal") is True}
    others = [n for n in (value or []) if n != "default"]
    kept_default = "default" in (value or []) and bool(others) and set(others) <= set(internal)
    if isinstance(value, list):
        kept = [names.get(n, n) for n in others]
        return ((kept + ["default"] if kept_default else kept) or None), problems
    out: dict[str, Any] = {}
    for name, conf in (value or {}).items():
        conf = dict(conf or {})
        if name == "default":
            allowed = ("aliases", "ipv4_address") if fixed_default else ("aliases",)  # (in this order)
            for key in sorted(set(conf) - set(allowed)):
                problems.append(((name, key), "not carried on the default network (its subnet is Docker's"
                                              " choice: give it `ipam` in the Compose file's networks)"
                                 if key == "ipv4_address" else "not a field of syncer's networks"))
            if {k: conf[k] for k in allowed if conf.get(k)} or kept_default:
                out[name] = {k: conf[k] for k in allowed if conf.get(k)}
            continue
        for key in sorted(set(conf) - {"aliases", "ipv4_address"}):
            problems.append(((name, key), "not a field of syncer's networks"))
            conf.pop(key)
        out[names.get(name, name)] = conf
    return (out or None), problems
