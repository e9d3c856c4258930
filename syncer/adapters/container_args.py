"""A rendered spec as the docker SDK's create_container arguments: pure translation, no
I/O (the calls are in docker.py). Field names and units are the Engine API's: NanoCpus,
PidsLimit, StopTimeout in seconds, durations in nanoseconds, ExtraHosts as `host:ip`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncer.core.errors import SyncerError
from syncer.core.labels import reveal
from syncer.stages.shortforms import byte_size, made_with_driver, tmpfs_entry, volume_mount


class InvalidSpec(SyncerError):
    """A rendered value Docker cannot take (a memory size that is not one, say)."""


_DURATION_RE = re.compile(r"([0-9.]+)(ns|us|ms|s|m|h)")
_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def memory_bytes(value: Any) -> int:
    """`512m`, `256mb`, `1GiB` → bytes (`shortforms.byte_size`, as Docker reads them)."""
    found = byte_size(value)
    if found is None:
        raise InvalidSpec(f"invalid memory size {value!r}")
    return found


def duration_ns(value: Any) -> int:
    """`10s`, `1m30s` or seconds as an integer → nanoseconds."""
    if isinstance(value, (int, float)):
        return int(value * 10**9)
    total = sum(int(float(n) * _NS[u]) for n, u in _DURATION_RE.findall(str(value)))
    return total


def create_args(spec: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The docker-py create_container arguments for a rendered spec, secrets revealed in
    every string of it (a healthcheck's test, a command: wherever `${...}` stood) but the
    labels: syncer reads those back (observe, the API), so they keep the reference."""
    labels = dict(spec.get("labels", {}))
    spec = reveal_all(spec, secrets)
    host: dict[str, Any] = {}
    args: dict[str, Any] = {"image": spec["image"], "environment": dict(spec.get("env", {})), "detach": True}
    for key in ("command", "entrypoint"):
        if key in spec:
            args[key] = list(spec[key])
    for key in ("user", "working_dir", "hostname", "domainname", "stop_signal", "platform"):
        if spec.get(key):
            args[key] = spec[key]
    for key in ("tty", "stdin_open"):
        if key in spec:
            args[key] = bool(spec[key])
    if labels:
        args["labels"] = labels
    if "stop_grace_period" in spec:
        args["stop_timeout"] = stop_seconds(spec["stop_grace_period"])
    _ports_args(spec.get("ports", []), args, host)
    _expose_args(spec.get("expose", []), args)
    _volume_args(spec.get("volumes", []), args, host)
    _resource_args(spec, host)
    _host_args(spec, host)
    if "healthcheck" in spec:
        args["healthcheck"] = _healthcheck_args(spec["healthcheck"])
    _network_args(spec, args, host)
    args["host_config"] = host
    return args


def _network_args(spec: Mapping[str, Any], args: dict[str, Any], host: dict[str, Any]) -> None:
    """`network_mode` as given; else the first network (by name) at create, with its aliases
    (apply connects the others before the start)."""
    if spec.get("network_mode"):
        host["network_mode"] = spec["network_mode"]
        return
    networks = spec.get("networks") or {}
    if not networks:
        return
    first = sorted(networks)[0]
    opts = networks[first] or {}
    endpoint: dict[str, Any] = {"Aliases": list(opts.get("aliases") or [])}
    if opts.get("ipv4_address"):
        endpoint["IPAMConfig"] = {"IPv4Address": opts["ipv4_address"]}
    host["network_mode"] = first
    args["networking_config"] = {"EndpointsConfig": {first: endpoint}}


