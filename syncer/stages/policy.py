"""What a repository may ask of the host that runs its containers.

Whoever can push to the repository can otherwise bind `/` or the Docker socket, run
privileged, or join the host's namespaces: root on the host. The policy names what is
allowed; everything else is a located validation error. By default nothing is: no bind
mounts (until the operator lists allowed host path prefixes), no privileged, no host
network / pid / ipc, no devices, no added capabilities, never the Docker socket.

The policy comes from syncer.yaml's `policy:` and, when the operator sets one outside the
repository (`--policy FILE` / SYNCER_POLICY), from that file too: then the repository's
can only tighten it (`combine`). Checks read a spec's fields as DESIGN.md's spec table
names them, long and short forms (`{host_path: /srv/x}`, `"/srv/x:/x:ro"`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from syncer.core.errors import Diagnostic
from syncer.core.model import Definition, Located, Server, Template
from syncer.stages.guard import excerpt
from syncer.stages.render import DROP
from syncer.stages.render import substitute  # the one `${...}` substitution render uses

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
FLAGS = ("privileged", "host_network", "host_pid", "host_ipc", "devices", "docker_socket")


@dataclass(frozen=True)
class Policy:
    """What specs may ask for. `cap_add`: the capabilities that may be added (ALL = any)."""

    bind_mounts: tuple[str, ...] = ()
    privileged: bool = False
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    devices: bool = False
    cap_add: tuple[str, ...] = ()
    docker_socket: bool = False


DEFAULT = Policy()


def from_raw(raw: Mapping[str, Any] | None, base: Policy = DEFAULT) -> Policy:
    """A policy from its (schema-checked) YAML mapping; unset fields keep `base`'s."""
    if not raw:
        return base
    out = base
    if "bind_mounts" in raw:
        out = replace(out, bind_mounts=tuple(_clean(p) for p in raw["bind_mounts"]))
    if "cap_add" in raw:
        value = raw["cap_add"]
        caps = ("ALL",) if value is True else () if value is False else tuple(_cap(c) for c in value)
        out = replace(out, cap_add=caps)
    return _with_flags(out, {f: bool(raw[f]) if f in raw else getattr(out, f) for f in FLAGS})


def _with_flags(policy: Policy, flags: Mapping[str, bool]) -> Policy:
    return Policy(bind_mounts=policy.bind_mounts, cap_add=policy.cap_add, privileged=flags["privileged"],
                  host_network=flags["host_network"], host_pid=flags["host_pid"], host_ipc=flags["host_ipc"],
                  devices=flags["devices"], docker_socket=flags["docker_socket"])


def loosening(outer: Policy, raw: Mapping[str, Any] | None) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, message) for each setting of the repository's `policy:` that would allow more
    than the operator's policy (`outer`) does: the repository may only tighten it."""
    raw = raw or {}
    for flag in FLAGS:
        if raw.get(flag) is True and not getattr(outer, flag):
            yield (flag,), f"policy.{flag}: the operator's policy forbids it; the repository cannot allow it"
    for i, prefix in enumerate(raw.get("bind_mounts", ())):
        if not _under(_clean(prefix), outer.bind_mounts):
            yield ("bind_mounts", i), (f"policy.bind_mounts[{i}]: {_short(prefix)} is not under a prefix"
                                       " the operator's policy allows")
    value = raw.get("cap_add")
    asked = ("ALL",) if value is True else () if value in (None, False) else tuple(_cap(c) for c in value)
    for cap in asked:
        if "ALL" not in outer.cap_add and cap not in outer.cap_add:
            yield ("cap_add",), f"policy.cap_add: the operator's policy does not allow {cap}"


def combine(outer: Policy | None, raw: Mapping[str, Any] | None) -> Policy:
    """The policy in force: the repository's over the defaults, or, under an operator's
    policy, the operator's tightened by the repository's (never loosened)."""
    if outer is None:
        return from_raw(raw)
    repo = from_raw(raw, outer)
    both = replace(
        repo, bind_mounts=tuple(p for p in repo.bind_mounts if _under(p, outer.bind_mounts)),
        cap_add=outer.cap_add if "ALL" in repo.cap_add else tuple(
            c for c in repo.cap_add if "ALL" in outer.cap_add or c in outer.cap_add),
    )
    return _with_flags(both, {f: bool(getattr(outer, f) and getattr(repo, f)) for f in FLAGS})


