"""Files from the repository (`files:`) and env files (`env_file:`) in a rendered spec. Pure:
the engine reads the bytes (through the load Tree, so `plan --ref` reads the commit's) and
hands them here.

A rendered `files` entry keeps the content's hash, never the content: the hash joins the
spec hash, so editing `files/nginx.conf` in git recreates exactly the containers that use
it. The bytes travel beside the spec (ContainerSpec.payload) to the archive put before the
container starts. A `secret:` file contributes its keyed reference, never the value.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from typing import Any

from syncer.core.errors import SecretError
from syncer.core.labels import secret_ref
from syncer.core.model import Located, Project

Use = tuple[Located, tuple[Any, ...]]  # where a repo path is written: document and path inside it


def sources(project: Project) -> dict[str, list[Use]]:
    """Every repo-relative path the project's specs read (`files[].source`, `env_file`),
    with where each is written (to locate a missing or escaping one)."""
    found: dict[str, list[Use]] = {}
    for t in project.templates:
        _collect(t.spec, t.origin, ("spec",), found)
        for name, profile in t.profiles.items():
            _collect(profile, t.origin, ("profiles", name), found)
    for d in project.definitions:
        _collect(d.overrides, d.origin, ("overrides",), found)
    return found


def _collect(spec: Mapping[str, Any], where: Located, base: tuple[Any, ...], found: dict[str, list[Use]]) -> None:
    for i, entry in enumerate(spec.get("files") or []):
        if isinstance(entry, Mapping) and isinstance(entry.get("source"), str):
            found.setdefault(entry["source"], []).append((where, (*base, "files", i, "source")))
    for i, path in enumerate(_env_files(spec.get("env_file"))):
        found.setdefault(path, []).append((where, (*base, "env_file", i)))


def secret_names(project: Project) -> set[str]:
    """Names of the secrets `files: [{secret: NAME}]` entries hold (they must be masked too)."""
    specs: list[Mapping[str, Any]] = [d.overrides for d in project.definitions]
    for t in project.templates:
        specs.append(t.spec)
        specs.extend(t.profiles.values())
    return {str(e["secret"]) for s in specs for e in s.get("files") or []
            if isinstance(e, Mapping) and isinstance(e.get("secret"), str)}


def _env_files(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value or [] if isinstance(v, str)]


def unsafe(path: str) -> str | None:
    """Why a repo-relative path may not be read (None when it may)."""
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or "\\" in path:
        return "must be a path inside the repository (relative, without '..')"
    return None


def attach(spec: Mapping[str, Any], *, read: Mapping[str, bytes], secrets: Mapping[str, str],
           key: bytes, where: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The spec with `env_file` merged under `env` and `files` in normal form, and the
    bytes of each file by its path in the container."""
    out = dict(spec)
    env_paths = _env_files(out.pop("env_file", None))
    if env_paths:
        merged: dict[str, str] = {}
        for path in env_paths:
            merged.update(parse_env(read[path], expand=True))
        merged.update(out.get("env") or {})
        out["env"] = merged
    entries = out.pop("files", None) or []
    payload: dict[str, bytes] = {}
    files: dict[str, Any] = {}
    for entry in entries:
        data, kept = _one(entry, read, secrets, key, where)
        files[str(entry["path"])] = kept
        payload[str(entry["path"])] = data
    if files:
        out["files"] = files
    return out, payload


def _one(entry: Mapping[str, Any], read: Mapping[str, bytes], secrets: Mapping[str, str], key: bytes,
         where: str) -> tuple[bytes, dict[str, Any]]:
    kept: dict[str, Any] = {}
    if "secret" in entry:
        name = str(entry["secret"])
        if name not in secrets:
            raise SecretError(f"{where}: secret {name} (a file at {entry['path']}) is not set"
                              " (set the environment variable or add it to --secrets-file)")
        ref = secret_ref(name, secrets[name], key)
        data, kept["secret"], kept["hash"] = ref.encode("utf-8"), name, ref
        default_mode = 0o400
    elif "source" in entry:
        data = read[str(entry["source"])]
        kept["source"], kept["sha256"] = str(entry["source"]), digest(data)
        default_mode = 0o444
    else:
        data = str(entry.get("content", "")).encode("utf-8")  # secrets in it are references
        kept["sha256"] = digest(data)
        default_mode = 0o444
    kept["mode"] = mode_text(entry.get("mode", default_mode))
    for k in ("uid", "gid"):
        if entry.get(k) not in (None, ""):
            kept[k] = int(entry[k])
    return data, kept


