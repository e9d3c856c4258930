"""A cache of validated projects in the state dir, keyed by the bytes of every YAML file.

Parsing and validating a thousand definitions costs more than everything else a no-op
apply does; when not one byte of the repository (nor of syncer's own code and schemas)
changed since the last valid load, the result is the same, so it is read back instead.
Only valid projects are cached: an invalid one is validated afresh every time, so its
diagnostics are always current.

The entry is JSON, read back field by field against the dataclasses of `core.model`:
never pickle, which would run the code of whoever could write the state dir. Anything
unexpected in the file (not JSON, another shape, another format) is a miss.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import os
import stat
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar, Union, get_args, get_origin, get_type_hints

from syncer.core.model import ContainerSpec, Desired, Project
from syncer.stages.tree import MAX_FILE_BYTES

T = TypeVar("T")
CACHE_DIR = "cache"
FORMAT = 4  # bump when the shape of an entry changes (4: Definition.restarts_with)
_PACKAGE = Path(__file__).resolve().parents[1]


@cache
def _code_fingerprint() -> bytes:
    """Every module and schema of the syncer package: a change to how files are read
    invalidates the cache. Once per process: the code that runs is the code it imported."""
    h = hashlib.sha256()
    top = str(_PACKAGE)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        prefix = dirpath[len(top) + 1:]  # relative to the package (os.path.relpath costs a no-op ~1 ms)
        for name in sorted(filenames):
            if name.endswith((".py", ".json")):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.join(prefix, name) if prefix else name
                h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.digest()


def repo_key(root: Path, *, extra: bytes = b"") -> str:
    """sha256 of every YAML file under `root` (path and bytes), hidden folders skipped,
    and of `extra` (what else validation depends on: the operator's policy)."""
    h = hashlib.sha256(_code_fingerprint())
    h.update(hashlib.sha256(extra).digest())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                h.update(_file_digest(path))
    return h.hexdigest()


# path -> (inode, size, mtime, digest) of files whose mtime was well before they were read:
# a long-running process (watch, serve) re-keys the repository on every cycle, and reading
# every YAML file again costs a self-heal more than its plan. A file changed within RACY_NS
# of its reading is read again each time (timestamps are coarser than the clock: git's
# "racy clean" rule).
_digests: dict[str, tuple[int, int, int, bytes]] = {}
RACY_NS = 2_000_000_000


def _file_digest(path: str) -> bytes:
    """sha256 of a regular file's bytes (see `_digests`)."""
    try:
        st = os.stat(path)
    except OSError:
        return b"unreadable"
    known = _digests.get(path)
    if known is not None and known[:3] == (st.st_ino, st.st_size, st.st_mtime_ns) and stat.S_ISREG(st.st_mode):
        return known[3]
    digest = _read_digest(path)
    if stat.S_ISREG(st.st_mode) and st.st_mtime_ns < time.time_ns() - RACY_NS:
        if len(_digests) > 200_000:
            _digests.clear()
        _digests[path] = (st.st_ino, st.st_size, st.st_mtime_ns, digest)
    return digest


def _read_digest(path: str) -> bytes:
    """sha256 of a regular file's bytes. A FIFO, a device or a file over the size cap is
    never read (a FIFO would block, /dev/zero never ends): validation refuses it anyway."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b"unreadable"
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
        os.close(fd)
        return f"special:{st.st_mode}:{st.st_size}:{st.st_mtime_ns}".encode()
    with os.fdopen(fd, "rb") as f:
        try:
            return hashlib.sha256(f.read(MAX_FILE_BYTES + 1)).digest()
        except OSError:
            return b"unreadable"


class _Entries(Generic[T]):
    """One kind of cache entry: `<prefix>-<key>.json` in the state dir's cache folder, the
    latest only, read back field by field (never pickle); the last one read is kept in
    memory as well: a long-running process (watch, serve) re-plans on every event, and
    reading the JSON back costs more than the rest of a self-heal's plan. Values are frozen, so handing out the
    same object is safe. A damaged or foreign entry counts as absent; a value that would not
    read back equal is not written."""

    def __init__(self, prefix: str, fmt: int, field: str, to_json: Callable[[T], Any],
                 from_json: Callable[[Any], T]) -> None:
        self.prefix, self.format, self.field = prefix, fmt, field
        self.to_json, self.from_json = to_json, from_json
        self.last: tuple[Path, str, T] | None = None

    def path(self, state: Path, key: str) -> Path:
        return state / CACHE_DIR / f"{self.prefix}-{key[:32]}.json"

    def get(self, state: Path, key: str) -> T | None:
        path = self.path(state, key)
        last = self.last
        if last is not None and last[0] == path and last[1] == key and path.exists():
            return last[2]
        try:
            with open(path, "rb") as f:
                entry = json.load(f)
            if entry["format"] != self.format or entry["key"] != key:
                return None
            value = self.from_json(entry[self.field])
        except (OSError, ValueError, TypeError, KeyError, binascii.Error):
            return None
        self.last = (path, key, value)
        return value

    def put(self, state: Path, key: str, value: T) -> None:
        try:
            text = json.dumps({"format": self.format, "key": key, self.field: self.to_json(value)},
                              allow_nan=False, separators=(",", ":"))
            back = self.from_json(json.loads(text)[self.field])
        except (ValueError, TypeError, KeyError):
            return
        if back != value:
            return
        folder = state / CACHE_DIR
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
            for old in folder.glob(f"{self.prefix}-*"):
                old.unlink(missing_ok=True)
            _write_private(folder / f".{self.prefix}-{key[:32]}.tmp", text.encode(), self.path(state, key))
        except OSError:
            pass


def _write_private(tmp: Path, data: bytes, final: Path) -> None:
    """Write `data` to `final` through `tmp`, readable by this user only (0600)."""
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, final)


# --- the JSON form of core.model's frozen dataclasses ------------------------------------


def project_to_json(project: Project) -> dict[str, Any]:
    """A project as plain JSON data: dataclasses as objects of their fields (never a cached
    property such as `_by_name`), tuples as lists, mappings as objects."""
    data = _to_json(project)
    assert isinstance(data, dict)
    return data


def project_from_json(data: Any) -> Project:
    """The project `project_to_json` wrote. ValueError, TypeError or KeyError when `data`
    has another shape: every field is checked against the dataclass's type hints."""
    project = _from_json(Project, data)
    assert isinstance(project, Project)
    return project


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("a mapping with keys other than strings")
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} has no JSON form")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _from_json(hint: Any, value: Any) -> Any:
    """`value` (from json.loads) as the type `hint` names, or an error when it does not fit."""
    if hint is Any:  # core.model's JSON: already plain data
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, value)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_json(inner, value)
    if origin is tuple:
        return tuple(_from_json(args[0], v) for v in _checked(list, value))
    if origin is Mapping:
        return {k: _from_json(args[1], v) for k, v in _checked(dict, value).items()}
    if hint is float and type(value) is int:
        return float(value)
    return _checked(hint, value)


