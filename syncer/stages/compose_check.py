"""The repository an import is about to write, validated as `syncer validate` will read it,
each problem said at the Compose service it came from: a Compose value syncer's spec refuses
(`healthcheck: {intervall: 5s}`, `init: yes`, an undeclared volume) is the import's located
error, not a later one in a file the user did not write. What is refused is left out of
what is written — as what cannot be carried is — so that `--partial` writes a repository
that validates. Pure."""

from __future__ import annotations

from typing import Any

from syncer.core.errors import Diagnostic, InvalidProject
from syncer.stages.compose import Imported
from syncer.stages.compose_vars import dump
from syncer.stages.load import SourceFile, locate, parse
from syncer.stages.tree import FilesTree
from syncer.stages.validate import build_project

ROUNDS = 10  # a field left out may let validation read further (a template, then its definition)


def checked(imported: Imported, root: str) -> list[Diagnostic]:
    """What `syncer validate` would refuse in the imported repository, located in the Compose
    file; the params the report already asks for (`needs`, `shell`) are not problems. Each
    refused field is left out of `imported.files` (a spec field, a dependency, a definition's
    field; else the service's files), and the rest checked again, until nothing is refused."""
    found: list[Diagnostic] = []
    for _ in range(ROUNDS):
        refused = _refused(imported, root)
        found.extend(d for d in (_at_service(r, imported) for r in refused) if d not in found)
        if not refused or not _leave_out(imported, refused):
            break
    return found


def _refused(imported: Imported, root: str) -> list[Diagnostic]:
    try:
        build_project(FilesTree(imported.files), root)
    except InvalidProject as exc:
        asked = [tuple(where.split(" ", 1)) for where in (*imported.needs, *imported.shell)]
        return [d for d in exc.diagnostics if not any(d.file == file and param in d.message for file, param in asked)]
    return []


def _at_service(d: Diagnostic, imported: Imported) -> Diagnostic:
    origin = imported.origins.get(d.file)
    if origin is None:  # (syncer.yaml: the import's own making)
        return d
    service, file, line, column = origin
    return Diagnostic(file, line, column, f"service '{service}': {d.message} ({d.file}:{d.line}:{d.column} in the"
                                          " repository it becomes)")


def _leave_out(imported: Imported, refused: list[Diagnostic]) -> bool:
    """Leave out of each file what its problems are in (their positions read in the file as it
    was checked): whether anything was left out."""
    left = False
    for file in dict.fromkeys(d.file for d in refused):
        content = imported.files.get(file)
        source = parse(file, content.encode())[0] if isinstance(content, str) and file in imported.origins else None
        if source is not None and isinstance(source.docs[0], dict):
            left |= _leave_out_of(imported, source, [d for d in refused if d.file == file])
    return left


def _leave_out_of(imported: Imported, source: SourceFile, refused: list[Diagnostic]) -> bool:
    """A spec field (the Compose field, or fields, it was made of), a dependency alone (on a
    service left out), a definition's replicas; else the service whole (what it is is refused)."""
    doc: dict[str, Any] = source.docs[0]
    out: list[tuple[Any, ...]] = []
    for d in refused:
        top = _at(source, (), doc, d)
        inner = doc.get(top) if top is not None else None
        deeper = _at(source, (top,), inner, d) if top in ("spec", "depends_on") and inner else None
        if deeper is None and top != "replicas":
            return _leave_out_service(imported, imported.origins[source.path][0])
        out.append((top,) if deeper is None else (top, deeper))
    for path in sorted(set(out), key=_order, reverse=True):  # (a list's later entries first)
        parent = doc[path[0]] if len(path) == 2 else doc
        del parent[path[-1]]
        if len(path) == 2 and not parent and path[0] != "spec":
            del doc[path[0]]
    imported.files[source.path] = dump(doc)
    return True


def _order(path: tuple[Any, ...]) -> tuple[Any, ...]:
    return (str(path[0]), len(path), path[-1] if isinstance(path[-1], int) else str(path[-1]))


def _leave_out_service(imported: Imported, service: str) -> bool:
    gone = [f for f, origin in imported.origins.items() if origin[0] == service and f in imported.files]
    for rel in gone:
        del imported.files[rel]
    return bool(gone)


def _at(source: SourceFile, path: tuple[Any, ...], value: Any, d: Diagnostic) -> Any:
    """The key (or index) of the mapping or list `value`, at `path` in the file, whose entry
    holds d's position: the last one that starts at or before it."""
    where = None
    steps = value if isinstance(value, dict) else range(len(value)) if isinstance(value, list) else ()
    for step in steps:
        if locate(source, 0, (*path, step), key=True) <= (d.line, d.column):
            where = step
    return where