def violations(spec: Mapping[str, Any], policy: Policy) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path inside the spec, message) for each field the policy forbids."""
    if spec.get("privileged") is True and not policy.privileged:
        yield ("privileged",), "privileged: true is not allowed by the policy (policy.privileged)"
    for field, flag in (("network_mode", "host_network"), ("pid", "host_pid"), ("ipc", "host_ipc")):
        if spec.get(field) == "host" and not getattr(policy, flag):
            yield (field,), f"{field}: host shares the host's namespace: not allowed by the policy (policy.{flag})"
    devices = spec.get("devices")
    if isinstance(devices, list) and devices and not policy.devices:
        yield ("devices",), "devices: not allowed by the policy (policy.devices)"
    caps = spec.get("cap_add")
    if isinstance(caps, list) and "ALL" not in policy.cap_add:
        for i, cap in enumerate(caps):
            if _cap(str(cap)) not in policy.cap_add:
                yield ("cap_add", i), f"cap_add: {_short(str(cap))} is not allowed by the policy (policy.cap_add)"
    volumes = spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else ()):
        found = bind_source(volume)
        if found is None:
            continue
        key, host = found
        path = ("volumes", i, key) if key else ("volumes", i)
        message = _bind_problem(host, policy)
        if message:
            yield path, f"volumes[{i}]: {message}"


def bind_source(volume: Any) -> tuple[str | None, str] | None:
    """(the key holding it or None for the short form, the host path) of a bind mount."""
    if isinstance(volume, str):
        source, sep, _ = volume.partition(":")
        if sep and source.startswith(("/", ".", "~")):
            return None, source
        return None
    if isinstance(volume, Mapping):
        for key in ("host_path", "source"):
            value = volume.get(key)
            if isinstance(value, str) and (key == "host_path" or volume.get("type") == "bind"):
                return key, value
        opts = volume.get("driver_opts")  # the local driver's `o: bind, device: /srv/x` is a bind mount too
        if isinstance(opts, Mapping) and "bind" in str(opts.get("o", "")).replace("rbind", "bind").split(","):
            return "driver_opts", str(opts.get("device", ""))
    return None


def _bind_problem(host: str, policy: Policy) -> str | None:
    if SECRET_VALUE in host:
        return "a bind mount's host path cannot come from a secret (it could not be checked)"
    if not host.startswith("/"):
        return None  # a repo-relative `./x`: the repository's own files, resolved inside it
    clean = _clean(host)
    if any(_under(socket, (clean,)) for socket in DOCKER_SOCKETS):  # the socket or a folder holding it
        if not policy.docker_socket:
            what = f"the Docker socket {clean}" if clean in DOCKER_SOCKETS else \
                f"bind mount of {_short(clean)} holds the Docker socket, which"
            return f"{what} gives root on the host: not allowed (policy.docker_socket)"
        return None
    if _under(clean, policy.bind_mounts):
        return None
    allowed = ", ".join(policy.bind_mounts) or "none"
    return f"bind mount of {_short(clean)} is not under an allowed prefix (policy.bind_mounts: {allowed})"


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _clean(path: str) -> str:
    """An absolute path with `.`, `..` and doubled slashes resolved (`/srv/../etc` is /etc)."""
    return posixpath.normpath("/" + path.lstrip("/")) if path.startswith("/") else path


def _cap(name: str) -> str:
    upper = name.upper()
    return upper.removeprefix("CAP_")


def _short(text: str) -> str:
    return excerpt(text)


# --- where a definition's fields come from -------------------------------------------------

SECRET_VALUE = "\x00secret\x00"  # a secret param's value: unknown until render
FIELDS = ("privileged", "network_mode", "pid", "ipc", "devices", "cap_add", "volumes")


def check_definition(tpl: Template, d: Definition, server: Server,
                     policy: Policy) -> Iterator[tuple[Located, tuple[Any, ...], str]]:
    """(document, path, message) for each field of a definition's spec the policy forbids,
    located where it is written (see `written`)."""
    ctx = context(tpl, d, server)
    for field in FIELDS:
        found = written(tpl, d, field, ctx)
        if found is not None:
            origin, prefix, value = found
            for path, message in violations({field: value}, policy):
                yield origin, (*prefix[:-1], *path), message


def written(tpl: Template, d: Definition, field: str,
            ctx: Mapping[str, Any] | None) -> tuple[Located, tuple[Any, ...], Any] | None:
    """Where a top-level spec field of a definition is written and its value after `${...}`
    substitution (as written when `ctx` is None): the definition's overrides, else the
    template's profile, else the template's spec (a field replaces the one below it, as
    render merges them)."""
    profile = tpl.profiles.get(d.profile, {})
    layers = ((d.origin, ("overrides",), d.overrides),
              (tpl.origin, ("profiles", d.profile), profile if isinstance(profile, Mapping) else {}),
              (tpl.origin, ("spec",), tpl.spec))
    for origin, prefix, layer in layers:
        if field in layer:
            value = layer[field] if ctx is None else substitute(layer[field], ctx)
            return None if value is DROP else (origin, (*prefix, field), value)
    return None


def context(tpl: Template, d: Definition, server: Server) -> dict[str, Any]:
    """What `${...}` names for a definition at validation (a secret is SECRET_VALUE)."""
    props = tpl.inputs.get("properties", {})
    values = {k: p["default"] for k, p in props.items() if isinstance(p, dict) and "default" in p}
    for name, value in d.params.items():
        secret = isinstance(value, dict) and set(value) == {"secret"}
        values[name] = SECRET_VALUE if secret or name in tpl.secret_inputs() else value
    ctx = {"definition.name": d.name, "server.name": server.name,
           "server.environment": server.environment, "profile": d.profile}
    ctx.update({f"inputs.{k}": v for k, v in values.items()})
    return ctx


def operator_policy(name: str, data: bytes) -> tuple[Policy | None, list[Diagnostic]]:
    """The operator's policy from a file outside the repository (`--policy FILE`): a YAML
    mapping of the same shape as syncer.yaml's `policy:`; every problem located in it."""
    from jsonschema import Draft202012Validator

    from syncer.stages import schema
    from syncer.stages.load import locate, parse

    source, problems = parse(name, data)
    if source is None:
        return None, problems
    if len(source.docs) != 1 or not isinstance(source.docs[0], dict):
        return None, [Diagnostic(name, 1, 1, "expected one mapping (the shape of syncer.yaml's policy:)")]
    raw = source.docs[0]
    checker = Draft202012Validator(schema.load_schema("project")["$defs"]["policy"])
    found = [Diagnostic(name, *locate(source, 0, path, key=at_key), message)
             for path, at_key, message in schema.iter_problems(checker, raw, prefix=())]
    return (None, sorted(found, key=lambda d: (d.line, d.column))) if found else (from_raw(raw), [])


def needed(specs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The smallest `policy:` that lets these specs through (only what differs from the
    default): what `syncer import` writes into syncer.yaml for the operator to review."""
    binds: set[str] = set()
    caps: set[str] = set()
    flags: dict[str, bool] = {}
    for spec in specs:
        if spec.get("privileged") is True:
            flags["privileged"] = True
        for field, flag in (("network_mode", "host_network"), ("pid", "host_pid"), ("ipc", "host_ipc")):
            if spec.get(field) == "host":
                flags[flag] = True
        if spec.get("devices"):
            flags["devices"] = True
        caps.update(_cap(str(c)) for c in spec.get("cap_add") or [])
        volumes = spec.get("volumes")
        for volume in volumes if isinstance(volumes, list) else ():
            found = bind_source(volume)
            host = _clean(found[1]) if found and found[1].startswith("/") and "${" not in found[1] else None
            if host is None:
                continue
            if any(_under(socket, (host,)) for socket in DOCKER_SOCKETS):
                flags["docker_socket"] = True
            else:
                binds.add(host)
    out: dict[str, Any] = {}
    if binds:
        out["bind_mounts"] = sorted(binds)
    if caps:
        out["cap_add"] = sorted(caps)
    out.update(sorted(flags.items()))
    return out
