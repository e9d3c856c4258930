"""Compose's short forms turned into syncer's long forms, one canonical shape per meaning, so
that `"8080:80"` and `{container_port: 80, host_port: 8080}` give the same spec hash.

Pure. Each function takes a field's value after `${...}` substitution (so a number may
arrive as text) and returns its canonical form; `render.normalise` calls them by field.
A value that cannot be read raises SpecError with the field named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncer.core.errors import SyncerError


class SpecError(SyncerError):
    """A rendered value (after substitution) that does not read as its field."""


_PORT_RE = re.compile(
    r"^(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<host>[0-9]+(?:-[0-9]+)?)?:)?"
    r"(?P<cont>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?$")


def text(value: Any) -> str:
    """A scalar as the text Docker would see (`true`, not `True`; None as empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def flag(value: Any, field: str) -> bool:
    """A boolean, also from a substituted `"true"` / `"false"`."""
    if isinstance(value, bool):
        return value
    lowered = text(value).strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0", ""):
        return False
    raise SpecError(f"{field}: expected true or false, got {value!r}")


def integer(value: Any, field: str) -> int:
    """An integer, also from substituted text."""
    if isinstance(value, bool):
        raise SpecError(f"{field}: expected an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise SpecError(f"{field}: expected an integer, got {value!r}") from None


def key_values(value: Any, field: str, *, drop_bare: bool = False) -> dict[str, Any]:
    """A mapping, or Compose's list `["K=V", "K"]` (a bare `K` is `K: None`)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    out: dict[str, Any] = {}
    for item in value:
        key, sep, val = text(item).partition("=")
        if not key:
            raise SpecError(f"{field}: {item!r} has no name before '='")
        out[key] = val if sep else (None if drop_bare else "")
    return out


def ports(value: list[Any]) -> list[dict[str, Any]]:
    """Each port, long or short (`"80"`, `"8080:80"`, `"127.0.0.1:53:53/udp"`, ranges), long."""
    out: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, Mapping):
            out.append(_long_port(item))
        else:
            out.extend(_short_ports(text(item)))
    return out


def _long_port(p: Mapping[str, Any]) -> dict[str, Any]:
    port: dict[str, Any] = {"container_port": _port(p["container_port"], "container_port", 1),
                            "protocol": p.get("protocol", "tcp")}
    if p.get("host_port") not in (None, ""):
        port["host_port"] = _port(p["host_port"], "host_port", 0)
    if p.get("host_ip"):
        port["host_ip"] = str(p["host_ip"])
    if p.get("mode") == "host":  # (on Swarm; `ingress`, the default, is left out: hashes stay)
        port["mode"] = "host"
    return port


def _port(value: Any, key: str, lowest: int) -> int:
    """One port of the long form (substituted at render: the schema saw `${...}`)."""
    port = integer(value, f"ports.{key}")
    try:
        port_range(port, port, lowest, key.replace("_", " "))
    except SpecError as exc:
        raise SpecError(f"ports.{key}: {port}: {exc}") from None
    return port


def _short_ports(spec: str) -> list[dict[str, Any]]:
    m = _PORT_RE.match(spec.strip())
    if m is None:
        raise SpecError(f"ports: cannot read {spec!r} (HOST_IP:HOST_PORT:CONTAINER_PORT/PROTOCOL)")
    try:
        conts = _range(m.group("cont"), 1, "container port")
        hosts = _range(m.group("host"), 0, "host port") if m.group("host") else []  # (0: any free one)
    except SpecError as exc:
        raise SpecError(f"ports: {spec!r}: {exc}") from None
    if hosts and len(hosts) != len(conts):
        raise SpecError(f"ports: {spec!r}: the host and container ranges differ in length")
    out = []
    for i, cont in enumerate(conts):
        port: dict[str, Any] = {"container_port": cont, "protocol": m.group("proto") or "tcp"}
        if hosts:
            port["host_port"] = hosts[i]
        if m.group("ip"):
            port["host_ip"] = m.group("ip").strip("[]")
        out.append(port)
    return out


def _range(part: str, lowest: int, what: str) -> list[int]:
    first, _, last = part.partition("-")
    return list(range(*port_range(int(first), int(last or first), lowest, what)))


def port_range(first: int, last: int, lowest: int = 1, what: str = "port", widest: int = 65535) -> tuple[int, int]:
    """(first, last + 1) of a port range (`expose`, `ports`: one port is a range of one);
    SpecError for a port outside lowest-65535, a range that runs backwards, or one of more
    than `widest` ports (published ranges may be wide: a TURN server's 49152-65535/udp)."""
    if not (lowest <= first <= 65535 and lowest <= last <= 65535):
        raise SpecError(f"a {what} is {lowest}-65535")
    if last < first:
        raise SpecError("the range runs backwards")
    if last - first + 1 > widest:
        raise SpecError(f"the range spans {last - first + 1} ports (at most {widest} in one)")
    return first, last + 1


_BYTES = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?([kmgtp]?)i?b?", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def byte_size(value: Any) -> int | None:
    """A size as Docker and Compose read one — `512m`, `256mb`, `1GiB`, `1.5g`, `100` (bytes),
    powers of 1024 — in bytes; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _BYTES.fullmatch(str(value).strip())
    return int(float(m.group(1)) * 1024 ** _POWERS[m.group(2).lower()]) if m else None


MAX_EXPOSED_RANGE = 1000  # ports in one `expose` range: a wider one is a slip, not 60,000 entries
_EXPOSE_RE = re.compile(r"^([0-9]+)(?:-([0-9]+))?(?:/(tcp|udp|sctp))?$")


def expose(value: list[Any]) -> list[str]:
    """Compose's `expose` (`3000`, `"8000-8010"`, `"53/udp"`) as sorted, distinct `PORT/PROTO`
    strings: each port of a range, tcp unless written."""
    found: set[tuple[int, str]] = set()
    for item in value:
        try:
            first, last, protocol = exposed_range(text(item))
        except SpecError as exc:
            raise SpecError(f"expose: {exc}") from None
        found.update((port, protocol) for port in range(first, last + 1))
    return [f"{port}/{protocol}" for port, protocol in sorted(found)]


def exposed_range(entry: str) -> tuple[int, int, str]:
    """(first, last, protocol) of one `expose` entry; SpecError for a port outside 1-65535,
    a range that runs backwards, or one of more than MAX_EXPOSED_RANGE ports."""
    m = _EXPOSE_RE.match(entry.strip())
    if m is None:
        raise SpecError(f"cannot read {entry!r} (PORT, PORT/PROTO, PORT-PORT or PORT-PORT/PROTO)")
    try:
        first, end = port_range(int(m.group(1)), int(m.group(2) or m.group(1)), widest=MAX_EXPOSED_RANGE)
    except SpecError as exc:
        raise SpecError(f"{entry!r}: {exc}") from None
    return first, end - 1, m.group(3) or "tcp"


def volumes(value: list[Any]) -> list[dict[str, Any]]:
    """Each volume, long or short (`"data:/x"`, `"/srv/x:/x:ro,z"`, `"/x"`), long; read_only
    and external only when true (a spec without them hashes as it did before they existed)."""
    out = []
    for item in value:
        vol = dict(item) if isinstance(item, Mapping) else _short_volume(text(item))
        for key in ("read_only", "external"):
            if key in vol:
                if flag(vol[key], f"volumes.{key}"):
                    vol[key] = True
                else:
                    del vol[key]
        if vol.get("propagation") and not vol.get("host_path"):
            raise SpecError(f"volumes: {vol.get('mount_path')}: propagation is a host_path bind's (a named volume has none)")
        if made_with_driver(vol) and not vol.get("name"):
            raise SpecError(f"volumes: {vol.get('mount_path')}: driver, driver_opts and labels are a named"
                            " volume's (give it a name)")
        if vol.get("external") and (not vol.get("name") or made_with_driver(vol)):
            raise SpecError(f"volumes: {vol.get('mount_path')}: " + (
                "external is a named volume's (give its name)" if not vol.get("name") else
                "an external volume is never made by syncer: it has no driver, driver_opts or labels (drop"
                " them, or `external: true`)"))
        for key in ("driver_opts", "labels"):  # (as the engine takes them: strings)
            if key in vol:
                vol[key] = {str(k): text(v) for k, v in vol[key].items()}
        out.append(vol)
    return out


def _short_volume(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) == 1:
        return {"mount_path": parts[0]}
    if len(parts) > 3 or not parts[1].startswith("/"):
        raise SpecError(f"volumes: cannot read {spec!r} (NAME_OR_HOST_PATH:MOUNT_PATH[:ro])")
    vol: dict[str, Any] = {"mount_path": parts[1]}
    vol["host_path" if parts[0].startswith("/") else "name"] = parts[0]
    options = parts[2].split(",") if len(parts) == 3 else []
    if "ro" in options:
        vol["read_only"] = True
    for label in ("z", "Z"):
        if label in options:
            vol["selinux"] = label
    for mode in PROPAGATION:
        if mode in options:
            vol["propagation"] = mode
    return vol


PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave")  # a bind's, as Docker names them


def made_with_driver(v: Mapping[str, Any]) -> bool:
    """A named volume with a driver, its options or labels (mounted as a Mount: see volume_mount)."""
    return "driver" in v or "driver_opts" in v or "labels" in v


def volume_mount(v: Mapping[str, Any]) -> dict[str, Any]:
    """A named volume with its driver, options and labels as an Engine API Mount (a container's
    and a Swarm service's alike): the engine (each node, for a service) makes the volume with
    them when it does not exist yet; one that exists is mounted as it is."""
    driver = {"Name": v.get("driver", "local"), **({"Options": dict(v["driver_opts"])} if v.get("driver_opts") else {})}
    labels = {"Labels": dict(v["labels"])} if v.get("labels") else {}
    return {"Type": "volume", "Source": v["name"], "Target": v["mount_path"], "ReadOnly": bool(v.get("read_only")),
            "VolumeOptions": {"DriverConfig": driver, **labels}}


def as_list(value: Any) -> list[str]:
    """A string or a list of strings, as a list (tmpfs, dns, dns_search, dns_opt; group_add's
    names and ids, as the strings Docker takes)."""
    return [text(value)] if isinstance(value, (str, int, float)) else [text(v) for v in value]


def tmpfs_entry(entry: str) -> tuple[str, str]:
    """`/run:size=64m,mode=1777` as its path and its options (`""` when it has none)."""
    path, _, options = entry.partition(":")
    return path, options


def healthcheck(value: Mapping[str, Any]) -> dict[str, Any]:
    """`disable: true` and `test: [NONE]` are one thing: the image's HEALTHCHECK off."""
    out = dict(value)
    disabled = flag(out.pop("disable", False), "healthcheck.disable")
    test = out.get("test")
    if isinstance(test, str):
        out["test"] = ["CMD-SHELL", test]
    elif test is not None:
        out["test"] = [text(v) for v in test]
    if disabled or out.get("test") == ["NONE"]:
        return {"test": ["NONE"]}
    if "retries" in out:
        out["retries"] = integer(out["retries"], "healthcheck.retries")
    return out


def labels(value: Any, field: str = "labels") -> dict[str, str]:
    """A mapping or a list `["k=v"]`, values as text."""
    return {k: text(v) for k, v in key_values(value, field).items()}


def extra_hosts(value: Any) -> list[str]:
    """`["host:ip"]`, `["host=ip"]` or `{host: ip}` → `["host:ip"]` (Docker's ExtraHosts)."""
    if isinstance(value, Mapping):
        pairs = [(str(k), text(v)) for k, v in value.items()]
    else:
        pairs = []
        for item in value:
            entry = text(item)
            sep = "=" if "=" in entry else ":"
            host, _, ip = entry.partition(sep)
            if not host or not ip:
                raise SpecError(f"extra_hosts: cannot read {entry!r} (HOST:IP or HOST=IP)")
            pairs.append((host, ip))
    return [f"{host}:{ip}" for host, ip in pairs]


def ulimits(value: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """`nofile: 1024` → `{soft: 1024, hard: 1024}`."""
    out = {}
    for name, limit in value.items():
        if isinstance(limit, Mapping):
            out[str(name)] = {"soft": integer(limit["soft"], f"ulimits.{name}.soft"),
                              "hard": integer(limit["hard"], f"ulimits.{name}.hard")}
        else:
            n = integer(limit, f"ulimits.{name}")
            out[str(name)] = {"soft": n, "hard": n}
    return out


def sysctls(value: Any) -> dict[str, str]:
    """A mapping or a list `["k=v"]`, values as text."""
    return {k: text(v) for k, v in key_values(value, "sysctls").items()}


def devices(value: list[Any]) -> list[dict[str, str]]:
    """`"/dev/x"`, `"/dev/x:/dev/y:rw"` or `{source, target, permissions}` → all three keys."""
    out = []
    for item in value:
        if isinstance(item, Mapping):
            source, target, perms = str(item["source"]), item.get("target"), item.get("permissions")
        else:
            parts = text(item).split(":")
            source = parts[0]
            target = parts[1] if len(parts) > 1 else None
            perms = parts[2] if len(parts) > 2 else None
        out.append({"source": source, "target": str(target or source), "permissions": str(perms or "rwm")})
    return out


def gpus(value: Any) -> list[dict[str, Any]]:
    """`all` → one request for every GPU; each request with its capabilities (default gpu)."""
    items = [{"count": "all"}] if value == "all" else list(value)
    out = []
    for item in items:
        req = dict(item)
        req.setdefault("capabilities", ["gpu"])
        if "count" in req and req["count"] != "all":
            req["count"] = integer(req["count"], "gpus.count")
        out.append(req)
    return out


def logging(value: Mapping[str, Any]) -> dict[str, Any]:
    """Options as text, as Docker's LogConfig holds them."""
    out = dict(value)
    if "options" in out:
        out["options"] = {str(k): text(v) for k, v in out["options"].items()}
    return out


def resources(value: Mapping[str, Any]) -> dict[str, Any]:
    """`pids` as an integer; sizes and cpus as written (their hash is pinned)."""
    out = dict(value)
    if "pids" in out:
        out["pids"] = integer(out["pids"], "resources.pids")
    return out


def _flag_of(field: str) -> Any:
    return lambda value: flag(value, field)


FLAGS = ("init", "tty", "stdin_open", "privileged", "read_only")

NORMALISERS: dict[str, Any] = {
    "ports": ports, "expose": expose, "volumes": volumes, "healthcheck": healthcheck, "labels": labels,
    "service_labels": lambda v: labels(v, "service_labels"),
    "env": lambda v: key_values(v, "env", drop_bare=True), "tmpfs": as_list, "dns": as_list,
    "dns_search": as_list, "dns_opt": as_list, "group_add": as_list, "extra_hosts": extra_hosts, "ulimits": ulimits, "sysctls": sysctls,
    "devices": devices, "gpus": gpus, "logging": logging, "resources": resources,
    **{f: _flag_of(f) for f in FLAGS},
}