def reveal_all(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every secret reference in every string (keys included) revealed."""
    if isinstance(value, str):
        return reveal(value, secrets)
    if isinstance(value, Mapping):
        return {reveal_all(k, secrets): reveal_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal_all(v, secrets) for v in value]
    return value


def stop_seconds(value: Any) -> int:
    """`stop_grace_period` (`1m30s`, or seconds) as whole seconds, Docker's StopTimeout."""
    return int(duration_ns(value) // 10**9)


# spec field -> HostConfig argument, copied as they are
_HOST_AS_IS = {"cap_add": "cap_add", "cap_drop": "cap_drop", "security_opt": "security_opt",
               "dns": "dns", "dns_search": "dns_search", "dns_opt": "dns_opt", "group_add": "group_add",
               "extra_hosts": "extra_hosts",
               "sysctls": "sysctls", "pid": "pid_mode", "ipc": "ipc_mode", "runtime": "runtime"}


def _host_args(spec: Mapping[str, Any], host: dict[str, Any]) -> None:
    for key, arg in _HOST_AS_IS.items():
        if spec.get(key):
            host[arg] = spec[key]
    for key in ("init", "privileged"):
        if key in spec:
            host[key] = bool(spec[key])
    if "read_only" in spec:
        host["read_only"] = bool(spec["read_only"])
    if spec.get("tmpfs"):
        host["tmpfs"] = dict(tmpfs_entry(t) for t in spec["tmpfs"])
    if spec.get("devices"):
        host["devices"] = [f"{d['source']}:{d['target']}:{d['permissions']}" for d in spec["devices"]]
    if spec.get("ulimits"):
        host["ulimits"] = [{"Name": n, "Soft": u["soft"], "Hard": u["hard"]} for n, u in spec["ulimits"].items()]
    if spec.get("logging"):
        log = spec["logging"]
        host["log_config"] = {"Type": log.get("driver", "json-file"), "Config": dict(log.get("options", {}))}
    if spec.get("gpus"):
        host["device_requests"] = [_device_request(g) for g in spec["gpus"]]


def _device_request(gpu: Mapping[str, Any]) -> dict[str, Any]:
    count = gpu.get("count")
    return {"Driver": gpu.get("driver", ""), "Count": -1 if count == "all" else int(count or 0),
            "DeviceIDs": list(gpu.get("device_ids", [])), "Capabilities": [list(gpu.get("capabilities", ["gpu"]))],
            "Options": dict(gpu.get("options", {}))}


def _ports_args(ports: list[Mapping[str, Any]], args: dict[str, Any], host: dict[str, Any]) -> None:
    if not ports:
        return
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, list[Any]] = {}
    for p in ports:
        port = (p["container_port"], p.get("protocol", "tcp"))
        if port not in exposed:
            exposed.append(port)
        hp = p.get("host_port")
        bindings.setdefault(f"{port[0]}/{port[1]}", []).append((p["host_ip"], hp) if p.get("host_ip") else hp)
    args["ports"] = exposed
    # one container port published on several host ports (`8080:80`, `8081:80`) keeps them all
    host["port_bindings"] = {key: found[0] if len(found) == 1 else found for key, found in bindings.items()}


def _expose_args(expose: list[str], args: dict[str, Any]) -> None:
    """`expose` (`PORT/PROTO`, as render leaves it) joins the published ports in ExposedPorts,
    each once; nothing is bound on the host for it."""
    exposed = list(args.get("ports", []))
    seen = set(exposed)
    for entry in expose:
        port, _, protocol = entry.partition("/")
        key = (int(port), protocol or "tcp")
        if key not in seen:
            seen.add(key)
            exposed.append(key)
    if exposed:
        args["ports"] = exposed


def _volume_args(volumes: list[Mapping[str, Any]], args: dict[str, Any], host: dict[str, Any]) -> None:
    if not volumes:
        return
    binds, mounts = [], []
    for v in volumes:
        if made_with_driver(v):  # a Mount: the engine makes the volume with them (if absent)
            mounts.append(volume_mount(v))
            continue
        source = v.get("host_path") or v["name"]
        label = f",{v['selinux']}" if v.get("selinux") else ""  # SELinux relabelling: z shared, Z private
        label += f",{v['propagation']}" if v.get("propagation") else ""  # a bind's (rslave: host mounts appear)
        binds.append(f"{source}:{v['mount_path']}:{'ro' if v.get('read_only') else 'rw'}{label}")
    args["volumes"] = [v["mount_path"] for v in volumes if not made_with_driver(v)]
    host["binds"] = binds
    if mounts:
        host["mounts"] = mounts



def _resource_args(spec: Mapping[str, Any], host: dict[str, Any]) -> None:
    res = spec.get("resources", {})
    if "memory" in res:
        host["mem_limit"] = memory_bytes(res["memory"])
    if "cpus" in res:
        host["nano_cpus"] = int(float(res["cpus"]) * 10**9)
    if "memory_reservation" in res:
        host["mem_reservation"] = memory_bytes(res["memory_reservation"])
    if "memory_swap" in res:  # (-1: swap without limit)
        host["memswap_limit"] = memory_bytes(res["memory_swap"])
    if "shm_size" in res:
        host["shm_size"] = memory_bytes(res["shm_size"])
    if "pids" in res:
        host["pids_limit"] = int(res["pids"])
    if "cpu_shares" in res:
        host["cpu_shares"] = int(res["cpu_shares"])
    restart = spec.get("restart")
    if restart and restart != "no":
        name, _, count = restart.partition(":")
        host["restart_policy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}


def _healthcheck_args(hc: Mapping[str, Any]) -> dict[str, Any]:
    """Docker's Healthcheck; without a `test`, the engine keeps the image's probe and takes
    the timings given here."""
    test = list(hc.get("test", []))
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD", *test]
    out: dict[str, Any] = {"test": test or None}
    for key, api_key in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in hc:
            out[api_key] = duration_ns(hc[key])
    if "retries" in hc:
        out["retries"] = int(hc["retries"])
    if "start_interval" in hc:
        # API 1.44+: docker-py does not know it, so Engine.create adds it to the config
        out["start_interval"] = duration_ns(hc["start_interval"])
    return out
