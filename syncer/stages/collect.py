"""Diagnostics accumulated while validating, each located at FILE:LINE:COLUMN, and the YAML
documents of one file as validation reads them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from syncer.core.errors import Diagnostic
from syncer.core.model import Located
from syncer.stages import schema
from syncer.stages.load import SourceFile, Tree, locate, parse
from syncer.stages.tree import UnsafePath


@dataclass
class Collector:
    """The diagnostics found so far, and the files they point into."""

    files: dict[str, SourceFile] = field(default_factory=dict)
    found: list[Diagnostic] = field(default_factory=list)

    def at(self, where: Located, path: Iterable[Any], message: str, *, key: bool = False) -> None:
        """Record a problem located at `path` inside document `where`."""
        source = self.files.get(where.file)
        line, col = locate(source, where.doc, path, key=key) if source else (0, 0)
        self.found.append(Diagnostic(where.file, line, col, message))

    def schema(self, v: Draft202012Validator, data: Any, where: Located, **kw: Any) -> bool:
        """Check `data` against a schema; True when it passed."""
        ok = True
        for path, at_key, message in schema.iter_problems(v, data, **kw):
            self.at(where, path, message, key=at_key)
            ok = False
        return ok


def yaml_files(tree: Tree, folder: str, out: Collector) -> list[str]:
    """The YAML files under `folder`; none (and a diagnostic) when the folder is refused."""
    try:
        return tree.yaml_files(folder)
    except UnsafePath as exc:
        out.found.append(Diagnostic(exc.path, 1, 1, exc.problem))
        return []


def documents(tree: Tree, path: str, out: Collector) -> list[tuple[Located, Any]]:
    try:
        data = tree.read(path)
    except UnsafePath as exc:  # the message names the path, never what it points at
        out.found.append(Diagnostic(exc.path, 1, 1, exc.problem))
        return []
    if data is None:
        out.found.append(Diagnostic(path, 0, 0, "file not found"))
        return []
    source, problems = parse(path, data)
    out.found.extend(problems)
    if source is None:
        return []
    out.files[path] = source
    docs = []
    for i, doc in enumerate(source.docs):
        where = Located(path, i)
        if isinstance(doc, dict):
            docs.append((where, doc))
        else:
            out.at(where, (), f"expected a mapping (key: value), got {yaml_kind(doc)}")
    return docs


def yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__
