"""The repository an import is about to write, validated as `syncer validate` will read it,
each problem said at the Compose service it came from: a Compose value syncer's spec refuses
(`healthcheck: {intervall: 5s}`, `init: yes`, an undeclared volume) is the import's located
error, not a later one in a file the user did not write. Pure."""

from __future__ import annotations

from syncer.core.errors import Diagnostic, InvalidProject
from syncer.stages.compose import Imported
from syncer.stages.tree import FilesTree
from syncer.stages.validate import build_project


def checked(imported: Imported, root: str) -> list[Diagnostic]:
    """What `syncer validate` would refuse in the imported repository, located in the Compose
    file; the params the report already asks for (`needs`, `shell`) are not problems."""
    try:
        build_project(FilesTree(imported.files), root)
    except InvalidProject as exc:
        asked = [tuple(where.split(" ", 1)) for where in (*imported.needs, *imported.shell)]
        return [_at_service(d, imported) for d in exc.diagnostics
                if not any(d.file == file and param in d.message for file, param in asked)]
    return []


def _at_service(d: Diagnostic, imported: Imported) -> Diagnostic:
    origin = imported.origins.get(d.file)
    if origin is None:  # (syncer.yaml: the import's own making)
        return d
    service, file, line, column = origin
    return Diagnostic(file, line, column, f"service '{service}': {d.message} ({d.file}:{d.line}:{d.column} in the"
                                          " repository it becomes)")
