"""Loading a Compose application: its files parsed, each one's `extends` applied, merged in
order (compose_merge), and the applications its `include:` names copied in, as Compose
(compose-go) loads them. Pure: files are read through `read`, relative to the first file's
folder."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from syncer.core.errors import Diagnostic
from syncer.stages.compose_merge import Path, Problems, clean, extended, merge, named, rebased
from syncer.stages.compose_text import as_compose_text
from syncer.stages.load import SourceFile, locate_in, parse


def load_all(files: list[tuple[str, bytes]], read: Callable[[str], bytes | None] = lambda rel: None,
             envs: dict[str, list[str]] | None = None,
             ) -> tuple[list[SourceFile], dict[str, Any] | None, list[Diagnostic]]:
    """Compose files (path, content) parsed, each one's `extends` applied (`read` reads a
    file one names, relative to the first file's folder) and merged in order: their sources
    (to locate problems in), the merged document (None when one is not a Compose file) and
    what stops the merge or cannot be merged, located. `envs`, when given, is filled with the
    env files each included service's variables come from (see `included`)."""
    sources, docs = [], []
    problems: Problems = []
    for i, (path, data) in enumerate(files):
        source, refused = parse(path, data, compose=True)
        if source is None:
            return [], None, refused
        doc = source.docs[0] if len(source.docs) == 1 else None
        if not isinstance(doc, dict) or (i == 0 and not isinstance(doc.get("services"), dict) and "include" not in doc):
            return [], None, [Diagnostic(path, 1, 1, "not a Compose file: expected one mapping"
                                                     + (" with services:" if i == 0 else ""))]
        sources.append(source)
        docs.append(extended(doc, read, problems))
    merged: Any = clean(docs[0])
    for doc in docs[1:]:
        merged = merge(merged, doc, (), problems)
    merged = as_compose_text(included(merged, read, problems, sources, envs=envs if envs is not None else {}))
    return sources, merged, [Diagnostic(*locate_in(sources, 0, where, key=True), f"{named(where)}: {why}")
                             for where, why in problems]


RESOURCES = ("services", "networks", "volumes", "configs", "secrets")
MAX_INCLUDES = 20  # files an include chain may nest (a loop through other folders ends here too)


def included(doc: dict[str, Any], read: Callable[[str], bytes | None], problems: Problems,
             sources: list[SourceFile], seen: tuple[str, ...] = (), *, base: str = "",
             envs: dict[str, list[str]]) -> dict[str, Any]:
    """`doc` with the Compose applications its `include:` names copied in, as Compose copies
    them: each loaded on its own (its files merged, its `extends` and `include` applied, its
    relative paths from its own folder or `project_directory`), its services, networks,
    volumes, configs and secrets added; a name both define is a problem, never merged.

    An included application's variables come from its entry's `env_file` (paths from the
    including file's folder), else from the `.env` in its own folder, and only for what the
    including application's environment leaves unset (Compose's rule: the outer one wins).
    `envs` gets, for each service copied in, those env files from the outermost include in,
    as paths from the first file's folder (`base` is the including application's folder)."""
    entries = doc.get("include")
    if entries is None:
        return doc
    out = {k: v for k, v in doc.items() if k != "include"}
    if not isinstance(entries, list):
        problems.append((("include",), "expected a list of Compose files"))
        return out
    for i, entry in enumerate(entries):
        where: Path = ("include", i)
        paths = [entry] if isinstance(entry, str) else entry.get("path") if isinstance(entry, dict) else None
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            problems.append((where, "name the Compose file(s) to include (a path, or `path:`)"))
            continue
        options = entry if isinstance(entry, dict) else {}
        folder = posixpath.normpath(str(options.get("project_directory") or posixpath.dirname(paths[0]) or "."))
        folder = "" if folder == "." else folder
        files = _env_files(options.get("env_file"), folder, read, problems, (*where, "env_file"))
        loaded = _application(paths, read, folder, problems, sources, where, seen, base, envs)
        for key in RESOURCES:
            mine = out.setdefault(key, {}) if isinstance(out.get(key, {}), dict) else {}
            for name, value in ((loaded or {}).get(key) or {}).items():
                if name in mine:
                    problems.append((where, f"{key} '{name}' is defined both here and in {paths[0]}:"
                                            " Compose does not merge them"))
                else:
                    mine[name] = rebased(value, folder) if key == "services" else _moved_file(value, folder)
                    if key == "services" and (files or name in envs):
                        envs[name] = [_from_root(base, f) for f in files] + envs.get(name, [])
        for key in RESOURCES:
            if out.get(key) == {} and key not in doc:
                del out[key]
    return out


def _env_files(given: Any, folder: str, read: Callable[[str], bytes | None], problems: Problems,
               where: Path) -> list[str]:
    """An include entry's env files (from the including file's folder): its `env_file` (a path
    or a list; each must exist, as Compose demands), else the included folder's `.env` if any."""
    if given is None:  # (one in the including file's own folder shares its .env, which wins anyway)
        return [f"{folder}/.env"] if folder and read(f"{folder}/.env") is not None else []
    names = [given] if isinstance(given, str) else given
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append((where, "expected a path or a list of paths"))
        return []
    missing = [n for n in names if read(posixpath.normpath(n)) is None]
    for name in missing:
        problems.append((where, f"{name}: no such file next to this one"))
    return [posixpath.normpath(n) for n in names if n not in missing]


def _from_root(base: str, rel: str) -> str:
    return posixpath.normpath(posixpath.join(base, rel)) if base else rel


def _application(paths: list[str], read: Callable[[str], bytes | None], folder: str, problems: Problems,
                 sources: list[SourceFile], where: Path, seen: tuple[str, ...], base: str,
                 envs: dict[str, list[str]]) -> dict[str, Any] | None:
    """The Compose application of an `include` entry's files (merged), its own `extends` and
    `include` applied with paths from `folder`; None (a problem said) when one cannot be read."""
    inner = (lambda rel: read(posixpath.normpath(posixpath.join(folder, rel)))) if folder else read
    merged: Any = None
    for path in paths:
        norm = posixpath.normpath(path)
        if len(seen) >= MAX_INCLUDES:
            problems.append((where, f"includes nest deeper than {MAX_INCLUDES} files: refused"))
            return None
        if norm in seen:
            problems.append((where, f"{path} includes itself ({' -> '.join((*seen, norm))})"))
            return None
        data = read(norm)
        source = parse(path, data, compose=True)[0] if data is not None else None
        doc = source.docs[0] if source is not None and len(source.docs) == 1 else None
        if source is None or not isinstance(doc, dict):
            problems.append((where, f"{path} is not a Compose file next to this one"))
            return None
        sources.append(source)
        doc = extended(doc, inner, problems)
        merged = clean(doc) if merged is None else merge(merged, doc, (), problems)
    return included(merged, inner, problems, sources, (*seen, *(posixpath.normpath(p) for p in paths)),
                    base=_from_root(base, folder) if folder else base, envs=envs)


def _moved_file(value: Any, folder: str) -> Any:
    """A config's or secret's `file:` (relative to its own Compose file) from the first file's folder."""
    if folder and isinstance(value, dict) and isinstance(value.get("file"), str) \
            and not value["file"].startswith("/"):
        return {**value, "file": "./" + posixpath.normpath(posixpath.join(folder, value["file"]))}
    return value
