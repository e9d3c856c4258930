"""What the Compose comparison looks at in one container, normalised so that a container
made by syncer and one made by Docker Compose from the same service compare equal."""

from __future__ import annotations

import io
import json
import re
import tarfile
from typing import Any

FIELDS = ("image", "command", "entrypoint", "env", "ports", "exposed", "mounts", "labels", "healthcheck",
          "restart", "network_mode", "aliases", "addresses", "internal", "memory", "sysctls", "tmpfs_modes", "groups",
          "dns_options")
_OWN_LABELS = ("com.docker.compose.", "syncer.")


def facts(api: Any, inspect: dict[str, Any], *, service: str, network_prefix: str, project_network: str,
          names: dict[str, str], skip_mounts: set[str],
          linked_as: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """The compared fields of one inspected container. `network_prefix` turns a network's
    Docker name into its Compose key (`<project>_`); `project_network` is the one that
    stands for Compose's `default`; `names` maps container ids to service names; `linked_as`
    (network name → aliases) the names other containers link to this one by."""
    cfg, host = inspect["Config"], inspect["HostConfig"]
    return {
        "image": inspect["Image"],
        "command": cfg.get("Cmd"),
        "entrypoint": cfg.get("Entrypoint"),
        "env": sorted(cfg.get("Env") or []),
        "ports": _ports(host.get("PortBindings") or {}),
        "exposed": _exposed(cfg.get("ExposedPorts") or {}),  # the published ones, `expose`, the image's
        "mounts": _mounts(inspect, skip_mounts, network_prefix),
        "labels": {k: v for k, v in (cfg.get("Labels") or {}).items() if not k.startswith(_OWN_LABELS)},
        "healthcheck": cfg.get("Healthcheck") or None,
        "restart": _restart(host.get("RestartPolicy") or {}),
        "network_mode": _network_mode(host.get("NetworkMode") or "", names),
        "aliases": _aliases(inspect, service, network_prefix, project_network, linked_as or {}),
        "addresses": {"default" if name == project_network else name.removeprefix(network_prefix):
                      (net.get("IPAMConfig") or {}).get("IPv4Address")
                      for name, net in (inspect["NetworkSettings"].get("Networks") or {}).items()
                      if (net.get("IPAMConfig") or {}).get("IPv4Address")},  # the fixed ones (ipv4_address)
        "memory": {k: host.get(k) for k in ("Memory", "MemoryReservation", "MemorySwap", "ShmSize", "NanoCpus",
                                            "PidsLimit", "CpuShares")},
        "groups": host.get("GroupAdd") or [],
        "dns_options": host.get("DnsOptions") or [],
        "internal": sorted(n.removeprefix(network_prefix) for n in inspect.get("_internal", [])),
        "sysctls": host.get("Sysctls") or {},
        "tmpfs_modes": inspect.get("_tmpfs_modes", {}),
    }


def _tmpfs_modes(api: Any, inspect: dict[str, Any]) -> dict[str, str]:
    """The permissions of each tmpfs as the running container sees them (Compose sends a long
    form's as a mount's TmpfsOptions, syncer as HostConfig.Tmpfs options)."""
    paths = set(inspect["HostConfig"].get("Tmpfs") or {}) | {
        m["Target"] for m in inspect["HostConfig"].get("Mounts") or [] if m.get("Type") == "tmpfs"}
    if not paths or not inspect["State"].get("Running"):
        return {}
    run = api.exec_create(inspect["Id"], ["stat", "-c", "%n %a", *sorted(paths)])
    return dict(line.split(" ", 1) for line in api.exec_start(run["Id"]).decode().splitlines() if " " in line)


def _ports(bindings: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((port, b.get("HostIp") or "0.0.0.0", b.get("HostPort") or "")
                  for port, bs in bindings.items() for b in (bs or []))


def _exposed(ports: dict[str, Any]) -> list[str]:
    """ExposedPorts as the engine reads them: Compose sends `expose` as written ("3000",
    "7000-7001"), the docker CLI and syncer one `PORT/PROTO` per port (tcp unless written)."""
    out = set()
    for key in ports:
        span, _, proto = key.partition("/")
        first, _, last = span.partition("-")
        out |= {f"{p}/{proto or 'tcp'}" for p in range(int(first), int(last or first) + 1)}
    return sorted(out)


def _mounts(inspect: dict[str, Any], skip: set[str], prefix: str) -> list[tuple[str, ...]]:
    """(destination, type[, rw or ro (a tmpfs's mode is `tmpfs_modes`)][, volume and its options |
    a bind's SELinux label, host path and propagation]) of each mount; a named volume's name without its project's prefix (both name it `<project>_<volume>`). An
    anonymous one has none: Compose's has a
    random name, syncer names it `<container>_<n>` (so that it outlives a recreate)."""
    anonymous = re.compile(r"[0-9a-f]{64}|" + re.escape(inspect["Name"].lstrip("/")) + r"_[0-9]+")
    found: set[tuple[str, ...]] = {
        (m["Destination"], m["Type"], *([] if m["Type"] == "tmpfs" else ["rw" if m.get("RW") else "ro"]),
         *([_project_relative(m["Name"], prefix),  # and the options it was made with
                                          json.dumps(inspect["_volume_options"].get(m["Name"]), sort_keys=True)]
                                         if m["Type"] == "volume" and not anonymous.fullmatch(m["Name"]) else []),
         *(sorted(set(m.get("Mode", "").split(",")) & {"z", "Z"}) if m["Type"] == "bind" else []),
         *([m["Source"], m.get("Propagation") or ""] if m["Type"] == "bind" else []))  # the host directory both mount
        for m in inspect.get("Mounts") or []}
    found |= {(path, "tmpfs") for path in (inspect["HostConfig"].get("Tmpfs") or {})}
    # a bind mount Compose makes of a file, or of a directory, syncer writes as files
    return sorted(m for m in found if m[0] not in skip and not any(p.startswith(m[0] + "/") for p in skip))


def _project_relative(name: str, prefix: str) -> str:
    """`<project>_x` as `{project}_x` (either project); any other name as it is."""
    return "{project}_" + name[len(prefix):] if name.startswith(prefix) else name


def _restart(policy: dict[str, Any]) -> tuple[str, int]:
    return (policy.get("Name") or "no", int(policy.get("MaximumRetryCount") or 0))


def _network_mode(mode: str, names: dict[str, str]) -> str:
    if mode.startswith("container:"):
        target = mode.split(":", 1)[1]
        return "container:" + next((s for cid, s in names.items() if cid.startswith(target) or target == s), target)
    return mode if mode in ("host", "none") else "networks"


def _aliases(inspect: dict[str, Any], service: str, prefix: str, project_network: str,
             linked_as: dict[str, set[str]]) -> dict[str, list[str]]:
    own = {inspect["Id"][:12], inspect["Name"].lstrip("/")}
    out = {}
    for name, net in (inspect["NetworkSettings"].get("Networks") or {}).items():
        key = "default" if name == project_network else name.removeprefix(prefix)
        # the service's own name resolves on both sides: Compose adds it as an alias,
        # syncer names the container after it
        out[key] = sorted((set(net.get("Aliases") or []) - own) | {service} | linked_as.get(name, set()))
    return out


def with_internal(api: Any, inspect: dict[str, Any]) -> dict[str, Any]:
    """The inspected container with `_internal`: the names of its networks that are Internal,
    `_tmpfs_modes` and `_volume_options` (the options and labels each named volume was made with), read
    while they exist: syncer's are removed before Compose's are made."""
    nets = inspect["NetworkSettings"].get("Networks") or {}
    return {**inspect, "_internal": [n for n in nets if api.inspect_network(n).get("Internal")],
            "_tmpfs_modes": _tmpfs_modes(api, inspect),
            "_volume_options": {m["Name"]: _made_with(api.inspect_volume(m["Name"]))
                                for m in inspect.get("Mounts") or [] if m["Type"] == "volume"}}


def _made_with(volume: dict[str, Any]) -> dict[str, Any]:
    """A named volume's options and its labels (Compose's own `com.docker.compose.*` aside)."""
    labels = {k: v for k, v in (volume.get("Labels") or {}).items() if not k.startswith("com.docker.compose.")}
    return {"options": volume.get("Options") or {}, **({"labels": labels} if labels else {})}


def link_aliases(containers: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """Container name → network → the aliases Compose's `links: [SERVICE:ALIAS]` give it: they
    sit on the container that links (`Links: ["target:alias"]`), syncer puts them on the target.
    The `<service>-<n>` names Compose adds as links for old clients are left out."""
    out: dict[str, dict[str, set[str]]] = {}
    for c in containers:
        for network, endpoint in (c["NetworkSettings"].get("Networks") or {}).items():
            for link in endpoint.get("Links") or []:
                target, _, alias = link.partition(":")
                if alias and not re.fullmatch(r".+-[0-9]+", alias):
                    out.setdefault(target, {}).setdefault(network, set()).add(alias)
    return out


def skipped_mounts(spec_label: str | None) -> set[str]:
    """Paths syncer writes as files: Compose bind-mounts them instead."""
    files = json.loads(spec_label or "{}").get("files") or []
    if isinstance(files, dict):  # the normal form: path -> entry
        return set(files)
    return {f["path"] for f in files if isinstance(f, dict) and "path" in f}


def differences(compose: dict[str, Any], syncer: dict[str, Any]) -> list[str]:
    """One line per field that differs, naming it."""
    return [f"{field}: compose={compose[field]!r} syncer={syncer[field]!r}"
            for field in FIELDS if compose[field] != syncer[field]]


def file_contents(api: Any, container_id: str, paths: set[str]) -> dict[str, tuple[bytes, str]]:
    """The bytes and who may read or run it (the permissions without the write bits, octal) at
    each path in a container (running or not), read over the archive API. A trailing newline is
    dropped: a secret given in the environment has none, the file Compose mounts for it usually
    does. (Write bits aside: Compose mounts a host file read-only, as it is on the host, where
    syncer writes the file with no write bit.)"""
    out = {}
    for path in sorted(paths):
        stream, _ = api.get_archive(container_id, path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            info = tar.getmembers()[0]
            member = tar.extractfile(info)
            out[path] = (member.read().rstrip(b"\n") if member else b"", f"{info.mode & 0o7555:o}")
    return out
