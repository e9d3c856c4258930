"""The spec fields a Swarm service's tasks take as a container would (the ContainerSpec's
process settings: capabilities, sysctls, flags, ulimits, DNS, /etc/hosts, tmpfs), and those
no service has, which the plan refuses for a definition on a Swarm server. Pure; the spec is
a rendered one (stages/shortforms made `dns`, `dns_search` and `tmpfs` lists)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from syncer.core.model import ContainerSpec, Desired, Observed
from syncer.core.versions import api_key
from syncer.stages.shortforms import byte_size, tmpfs_entry

JOB_API = (1, 41)  # the first engine API with Swarm's job modes (Docker 20.10)
START_INTERVAL_API = (1, 44)  # the first with a healthcheck's StartInterval (Docker 25)

# spec field -> ContainerSpec field, copied as they are (lists and mappings of strings)
_AS_IS = {"cap_add": "CapabilityAdd", "cap_drop": "CapabilityDrop", "sysctls": "Sysctls", "stop_signal": "StopSignal",
          "group_add": "Groups"}
_FLAGS = {"init": "Init", "read_only": "ReadOnly", "tty": "TTY", "stdin_open": "OpenStdin"}
# what a Swarm service has no setting for (the plan refuses a definition that asks for it)
NOT_ON_SWARM = ("privileged", "devices", "pid", "ipc", "runtime", "gpus", "network_mode", "security_opt",
                "domainname", "platform")
_NOT_ON_SWARM_RESOURCES = ("memory_swap", "shm_size", "cpu_shares")


def process(spec: Mapping[str, Any], out: dict[str, Any]) -> None:
    """The process settings a service's tasks take as a container would: capabilities,
    sysctls, flags, ulimits, DNS and /etc/hosts (Swarm writes `IP host`, Docker `host:IP`)."""
    for key, api in _AS_IS.items():
        if spec.get(key):
            out[api] = {k: text(v) for k, v in spec[key].items()} if key == "sysctls" else spec[key]
    for key, api in _FLAGS.items():
        if key in spec:
            out[api] = bool(spec[key])
    if spec.get("ulimits"):
        out["Ulimits"] = [{"Name": n, "Soft": u["soft"], "Hard": u["hard"]} for n, u in spec["ulimits"].items()]
    dns = {api: spec.get(key) or [] for key, api in (("dns", "Nameservers"), ("dns_search", "Search"),
                                                     ("dns_opt", "Options"))}
    if any(dns.values()):
        out["DNSConfig"] = {k: v for k, v in dns.items() if v}
    if spec.get("extra_hosts"):
        out["Hosts"] = [f"{ip} {host}" for host, _, ip in (str(e).partition(":") for e in spec["extra_hosts"])]


def text(value: Any) -> str:  # a value the API wants as a string (`true`, not Python's `True`)
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _tmpfs_options(entry: str) -> tuple[str, dict[str, Any], list[str]]:
    """`/run` or `/run:size=64m,mode=1777`: its path, the TmpfsOptions Swarm takes (size and an
    octal mode), and the options it cannot take (others, or a size or mode it cannot read)."""
    path, options = tmpfs_entry(entry)
    taken: dict[str, Any] = {}
    rest = []
    for option in (o for o in options.split(",") if o):
        key, _, value = option.partition("=")
        if key == "size" and (bytes_ := byte_size(value)):
            taken["SizeBytes"] = bytes_
        elif key == "mode" and re.fullmatch(r"[0-7]{1,4}", value):
            taken["Mode"] = int(value, 8)
        else:
            rest.append(option)
    return path, taken, rest


def tmpfs_mount(entry: str) -> dict[str, Any]:
    path, taken, _ = _tmpfs_options(entry)
    return {"Type": "tmpfs", "Target": path, **({"TmpfsOptions": taken} if taken else {})}


def not_on_swarm(spec: Mapping[str, Any]) -> list[str]:
    """The fields of a rendered spec that a Swarm service cannot carry (none: it can run there)."""
    out = [key for key in NOT_ON_SWARM if spec.get(key) not in (None, False, [], {}, "")]
    out += [f"resources.{key}" for key in _NOT_ON_SWARM_RESOURCES if key in (spec.get("resources") or {})]
    out += [f"tmpfs option(s) {','.join(rest)} of {path} (a size and an octal mode only)"
            for path, _, rest in map(_tmpfs_options, spec.get("tmpfs") or []) if rest]
    nets = spec.get("networks")
    out += [f"networks.{n}.ipv4_address" for n, o in (nets.items() if isinstance(nets, Mapping) else ())
            if (o or {}).get("ipv4_address")]
    out += [f"selinux of the volume at {v['mount_path']}" for v in spec.get("volumes", []) if v.get("selinux")]
    # a service publishes on every address of each node (the mesh, or mode: host): a port bound to
    # one address (127.0.0.1 to keep it local) would be open to all, so it is refused, not dropped
    out += [f"port {p['host_port']} bound to {p['host_ip']} (a service publishes on every address)"
            for p in spec.get("ports", []) if p.get("host_port") is not None
            and p.get("host_ip") not in (None, "", "0.0.0.0", "::")]
    if spec.get("endpoint_mode") == "dnsrr":  # (Swarm: "port published with ingress mode can't be used with dnsrr")
        out += [f"port {p['host_port']} through the routing mesh with endpoint_mode: dnsrr (publish it with mode: host)"
                for p in spec.get("ports", []) if p.get("host_port") is not None and p.get("mode") != "host"]
    return out


def jobs_unsupported(desired: Desired, observed: Observed) -> list[tuple[str, str, str]]:
    """(server, definition, API version) of each job wanted on a Swarm manager whose engine
    has no job modes (API < 1.41, Docker < 20.10; an engine that did not say is refused too)."""
    return _too_old(desired, observed, JOB_API, lambda c, kind: c.is_job and kind == "swarm", unknown=True)


def start_interval_unsupported(desired: Desired, observed: Observed) -> list[tuple[str, str, str]]:
    """(server, definition, API version) of each healthcheck with `start_interval` wanted on an
    engine older than API 1.44 (Docker 25), which would drop it without a word (Compose refuses
    it there too)."""
    return _too_old(desired, observed, START_INTERVAL_API,
                    lambda c, kind: "start_interval" in (c.spec.get("healthcheck") or {}), unknown=False)


def _too_old(desired: Desired, observed: Observed, since: tuple[int, ...],
             wants: Callable[[ContainerSpec, str], bool], *, unknown: bool) -> list[tuple[str, str, str]]:
    """(server, definition, API version) of each container that `wants` a feature its
    reachable server's engine has only from API `since` on (`unknown`: refused when the engine
    did not say its version)."""
    out = []
    for c in desired.containers:
        state = observed.servers.get(c.server)
        if state is None or not state.reachable or not wants(c, state.kind) or (not state.api_version and not unknown):
            continue
        if api_key(state.api_version) < since:
            out.append((c.server, c.definition, state.api_version or "unknown"))
    return out


def fields_unsupported(desired: Desired, observed: Observed) -> list[tuple[str, str, list[str]]]:
    """(server, definition, fields) of each definition wanted on a Swarm manager with fields
    a service cannot carry: refused at plan time rather than left out of the service."""
    out = []
    for c in desired.containers:
        state = observed.servers.get(c.server)
        if state is not None and state.kind == "swarm" and (fields := not_on_swarm(c.spec)):
            out.append((c.server, c.definition, fields))
    return out


# what Swarm's scheduler reads in a constraint (its `key op value`): an attribute name, and a
# value of letters, digits and a few signs (none that reads as a future operator)
_ATTRIBUTE = re.compile(r"[a-z_][a-z0-9_.-]+", re.IGNORECASE | re.ASCII)
_VALUE = re.compile(r"[a-z0-9:_ \t\n\f\r.*()?+\[\]\\^$|/-]+", re.IGNORECASE | re.ASCII)  # (Go's \s)


_KEYS = ("node.id", "node.hostname", "node.ip", "node.role", "node.platform.os", "node.platform.arch")
_LABELS = ("node.labels.", "engine.labels.")


def constraint_problem(constraint: str) -> str | None:
    """Why Swarm would refuse a placement constraint (None: it reads it), said before any
    service is created rather than as the manager's error halfway through an apply."""
    for op in ("==", "!="):  # (Swarm's order: `a==b!=c` is `a` == `b!=c`)
        if op in constraint:
            attribute, _, value = (part.strip() for part in constraint.partition(op))
            if not value:
                return f"{constraint!r}: no value after {op}"
            if not _ATTRIBUTE.fullmatch(attribute):
                return f"{constraint!r}: {attribute!r} is no node attribute (node.role, node.labels.NAME, ...)"
            if not _VALUE.fullmatch(value):
                return f"{constraint!r}: Swarm takes no value {value!r} (letters, digits and :-_.*()?+[]\\^$|/ only)"
            # Swarm reads any other key, and then no node ever matches: the tasks wait for ever
            key = attribute.lower()
            if key not in _KEYS and not key.startswith(_LABELS):
                return (f"{constraint!r}: {attribute!r} is no node attribute ({', '.join(_KEYS)}, node.labels.NAME"
                        " or engine.labels.NAME)")
            if key == "node.role" and value.lower() not in ("manager", "worker"):
                return f"{constraint!r}: a node's role is manager or worker"
            return None
    return f"{constraint!r}: a constraint is ATTRIBUTE == VALUE or ATTRIBUTE != VALUE (node.role == manager)"
