"""`syncer import`: a Compose file on disk → a syncer repository on disk.

The decisions are the compose stage's; this module only reads the Compose file (and the
files it names, relative to its folder) and writes the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syncer.core.errors import Diagnostic, InvalidProject, UsageError
from syncer.stages.compose import import_compose as convert


@dataclass(frozen=True)
class ImportReport:
    """What was written (repo-relative paths), what could not be carried, and the secrets
    the new repository needs (name → where it came from)."""

    project: str
    out: Path
    written: list[str] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)


def import_compose(compose_file: Path, *, out: Path, project: str | None = None,
                   partial: bool = False) -> ImportReport:
    """Convert `compose_file` into a repository under `out` (which must be empty or absent).

    When something cannot be carried, nothing is written unless `partial`; the report lists
    it either way. A file that is not a Compose file at all raises InvalidProject."""
    try:
        data = compose_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {compose_file}: {exc.strerror or exc.__class__.__name__}") from None
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new --out")
    folder = compose_file.resolve().parent
    imported = convert(str(compose_file), data, read=lambda rel: _read_file(folder, rel), project=project,
                       folder=folder.name)
    if not imported.files:
        raise InvalidProject(imported.problems)
    report = ImportReport(imported.project, out, [], sorted(imported.problems), dict(sorted(imported.secrets.items())))
    if imported.problems and not partial:
        return report
    for rel, content in sorted(imported.files.items()):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        report.written.append(rel)
    return report


def _read_file(folder: Path, rel: str) -> bytes | None:
    path = folder / rel
    if not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


__all__ = ["ImportReport", "import_compose"]
