"""Compose files merged in order, as `docker compose -f a.yaml -f b.yaml` merges them.

Pure. The Compose spec's merge rules, as Compose (compose-go) applies them: a mapping is
merged key by key and a later scalar wins; a sequence is appended to, then kept free of
duplicates for the attributes Compose keeps unique (ports by address, volumes, configs and
secrets by their target, environment and labels by name, ...); `command`, `entrypoint` and
`healthcheck.test` are replaced; `depends_on` and a service's `networks` are merged as
mappings whichever form each file wrote; `logging` is merged only for one driver. A null
keeps what an earlier file set; `!reset` removes it and `!override` replaces it whole.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from syncer.stages import shortforms
from syncer.stages.compose_fields import split_volume
from syncer.stages.load import RESET, Override, parse

Path = tuple[Any, ...]  # keys (a list's index an int, where problems are located)
Problems = list[tuple[Path, str]]

# `docker compose` without -f reads the first of these it finds, then the first override
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")

_S = ("services", "*")
_REPLACED = {(*_S, "command"), (*_S, "entrypoint"), (*_S, "healthcheck", "test"), (*_S, "ulimits", "*")}
# written as a mapping or as `["K=V"]`: merged by name, the later value wins
_KEY_VALUE = {(*_S, k) for k in ("environment", "labels", "sysctls", "annotations")} | {
    (*_S, "deploy", "labels"), ("networks", "*", "labels"), ("volumes", "*", "labels")}
# written as a list or a mapping: merged as mappings (a listed name gets these settings)
_AS_MAPPING: dict[Path, dict[str, Any] | None] = {
    (*_S, "depends_on"): {"condition": "service_started", "required": True}, (*_S, "networks"): None}
# a single string is a list of one
_TO_LIST = {(*_S, k) for k in ("dns", "dns_opt", "dns_search", "env_file", "tmpfs", "extra_hosts")}


def _name(entry: Any) -> str:
    return shortforms.text(entry).partition("=")[0]


def _port(entry: Any) -> Any:
    try:
        ports = shortforms.ports([entry]) if not isinstance(entry, dict) else [{
            "host_ip": entry.get("host_ip", ""), "host_port": entry.get("published", ""),
            "container_port": entry.get("target"), "protocol": entry.get("protocol", "tcp")}]
    except (ValueError, TypeError, KeyError):  # (a variable in it: compared as written)
        return shortforms.text(entry)
    return tuple((p.get("host_ip", ""), str(p.get("host_port", "")), str(p["container_port"]), p["protocol"])
                 for p in ports)


def _target(default: str) -> Callable[[Any], Any]:
    def key(entry: Any) -> Any:
        if isinstance(entry, dict):
            return entry.get("target") or f"{default}/{entry.get('source')}"
        return f"{default}/{entry}"
    return key


def _volume(entry: Any) -> Any:
    return entry.get("target") if isinstance(entry, dict) else split_volume(shortforms.text(entry))[1]


def _device(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("target")
    parts = shortforms.text(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _env_file(entry: Any) -> Any:
    return entry.get("path") if isinstance(entry, dict) else entry


_UNIQUE: dict[Path, Callable[[Any], Any]] = {
    **{p: _name for p in _KEY_VALUE},
    **{(*_S, k): _name for k in ("cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "links", "profiles",
                                 "tmpfs", "expose")},
    (*_S, "networks", "*", "aliases"): _name, (*_S, "networks", "*", "link_local_ips"): _name,
    (*_S, "ports"): _port, (*_S, "volumes"): _volume, (*_S, "devices"): _device, (*_S, "env_file"): _env_file,
    (*_S, "secrets"): _target("/run/secrets"), (*_S, "configs"): _target(""),
    (*_S, "extra_hosts"): lambda entry: entry,  # only an entry written twice goes
}


def _rule(path: Path, rules: Iterable[Path]) -> Path | None:
    for pattern in rules:
        if len(pattern) == len(path) and all(p in ("*", step) for p, step in zip(pattern, path)):
            return pattern
    return None


def named(path: Path) -> str:
    """`service 'app': ports` for a service's field (as the import names it), else the path."""
    if len(path) > 2 and path[0] == "services":
        return f"service '{path[1]}': {'.'.join(str(p) for p in path[2:])}"
    return ".".join(str(p) for p in path)


