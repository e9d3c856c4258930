"""What a Compose service mounts — volumes, configs, secrets — as syncer `volumes`, `tmpfs`
and `files` entries. A relative bind mount of a file or of a directory, and a config with
`file:`, are copied into the repository (`copy` returns the repo path of a file, each file
of a directory by its path inside it, or None when the source is neither), so that they
reach every server the same way; a Compose secret becomes a `secret:` file."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Collection
from typing import Any

from syncer.stages.compose_fields import is_relative, split_volume
from syncer.stages.shortforms import PROPAGATION, volumes

Reader = Callable[[str], "bytes | None"]
Lister = Callable[[str], "list[str] | None"]  # the files under a directory, relative to it; None: no directory
Copy = Callable[[str], "str | dict[str, str] | None"]
Host = Callable[[str], "str | None"]  # a Compose-relative or ~ path → the host path Compose mounts (None: unknown)
# (volume | tmpfs | file | host, the syncer entry (a directory's: a list of file entries), why it
# cannot be carried); `host`: a bind mount of the host directory Compose mounts
Mount = tuple[str, Any, str]
MAX_DIR_FILES = 100  # the files a directory may hold to be carried (each one is a `files:` entry)

_READ_ONLY = {"ro", "readonly"}
_HARMLESS = {"rw", "", "z", "Z"}  # (z, Z: SELinux labels, which syncer's short form carries as written)


def volume(value: Any, files: RepoFiles, host: Host = lambda rel: None) -> Mount:
    """One entry of a service's `volumes:`, short or long form. A relative bind mount of data
    (`_data`) is the host directory Compose mounts, by its absolute path (`host`); one of
    files the container only reads is copied into the repository as `files:` entries."""
    if isinstance(value, dict):
        return _long(value, files, host)
    source, target, options = split_volume(str(value))
    unknown = [o for o in options if o not in _READ_ONLY | _HARMLESS | set(PROPAGATION)]
    if unknown:
        return "volume", None, f"'{value}': option {unknown[0]} is not carried"
    read_only = any(o in _READ_ONLY for o in options)
    if source and is_relative(source):
        label = next((o for o in options if o in ("z", "Z")), "")
        return _file(source, target, read_only, files, value, host, selinux=label,
                     propagation=next((o for o in options if o in PROPAGATION), ""))
    if source.startswith("~"):
        where = _home(source, host)
        if where is None:
            return "volume", None, f"'{value}': {_UNKNOWN_HOME}"
        return "host", ":".join([where, *str(value).split(":")[1:]]), ""  # the home of who ran Compose
    if not source:
        return "volume", {"mount_path": target}, ""
    return "volume", str(value), ""


def undeclared(item: Any, names: dict[str, str]) -> str | None:
    """The named volume a service's entry mounts that the top-level `volumes:` does not
    declare (Compose refuses it: "service refers to undefined volume"); None for any other."""
    source = item.get("name") if isinstance(item, dict) else str(item).partition(":")[0] if ":" in str(item) else None
    if not source or str(source).startswith(("/", ".", "~", "$")):
        return None
    return None if source in names else str(source)


def named(item: Any, names: dict[str, str], drivers: dict[str, dict[str, Any]] | None = None,
          external: Collection[str] = ()) -> Any:
    """A named volume's entry with the Docker name its declaration gives it (`volume_names`),
    and the driver and options it is made with (`volume_drivers`), or `external: true` for
    one declared external (`external_volumes`: it must exist, as Compose requires) — either
    in the long form."""
    made = {**(drivers or {}), **{key: {"external": True} for key in external}}
    if isinstance(item, dict):
        key = item.get("name")
        return {**item, "name": names[key], **made.get(key, {})} if key in names else item
    source, sep, rest = str(item).partition(":")
    if not (sep and source in names):
        return item
    if source not in made:
        return f"{names[source]}:{rest}"
    return {**volumes([f"{names[source]}:{rest}"])[0], **made[source]}  # (the long form carries them)


def external_volumes(doc: dict[str, Any]) -> frozenset[str]:
    """The keys of the top-level volumes declared `external: true` (or Compose's older
    `external: {name: x}`)."""
    return frozenset(str(key) for key, conf in (doc.get("volumes") or {}).items()
                     if isinstance(conf, dict) and conf.get("external") not in (None, False))


# what a private key looks like in a file: PEM (`-----BEGIN ... PRIVATE KEY-----`), OpenSSH's,
# or a JSON store of them (Traefik's acme.json: "PrivateKey", a certificate's "key")
_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|\"PrivateKey\"\s*:|\"key\"\s*:\s*\"[A-Za-z0-9+/=]{64,}")


def _stays(source: str, read_only: bool, files: RepoFiles) -> str:
    """Why a relative bind mount stays on the host rather than in the repository ("" when it
    is copied): it holds a private key (a file, or one of a directory's files), or it holds
    what the container writes, or what Compose's deployment left — a directory that is
    missing (Compose makes it), mounted read-write, empty or too big to carry, or an empty
    file mounted read-write (`acme.json`, say)."""
    rel = posixpath.normpath(source)
    data = files.read(rel)
    if data is not None:
        return "key" if _KEY.search(data) else "data" if not read_only and not data else ""
    inner = files.listdir(rel)
    if inner is None or not inner or len(inner) > MAX_DIR_FILES:
        return "data"
    if any(_KEY.search(files.read(posixpath.join(rel, name)) or b"") for name in inner):
        return "key"
    return "data" if not read_only else ""


def _file(source: str, target: str, read_only: bool, files: RepoFiles, shown: Any, host: Host, *,
          long: bool = False, selinux: str = "", propagation: str = "") -> Mount:
    where, why = host(source), _stays(source, read_only, files)
    if where is not None and why:  # it stays on the host, as under Compose (its SELinux label too)
        if long:
            return "host", {"mount_path": target, "host_path": where, **({"read_only": True} if read_only else {}),
                            **({"selinux": selinux} if selinux else {}),
                            **({"propagation": propagation} if propagation else {})}, ""
        options = ",".join(o for o in ("ro" if read_only else "", selinux, propagation) if o)
        return "host", f"{where}:{target}" + (f":{options}" if options else ""), ""
    if why == "key":
        return "file", None, (f"'{shown}': {source} holds a private key, which the import never copies into the"
                              " repository: mount it from an absolute host path")
    path = files.copy_any(source)
    if path is None:
        return "file", None, (f"'{shown}': {source} is neither a file nor a directory of at most"
                              f" {MAX_DIR_FILES} files next to the Compose file (syncer's files: carries"
                              " those; mount anything else from an absolute host path)")
    mode = {"mode": "0444"} if read_only else {}
    if isinstance(path, str):
        return "file", {"path": target, "source": path, **mode}, ""
    if not path:  # (a data directory, as a rule: what the container writes there would be lost)
        return "file", None, (f"'{shown}': {source} is an empty directory; a named volume keeps what the"
                              " container writes there")
    return "file", [{"path": posixpath.join(target, inner), "source": repo, **mode}
                    for inner, repo in sorted(path.items())], ""


def _long(value: dict[str, Any], files: RepoFiles, host: Host) -> Mount:
    kind = value.get("type", "volume")
    target = value.get("target", "")
    if not target or (kind == "bind" and not value.get("source")):
        return kind, None, f"a {kind} mount needs {'a target' if not target else 'a source'}"
    for key in sorted(set(value) - {"type", "source", "target", "read_only", "volume", "bind", "tmpfs"}):
        return kind, None, f"{target}: {key}: not carried"
    nested = value.get(kind) or {}
    if nested and not (kind == "bind" and set(nested) <= {"create_host_path", "selinux", "propagation"}) \
            and not (kind == "tmpfs" and set(nested) <= {"size", "mode"}):
        return kind, None, f"{target}: {kind} options ({', '.join(sorted(nested))}) are not carried"
    read_only = bool(value.get("read_only"))
    source = str(value.get("source") or "")
    label = str(nested["selinux"]) if nested.get("selinux") in ("z", "Z") else ""  # (a bind's)
    propagation = str(nested.get("propagation") or "") if kind == "bind" else ""
    if propagation and propagation not in PROPAGATION:
        return kind, None, f"{target}: bind propagation {propagation!r} is none of {', '.join(PROPAGATION)}"
    if kind == "tmpfs":  # the short form's options, which Docker reads (size in bytes or with a unit)
        options = ",".join(f"{k}={_mode(nested[k]) if k == 'mode' else nested[k]}" for k in ("size", "mode")
                           if k in nested)
        return "tmpfs", f"{target}:{options}" if options else target, ""
    if kind == "bind":
        if is_relative(source):
            return _file(source, target, read_only, files, f"{source}:{target}", host, long=True, selinux=label,
                         propagation=propagation)
        home = _home(source, host) if source.startswith("~") else source
        if home is None:
            return kind, None, f"{target}: {_UNKNOWN_HOME}"
        entry: dict[str, Any] = {"mount_path": target, "host_path": home, **({"selinux": label} if label else {}),
                                 **({"propagation": propagation} if propagation else {})}
    elif kind == "volume":
        entry = {"mount_path": target}
        if source:
            entry["name"] = source
    else:
        return kind, None, f"{target}: type {kind} is not carried"
    if read_only:
        entry["read_only"] = True
    return "host" if kind == "bind" and source.startswith("~") else "volume", entry, ""


_UNKNOWN_HOME = "a path under ~ depends on who runs it; write the absolute path"


def _home(source: str, host: Host) -> str | None:
    """`~` or `~/x` from the home `host` knows (None for `~user/x`, or no home known)."""
    return host(source) if source == "~" or source.startswith("~/") else None


def _mode(value: Any) -> str:
    # Compose (and the import's reading of its file) reads `mode: 0440` as octal, 288; syncer's
    # YAML (1.2) would read 440: written as octal digits, which syncer reads as a mode
    return f"0{value:o}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _ownership(ref: dict[str, Any], entry: dict[str, Any], conf: dict[str, Any]) -> None:
    if conf.get("file"):  # `compose up` bind-mounts the file as it is: its `mode`, `uid`, `gid` go unused
        entry["mode"] = "0444"  # (readable by the service's user, as the host's file usually is)
        return
    for key in ("uid", "gid"):
        if key in ref:
            entry[key] = int(ref[key])
    if "mode" in ref:
        entry["mode"] = _mode(ref["mode"])


def config_file(ref: dict[str, Any], conf: dict[str, Any], copy: Copy) -> tuple[dict[str, Any], str]:
    """A service's config: written at `target` (Compose's default: /<name>)."""
    name = ref["source"]
    target = ref.get("target") or f"/{name}"
    entry: dict[str, Any] = {"path": target}
    if conf.get("file"):
        path = copy(str(conf["file"]))
        if not isinstance(path, str):
            return entry, f"'{name}': {conf['file']} is not a file next to the Compose file"
        entry["source"] = path
    elif "content" in conf:
        entry["content"] = conf["content"]
    elif conf.get("environment"):
        entry["content"] = "${inputs." + str(conf["environment"]).lower() + "}"
    else:
        return entry, f"'{name}': an external config (syncer writes files from the repository)"
    _ownership(ref, entry, conf)
    return entry, ""


def secret_file(ref: dict[str, Any], conf: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A service's secret: a `secret:` file at `target` (Compose's default /run/secrets/<name>)."""
    name = ref["source"]
    target = ref.get("target") or name
    if not str(target).startswith("/"):
        target = f"/run/secrets/{target}"
    secret = str(conf.get("environment") or name).upper()
    # readable by the service's user, as under Compose (a bind of the file, or 0444 for one from
    # the environment) and Swarm: syncer's own default (0400, root's) would lock a non-root app out
    entry: dict[str, Any] = {"path": target, "secret": secret, "mode": "0444"}
    _ownership(ref, entry, conf)
    if conf.get("external"):
        return entry, f"'{name}': an external secret (give it to syncer as secret {secret})"
    return entry, ""