def digest(data: bytes) -> str:
    """`sha256:` + hex of raw bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def mode_text(value: Any) -> str:
    """A file mode as four octal digits: "0440" and 0o440 (YAML 1.1's 0440) both say 0440."""
    if isinstance(value, int):
        return format(value, "04o")
    return format(int(str(value), 8), "04o")


ENV_STATEMENT = re.compile(r"(?:export[ \t]+)?([A-Za-z0-9_.]+)[ \t]*[=:][ \t]*")  # a key, up to its value
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def parse_env(data: bytes, *, expand: bool = False) -> dict[str, str]:
    """An env file as Compose reads it (its dotenv format, checked against `docker compose
    config`): `KEY=VALUE` (or `KEY: VALUE`) statements, `export ` before the key allowed, `#`
    comment lines. An unquoted value ends with its line or at a ` #` comment, and is trimmed;
    a single-quoted one is literal; a double-quoted one reads `\\n`, `\\r`, `\\t` as those
    characters and `\\X` as X. A quoted one may span lines, and what follows its closing quote
    on the line is ignored. With `expand` (Compose's reading of `.env`), `$VAR` and `${VAR}`
    (with `:-`, `-`, `:+`, `+`, `:?`, `?`) in unquoted and double-quoted values take the value
    of an earlier key, else none: the import knows no shell. Without, they stay as written, for
    the caller to read. A key alone, one starting with a digit, and a malformed line are left out."""
    env: dict[str, str] = {}
    for key, quote, raw, _, _ in env_statements(data.decode("utf-8", "replace").removeprefix("\ufeff")):
        value = raw if quote == "'" else _env_value(raw, env, escapes=quote == '"', expand=expand)
        if not key[0].isdigit():
            env[key] = value
    return env


def env_statements(text: str) -> Iterator[tuple[str, str, str, int, int]]:
    """Each statement of an env file (see parse_env): its key, its quote ("" for none), its
    value as written, and where in `text` it starts and ends (a quoted value may span lines)."""
    pos, n = 0, len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
            continue
        eol = text.find("\n", pos)
        eol = n if eol < 0 else eol
        m = ENV_STATEMENT.match(text, pos, eol)
        if text[pos] == "#" or m is None:
            pos = eol
            continue
        start, key, pos = pos, m.group(1), m.end()
        quote = text[pos] if pos < n and text[pos] in "'\"" else ""
        if quote:
            end = pos + 1
            while end < n and (text[end] != quote or text[end - 1] == "\\"):
                end += 1
            raw = text[pos + 1:end]
            after = text.find("\n", end)
            pos = n if after < 0 else after
        else:
            raw = re.split(r"\s#", text[pos:eol], maxsplit=1)[0].rstrip()
            pos = eol
        yield key, quote, raw, start, pos


def _env_value(raw: str, env: Mapping[str, str], *, escapes: bool, expand: bool) -> str:
    """One value's text: escapes read (double quotes), references replaced (`expand`), in one
    pass, so that an escaped `\\$` stays a `$`."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if escapes and c == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], raw[i + 1]))
            i += 2
        elif expand and raw.startswith("$$", i):
            out.append("$")
            i += 2
        elif expand and (m := _REFERENCE.match(raw, i)):
            out.append(_reference(m, env))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _reference(m: re.Match[str], env: Mapping[str, str]) -> str:
    """`${NAME<op>word}` or `$NAME` against `env` (an unset name reads as empty)."""
    name = m.group(1) or m.group(4)
    op, word = m.group(2) or "", m.group(3) or ""
    value = env.get(name)
    word = _env_value(word, env, escapes=False, expand=True) if op else ""
    if op in (":-", "-"):
        return word if value is None or (op == ":-" and value == "") else value
    if op in (":+", "+"):
        return word if value is not None and (op == "+" or value != "") else ""
    return value or ""


def changed_sources(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Repo files whose content differs between two rendered specs (to name them in a plan)."""
    old = before.get("files") or {}
    out = []
    for path, entry in sorted((after.get("files") or {}).items()):
        prior = old.get(path) if isinstance(old, Mapping) else None
        if "source" in entry and (not isinstance(prior, Mapping) or prior.get("sha256") != entry.get("sha256")):
            out.append(str(entry["source"]))
    return out



def archive(files: Mapping[str, tuple[bytes, int, int, int]]) -> bytes:
    """A tar archive of files (container path → (bytes, mode, uid, gid)), for one archive put."""
    import tarfile  # only an apply that writes files pays for it (and its compressors)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (data, mode, uid, gid) in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