class _Refused(Exception):
    pass


def extended(doc: dict[str, Any], read: Callable[[str], bytes | None], problems: Problems) -> dict[str, Any]:
    """`doc` with each service that `extends` another (of this file, or of the file it names)
    made of that one merged with its own settings, by the rules files merge by (Compose's);
    the relative paths of a service from another folder rebased onto this file's folder."""
    services = doc.get("services")
    if not isinstance(services, dict) or not any(isinstance(s, dict) and "extends" in s for s in services.values()):
        return doc
    others: dict[str, dict[str, Any] | None] = {}

    def services_of(path: str) -> dict[str, Any] | None:
        if path not in others:
            data = read(posixpath.normpath(path))
            source = parse(path, data, compose=True)[0] if data is not None else None
            other = source.docs[0] if source is not None and len(source.docs) == 1 else None
            found = other.get("services") if isinstance(other, dict) else None
            others[path] = found if isinstance(found, dict) else None
        return others[path]

    def resolve(name: str, pool: dict[str, Any], folder: str, seen: tuple[tuple[str, str], ...]) -> Any:
        service = pool.get(name)
        if not isinstance(service, dict) or "extends" not in service:
            return rebased(clean(service), folder)
        ext = service["extends"]
        ref = ext if isinstance(ext, str) else ext.get("service") if isinstance(ext, dict) else None
        file = ext.get("file") if isinstance(ext, dict) else None
        if not isinstance(ref, str) or not (file is None or isinstance(file, str)):
            raise _Refused("name the service (`service:`) and, from another file, its `file:`")
        where = posixpath.join(folder, file) if file else folder + "#"
        other = services_of(posixpath.join(folder, file)) if file else pool
        if other is None:
            raise _Refused(f"{file} is not a Compose file with services: next to this one")
        if ref not in other:
            raise _Refused(f"no service '{ref}' in {file or 'this file'}")
        if (where, ref) in seen:
            raise _Refused(f"'{ref}' extends itself ({' -> '.join(n for _, n in seen)} -> {ref})")
        base = resolve(ref, other, posixpath.dirname(posixpath.join(folder, file)) if file else folder,
                       (*seen, (where, ref)))
        local = rebased({k: v for k, v in service.items() if k != "extends"}, folder)  # (its tags for merge)
        merging: Problems = []
        merged = merge(base, local, ("services", name), merging)
        if merging:
            raise _Refused(f"{'.'.join(merging[0][0][2:])}: {merging[0][1]}")
        return merged

    out = dict(services)
    for name, service in services.items():
        if isinstance(service, dict) and "extends" in service:
            try:
                out[name] = resolve(str(name), services, "", (("#", str(name)),))
            except _Refused as refused:
                problems.append((("services", str(name), "extends"), str(refused)))
                out[name] = clean(service)  # (its `extends` kept: an image it lacks is that one's fault)
    return {**doc, "services": out}


def rebased(service: Any, folder: str) -> Any:
    """A service written in `folder` (relative to the first file's), its relative bind mounts
    and env files as paths from the first file's folder, as Compose resolves them."""
    if not folder or not isinstance(service, dict):
        return service

    def moved(path: Any) -> Any:
        text = str(path)
        return "./" + posixpath.normpath(posixpath.join(folder, text)) if not text.startswith("/") else path

    out = dict(service)
    if isinstance(out.get("volumes"), list):
        volumes = []
        for v in out["volumes"]:
            if isinstance(v, dict) and v.get("type") == "bind" and str(v.get("source", "")).startswith("."):
                v = {**v, "source": moved(v["source"])}
            elif isinstance(v, str) and v.startswith("."):
                source, _, rest = v.partition(":")
                v = f"{moved(source)}:{rest}"
            volumes.append(v)
        out["volumes"] = type(out["volumes"])(volumes)  # (an !override list stays one)
    if "env_file" in out:
        files = out["env_file"] if isinstance(out["env_file"], list) else [out["env_file"]]
        out["env_file"] = type(files)({**f, "path": moved(f["path"])} if isinstance(f, dict) and "path" in f
                                       else moved(f) for f in files)
    return out


