"""Compose service fields whose value changes shape on the way to a syncer spec: ports,
volumes, resources (`mem_limit`, `deploy.resources`), `deploy`, `depends_on`
(networks: compose_networks; names, links and aliases: compose_names).
Each function returns the syncer value and the problems, as (key path, reason) pairs,
for what it could not carry; the caller locates them in the Compose file."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from syncer.stages import shortforms
from syncer.stages.compose_vars import fixed_only

Problems = list[tuple[tuple[Any, ...], str]]

_PORT = re.compile(r"^(?:(?P<ip>\[[^\]]*\]|[0-9.]+):)?(?:(?P<host>[0-9-]*):)?(?P<ctr>[0-9-]+)(?:/(?P<proto>[a-z]+))?$")


def volume_names(doc: dict[str, Any], project: str,
                 fixed: Mapping[str, str] | None = None) -> tuple[dict[str, str], Problems]:
    """The Docker name of each top-level volume as Compose names it — `<project>_<key>`, or its
    `name:` (`${COMPOSE_PROJECT_NAME}` read: `fixed`); an external one its key (or name) — so that
    syncer mounts the volumes a Compose deployment of this file filled; and what the declarations
    say that syncer does not carry."""
    names: dict[str, str] = {}
    problems: Problems = []
    for key, conf in (doc.get("volumes") or {}).items():
        conf = conf or {}
        external = conf.get("external")
        given = fixed_only(conf.get("name") or (external.get("name") if isinstance(external, dict) else None),
                           fixed or {})
        if isinstance(given, str) and "$" in given:
            problems.append((("volumes", key, "name"), f"volumes: {key}: name: a name with a variable is not carried"))
            continue
        names[str(key)] = str(given) if given else str(key) if external else f"{project}_{key}"
        for other in sorted(k for k in set(conf) - {"name", "external", "driver", "driver_opts", "labels"}
                            if not str(k).startswith("x-")):  # (an extension is the file's own, as Compose's)
            problems.append((("volumes", key, other), f"volumes: {key}: {other}: not carried (syncer makes a"
                                                      " volume with its driver, driver_opts and labels only)"))
    return names, problems


def volume_drivers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The driver, options and labels each top-level volume that has them is made with (an NFS
    share, a tmpfs, a backup tool's label), by its key: each service's entry for it carries
    them (the engine, or each Swarm node, makes the volume with them when it does not exist)."""
    out = {}
    for key, conf in (doc.get("volumes") or {}).items():
        conf = conf or {}
        labels = shortforms.labels(conf.get("labels") or {}, f"volumes.{key}.labels")
        if conf.get("external") or not (conf.get("driver_opts") or labels or conf.get("driver", "local") != "local"):
            continue
        out[str(key)] = {"driver": str(conf.get("driver") or "local"),
                         **({"driver_opts": dict(conf["driver_opts"])} if conf.get("driver_opts") else {}),
                         **({"labels": labels} if labels else {})}
    return out


def ports(value: list[Any]) -> tuple[list[Any], Problems]:
    """Short forms kept (port ranges spelled out one by one), long forms renamed."""
    out: list[Any] = []
    problems: Problems = []
    for i, p in enumerate(value):
        if isinstance(p, dict):
            long, why = _long_port(p)
            out.append(long)
            problems.extend(((i, k), r) for k, r in why)
        elif isinstance(p, (int, float)):
            out.append(str(p))
        else:
            spelled = _spell_range(str(p))
            if spelled is None:
                problems.append(((i,), f"'{p}': a port range whose sides differ in length"))
            else:
                out.extend(spelled)
    return out, problems