def _dataclass(cls: type, value: Any) -> Any:
    """A dataclass from an object holding exactly its fields."""
    hints, names = _hints(cls), {f.name for f in dataclasses.fields(cls)}
    if set(_checked(dict, value)) != names:
        raise KeyError(f"{cls.__name__} wants the fields {sorted(names)}")
    return cls(**{name: _from_json(hints[name], value[name]) for name in names})


def _checked(kind: Any, value: Any) -> Any:
    """`value` when it is exactly a `kind` (a bool is no int here), else TypeError."""
    if type(value) is not kind:
        raise TypeError(f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


# --- rendered projects ---------------------------------------------------------------------
# Specs hold secrets as keyed references, never values (stages.render), so a rendered
# project may rest in the state dir beside the store, which keeps the same specs.

RENDER_FORMAT = 2  # (2: ContainerSpec.restarts_with)


def render_key(source: str, secrets: Mapping[str, str], secret_key: bytes, files: Mapping[str, bytes]) -> str:
    """What a render depends on: the validated YAML (`source`), the bytes of the repo files
    the specs read, and the secrets with their key (as an HMAC: the key is not in the state
    dir when it is kept on the server, so the entry's name tells nothing of the values)."""
    h = hashlib.sha256(f"render:{RENDER_FORMAT}:{source}".encode())
    h.update(hmac.new(secret_key or b"-", json.dumps(sorted(secrets.items())).encode(), "sha256").digest())
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def _desired_to_json(desired: Desired) -> dict[str, Any]:
    return {"project": desired.project, "definitions": list(desired.definitions), "containers": [
        [c.project, c.server, c.definition, c.replica, c.name, c.template_ref, c.spec, c.spec_hash,
         list(c.depends_on), {k: base64.b64encode(v).decode("ascii") for k, v in c.payload.items()}]
        for c in desired.containers]}


def _desired_from_json(data: Any) -> Desired:
    containers = []
    for row in _checked(list, data["containers"]):
        project, server, definition, replica, name, ref, spec, spec_hash, depends, payload = _checked(list, row)
        for text in (project, server, definition, name, ref, spec_hash, *_checked(list, depends)):
            _checked(str, text)
        containers.append(ContainerSpec(project, server, definition, _checked(int, replica), name, ref,
                                        _checked(dict, spec), spec_hash, tuple(depends),
                                        {str(k): base64.b64decode(_checked(str, v), validate=True)
                                         for k, v in _checked(dict, payload).items()}))
    definitions = tuple(_checked(str, d) for d in _checked(list, data["definitions"]))
    return Desired(_checked(str, data["project"]), tuple(containers), definitions, None)


PROJECTS: _Entries[Project] = _Entries("project", FORMAT, "project", lambda p: project_to_json(p), project_from_json)
# a rendered project rests without its commit (a new commit of the same files renders the same)
RENDERS: _Entries[Desired] = _Entries("render", RENDER_FORMAT, "desired", _desired_to_json, _desired_from_json)


def get(state: Path, key: str) -> Project | None:
    """The cached project for `key`, or None."""
    return PROJECTS.get(state, key)


def put(state: Path, key: str, project: Project) -> None:
    """Remember a valid project (the latest only); failures are ignored."""
    PROJECTS.put(state, key, project)


def get_render(state: Path, key: str) -> Desired | None:
    """The rendered project for `key` (its commit unset), or None."""
    return RENDERS.get(state, key)


def put_render(state: Path, key: str, desired: Desired) -> None:
    """Remember a rendered project (the latest only); failures are ignored."""
    RENDERS.put(state, key, replace(desired, commit=None))