def clean(value: Any) -> Any:
    """`value` as one file alone means it: a `!reset` key is gone, an `!override` is what it holds."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [clean(v) for v in value if v is not RESET]
    return None if value is RESET else value


def merge(base: Any, over: Any, path: Path, problems: Problems) -> Any:
    """`over` (a later file's value at `path`) merged into `base` (what earlier files made)."""
    if isinstance(over, Override) or _rule(path, _REPLACED):
        return clean(over)
    if over is None:
        return base
    if base is None:
        return clean(over)
    if _rule(path, _KEY_VALUE) and not (isinstance(base, dict) and isinstance(over, dict)):
        base, over = _as_list(base), _as_list(over)
    elif (pattern := _rule(path, _AS_MAPPING)) is not None:
        base, over = _as_mapping(base, _AS_MAPPING[pattern]), _as_mapping(over, _AS_MAPPING[pattern])
    elif _rule(path, _TO_LIST):
        base, over = _as_list(base), _as_list(over)
    elif _rule(path, {(*_S, "logging")}) and _drivers_differ(base, over):
        return clean(over)  # another driver: the earlier driver's options are not its own
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is RESET:
                out.pop(key, None)
                continue
            out[key] = merge(out[key], value, (*path, str(key)), problems) if key in out else clean(value)
            if out[key] is None and _rule((*path, str(key)), _REPLACED):
                del out[key]  # (`command:` left empty by a later file: Compose drops it)
        return out
    if isinstance(base, list) and isinstance(over, list):
        key = _UNIQUE.get(_rule(path, _UNIQUE) or ())
        return _unique([*base, *clean(over)], key) if key is not None else [*base, *clean(over)]
    if isinstance(base, (dict, list)) or isinstance(over, (dict, list)):
        problems.append((path, f"cannot override {_kind(base)} with {_kind(over)} (Compose refuses it too)"))
        return base
    return over


def _kind(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value"


def _drivers_differ(base: Any, over: Any) -> bool:
    """Both name a logging driver, another one."""
    return isinstance(base, dict) and isinstance(over, dict) and "driver" in base and "driver" in over \
        and base["driver"] != over["driver"]


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):  # as Compose writes a mapping out: `K=V`, a bare `K` for null, sorted
        return sorted(k if v is None else f"{k}={shortforms.text(v)}" for k, v in value.items())
    return list(value) if isinstance(value, list) else [value]


def _as_mapping(value: Any, settings: dict[str, Any] | None) -> Any:
    if isinstance(value, list):
        return {str(name): (dict(settings) if settings is not None else None) for name in value}
    return value


def _unique(entries: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    """Later entries replace earlier ones of the same key, where the earlier one stood."""
    out: list[Any] = []
    seen: dict[Any, int] = {}
    for entry in entries:
        try:
            k = key(entry)
            hash(k)
        except (TypeError, ValueError, AttributeError):
            out.append(entry)
            continue
        if k in seen:
            out[seen[k]] = entry
        else:
            seen[k] = len(out)
            out.append(entry)
    return out


def override_file(base: str, present: Callable[[str], bool]) -> str | None:
    """The override file `docker compose` reads with `base` when run in its folder without
    -f (`compose.override.yaml` and the like), when `base` is a name it looks for."""
    if base not in DEFAULT_FILES:
        return None
    return next((name for name in OVERRIDE_FILES if present(name)), None)