def _long_port(p: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    out: dict[str, Any] = {"container_port": _int(p.get("target"))}
    why = []
    if p.get("published") not in (None, ""):
        published = p["published"]
        if isinstance(published, str) and "-" in published and "${" not in published:
            why.append(("published", "a published port range in the long form; write the short form"))
        out["host_port"] = _int(published)
    for key in ("protocol", "host_ip"):
        if key in p:
            out[key] = p[key]
    if p.get("mode") == "host":  # (Swarm: the node's own port, not the routing mesh)
        out["mode"] = "host"
    for key in sorted(set(p) - {"target", "published", "protocol", "host_ip", "mode", "name", "app_protocol"}):
        why.append((key, "not a field of syncer's ports"))
    if p.get("mode", "ingress") not in ("ingress", "host"):
        why.append(("mode", "only the ingress and host modes exist"))
    return out, why


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _spell_range(text: str) -> list[str] | None:
    m = _PORT.match(text)
    if "${" in text or m is None or "-" not in text:
        return [text]
    ctr = _span(m.group("ctr"))
    host = _span(m.group("host")) if m.group("host") else None
    if host is not None and len(host) != len(ctr):
        return None
    prefix = f"{m.group('ip')}:" if m.group("ip") else ""
    suffix = f"/{m.group('proto')}" if m.group("proto") else ""
    return [f"{prefix}{host[i]}:{c}{suffix}" if host else f"{prefix}{c}{suffix}" for i, c in enumerate(ctr)]


def _span(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def split_volume(text: str) -> tuple[str, str, list[str]]:
    """`source:target:options` (source may be empty: an anonymous volume)."""
    parts = text.split(":")
    if len(parts) == 1:
        return "", parts[0], []
    return parts[0], parts[1], ",".join(parts[2:]).split(",") if len(parts) > 2 else []


def is_relative(source: str) -> bool:
    """A bind source relative to the Compose file (`./x`, `../x`, `.`)."""
    return source.startswith(".")


_RESOURCES = {"mem_limit": "memory", "cpus": "cpus", "pids_limit": "pids", "mem_reservation": "memory_reservation",
              "shm_size": "shm_size", "memswap_limit": "memory_swap", "cpu_shares": "cpu_shares"}


def resource_key(compose_key: str) -> str | None:
    """The `resources` field a top-level Compose service key sets, if any."""
    return _RESOURCES.get(compose_key)


_CONDITIONS = {"on-failure": "on-failure", "any": "always", "none": "no"}
# what `deploy:` gives the template's spec (the rest, `replicas`, goes to the definition)
DEPLOY_SPEC_FIELDS = ("mode", "endpoint_mode", "restart", "restart_policy", "placement", "service_labels", "update",
                      "rollback", "gpus")


def deploy(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Problems]:
    """`deploy:` as (resources, fields {replicas, job, mode, endpoint_mode, restart, restart_policy,
    placement, service_labels, update, rollback}, problems); the Swarm ones are spec fields a
    Swarm server reads (a container server, as `docker compose up`, leaves them); `job`: a
    job mode (`replicated-job`, `global-job`), which runs to completion."""
    resources: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    problems: Problems = []
    for key, v in value.items():
        if key == "replicas":
            extra["replicas"] = v
        elif key == "mode" and v in ("replicated", "global", "replicated-job", "global-job"):
            if v.endswith("-job"):  # runs to completion: a `kind: job` template
                extra["job"] = True
            if v.startswith("global"):  # one task on each node
                extra["mode"] = "global"
                if "replicas" in value:
                    problems.append(((key,), f"mode: {v} runs one task on each node: replicas cannot go with it"))
        elif key == "endpoint_mode" and v in ("vip", "dnsrr"):
            if v == "dnsrr":
                extra["endpoint_mode"] = v
        elif key == "resources":
            problems.extend(_deploy_resources(v or {}, resources, extra))
        elif key == "labels":  # the service's own (`docker stack deploy`); `compose up` leaves them
            extra["service_labels"] = v
        elif key == "placement":  # (what `docker stack deploy` reads; `compose up` ignores it, as a container server does)
            extra["placement"] = {k: v[k] for k in ("constraints", "preferences", "max_replicas_per_node") if v.get(k)}
            problems.extend(((key, other), "not a field of Compose's placement")
                            for other in sorted(set(v) - {"constraints", "preferences", "max_replicas_per_node"}))
        elif key == "update_config":  # (syncer's updates roll back on the first failed task)
            extra["update"] = _roll(key, v, "rollback", "syncer's Swarm updates roll back when a task fails", problems)
        elif key == "rollback_config":  # (a failed rollback pauses: syncer reports it, nothing loops)
            extra["rollback"] = _roll(key, v, "pause", "a rollback that fails pauses under syncer", problems)
        elif key == "restart_policy":  # the condition is `restart`; Swarm's pace is `restart_policy`
            policy = v or {}
            restart = _CONDITIONS.get(policy.get("condition", "any"), "always")
            if restart == "on-failure" and policy.get("max_attempts"):
                restart += f":{policy['max_attempts']}"
            extra["restart"] = restart
            pace = {k: policy[k] for k in ("delay", "window") if k in policy}
            if restart == "always" and policy.get("max_attempts"):  # (on-failure:N says it for the other)
                pace["max_attempts"] = policy["max_attempts"]
            extra["restart_policy"] = pace
            for other in sorted(set(policy) - {"condition", "max_attempts", "delay", "window"}):
                problems.append(((key, other), "not a field of Compose's restart_policy"))
        else:
            problems.append(((key,), "a Swarm setting outside syncer's container spec"))
    return resources, extra, problems


def _roll(key: str, value: dict[str, Any], action: str, why: str, problems: Problems) -> dict[str, Any]:
    """An `update_config` or `rollback_config` as the spec's `update` or `rollback`; stating what
    syncer does anyway (`failure_action: ACTION`, `max_failure_ratio: 0`) is no loss."""
    same = {"failure_action": action, "max_failure_ratio": 0}
    problems.extend(((key, other), f"not carried: {why}")
                    for other in sorted(set(value) - set(_PACE)) if other not in same or value[other] != same[other])
    return {k: value[k] for k in _PACE if k in value}


_PACE = ("parallelism", "delay", "order", "monitor")


def _deploy_resources(value: dict[str, Any], resources: dict[str, Any], extra: dict[str, Any]) -> Problems:
    problems: Problems = []
    for key, v in (value.get("limits") or {}).items():
        if key in ("memory", "cpus", "pids"):
            resources[key] = v
        else:
            problems.append((("resources", "limits", key), "not a field of syncer's resources"))
    for key, v in (value.get("reservations") or {}).items():
        if key in ("memory", "cpus"):  # (cpus: what Swarm's scheduler reserves; `compose up` leaves it)
            resources[f"{key}_reservation"] = v
        elif key == "devices":  # GPUs and the like: the spec's `gpus` (Docker's DeviceRequests, as Compose makes)
            gpus, more = _device_requests(v or [])
            extra["gpus"] = gpus
            problems.extend((("resources", "reservations", key, *where), why) for where, why in more)
        else:
            problems.append((("resources", "reservations", key), "syncer reserves memory and cpus only"))
    for key in sorted(set(value) - {"limits", "reservations"}):
        problems.append((("resources", key), "not a field of syncer's resources"))
    return problems


_DEVICE_KEYS = ("driver", "count", "device_ids", "capabilities", "options")


def _device_requests(value: list[Any]) -> tuple[list[dict[str, Any]], Problems]:
    """`reservations.devices` as `gpus` entries: one that names neither a count nor devices
    asks for all of them, as Compose reads it."""
    out: list[dict[str, Any]] = []
    problems: Problems = []
    for i, device in enumerate(value):
        if not isinstance(device, dict):
            problems.append(((i,), "expected a mapping (capabilities, driver, count, device_ids, options)"))
            continue
        problems.extend(((i, key), "not a field of a device request") for key in sorted(set(device) - set(_DEVICE_KEYS)))
        request = {k: device[k] for k in _DEVICE_KEYS if k in device}
        if "count" not in request and "device_ids" not in request:
            request["count"] = "all"
        out.append(request)
    return out, problems


_DEPENDS = {"service_started": "started", "service_healthy": "healthy",
            "service_completed_successfully": "completed"}


def depends_on(value: Any, skipped: Collection[str] = ()) -> tuple[Any, Problems]:
    """A list stays a list; conditions take syncer's names. A dependency Compose may go
    without (`required: false`) is left out when the import leaves its service out (`skipped`:
    its profiles), as Compose starts the service without it; else it is one like another."""
    if isinstance(value, list):
        return list(value), []
    out: dict[str, Any] = {}
    problems: Problems = []
    for name, conf in value.items():
        conf = conf or {}
        if conf.get("required") is False and name in skipped:
            continue
        condition = conf.get("condition", "service_started")
        if condition not in _DEPENDS:
            problems.append(((name, "condition"), f"unknown condition '{condition}'"))
            continue
        out[name] = {"condition": _DEPENDS[condition]}
        restart = conf.get("restart")
        if restart is None:
            continue
        try:  # a boolean, or its text (Compose reads "false" and `no` as false)
            on = shortforms.flag(restart, "restart") if isinstance(restart, bool | str) else None
        except shortforms.SpecError:
            on = None
        if on is None:
            problems.append(((name, "restart"), f"expected true or false, got {restart!r}"))
        elif on:
            out[name]["restart"] = True
    return out, problems


def known_dependencies(deps: Any, services: Collection[str], skipped: Mapping[str, str]) -> tuple[Any, Problems]:
    """`deps` (a list, or a mapping: `depends_on` read) without the services the import does not
    write — one left out by its profiles, one no file defines; Compose refuses both (`depends
    on undefined service`) — and a problem at each entry, said once."""
    problems: Problems = []
    for i, name in enumerate(deps):
        why = f"'{name}' is {skipped[name]}" if name in skipped else None if name in services else \
            f"'{name}' is not a service of this Compose application (Compose refuses it too)"
        if why:
            problems.append(((i,) if isinstance(deps, list) else (name,), why))
    dropped = {name for name in deps if name in skipped or name not in services}
    if isinstance(deps, list):
        return [d for d in deps if d not in dropped], problems
    return {k: v for k, v in deps.items() if k not in dropped}, problems


def completed_jobs(services: dict[str, Any]) -> set[str]:
    """Services some other service waits on with `service_completed_successfully`: jobs."""
    jobs = set()
    for svc in services.values():
        deps = (svc or {}).get("depends_on") if isinstance(svc, dict) else None
        if isinstance(deps, dict):
            for name, conf in deps.items():
                if (conf or {}).get("condition") == "service_completed_successfully":
                    jobs.add(name)
    return jobs