class RepoFiles:
    """What the import copies into the new repository's files/ (`files`: repo path → bytes),
    read next to the Compose file; each source once."""

    def __init__(self, read: Reader, listdir: Lister, files: dict[str, str | bytes]) -> None:
        self.read, self.listdir, self.files = read, listdir, files
        self.copied: dict[str, str] = {}  # Compose-relative source → files/ path
        self.trees: dict[str, dict[str, str]] = {}  # a directory copied: its files → files/ paths

    def copy(self, path: str, keep: Callable[[bytes], bytes] | None = None) -> str | None:
        """Copy a file next to the Compose file under files/ (through `keep`, when given);
        its repo path, or None."""
        rel = posixpath.normpath(path)
        if rel in self.copied:
            return self.copied[rel]
        data = self.read(rel)
        if data is None:
            return None
        data = keep(data) if keep else data
        target = self._free(f"files/{posixpath.basename(rel) or 'file'}")
        self.files[target] = data
        self.copied[rel] = target
        return target

    def copy_any(self, path: str) -> str | dict[str, str] | None:
        """`copy` of a file; of a directory, each of its files (at most MAX_DIR_FILES) under
        one folder of files/: {path inside the directory: repo path}; None otherwise."""
        copied = self.copy(path)
        rel = posixpath.normpath(path)
        if copied is not None or rel in self.trees:
            return copied if copied is not None else self.trees[rel]
        inner = self.listdir(rel)
        if inner is None or len(inner) > MAX_DIR_FILES:
            return None
        folder = self._free(f"files/{posixpath.basename(rel) or 'dir'}")
        tree: dict[str, str] = {}
        for name in inner:
            data = self.read(posixpath.join(rel, name))
            if data is None:
                return None
            self.files[tree.setdefault(name, f"{folder}/{name}")] = data
        self.trees[rel] = tree
        return tree

    def _free(self, target: str) -> str:
        """`target`, or `n-<name>` beside it when a file or folder of files/ has that name."""
        base, n, out = posixpath.basename(target), 1, target
        while out in self.files or any(f.startswith(out + "/") for f in self.files):
            n += 1
            out = f"{posixpath.dirname(target)}/{n}-{base}"
        return out


Shared = tuple[tuple[Any, ...], Any, str]  # (where the entry is, the Compose volume entry to mount, why it cannot be)


def volumes_from(services: dict[str, Any], name: str, value: Any) -> list[Shared]:
    """The `volumes:` entries a service's `volumes_from: [other[:ro|:rw]]` mounts: each other
    service's own (and what its `volumes_from` gives it), in the mode asked (none: each entry's
    own, as Docker does), those at a target the service mounts itself left out (its own win,
    as under Docker). Refused: another container (`container:x`), a mode other than ro or rw,
    and an anonymous volume or a tmpfs of the other service (Docker shares that very volume: a copy would be another)."""
    own = {_target(v) for v in (services.get(name) or {}).get("volumes") or []}
    out: list[Shared] = []
    seen = {name}

    def walk(refs: Any, where: tuple[Any, ...], outer: str) -> None:
        for i, ref in enumerate(refs if isinstance(refs, list) else [refs]):
            other, _, mode = str(ref).partition(":")
            if other == "container":
                out.append((where + (i,), None, f"'{ref}': another container's volumes are not carried; declare"
                                                " them on this service"))
                continue
            if other not in services:
                out.append((where + (i,), None, f"'{other}' is not a service of this Compose file"))
                continue
            if mode not in ("", "ro", "rw"):  # (Docker refuses it too: `invalid mode`)
                out.append((where + (i,), None, f"'{ref}': the mode '{mode}' is neither ro nor rw"))
                continue
            if other in seen:
                continue
            seen.add(other)
            mode = outer or mode
            raw = services[other] or {}
            for j, v in enumerate(raw.get("volumes") or []):
                entry, why = _in_mode(v, mode)
                if why:
                    out.append((("services", other, "volumes", j), None, f"'{other}' mounts {why}: Docker shares that"
                                " one, a copy would be another; name it under the top-level volumes:"))
                elif _target(v) not in own:
                    out.append((("services", other, "volumes", j), entry, ""))
            walk(raw.get("volumes_from") or [], ("services", other, "volumes_from"), mode)

    walk(value, ("services", name, "volumes_from"), "")
    return out


def _target(entry: Any) -> str:
    return str(entry.get("target", "")) if isinstance(entry, dict) else split_volume(str(entry))[1]


def _in_mode(entry: Any, mode: str) -> tuple[Any, str]:
    """A volume entry read-only (`ro`), read-write (`rw`) or as it is (""); why it cannot be shared."""
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        if kind == "tmpfs" or (kind == "volume" and not entry.get("source")):
            return None, f"{'a tmpfs' if kind == 'tmpfs' else 'an anonymous volume'} at {entry.get('target')}"
        return ({**entry, "read_only": mode == "ro"} if mode else entry), ""
    source, target, options = split_volume(str(entry))
    if not source:
        return None, f"an anonymous volume at {target}"
    if not mode:
        return entry, ""
    kept = [o for o in options if o and o not in _READ_ONLY | {"rw"}]
    return ":".join([source, target, ",".join([*kept, mode])]), ""
