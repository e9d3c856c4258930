"""`syncer import`: a Compose file on disk → a syncer repository on disk.

The decisions are the compose stage's; this module only reads the Compose file (and the
files it names, relative to its folder) and writes the result."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from syncer.core.errors import Diagnostic, InvalidProject, UsageError
from syncer.stages.compose_vars import env_secrets
from syncer.stages.compose import import_compose as convert
from syncer.stages.compose_check import checked
from syncer.stages.compose_merge import override_file
from syncer.stages.compose_names import prefix_problem


@dataclass(frozen=True)
class ImportReport:
    """What was written (repo-relative paths), what could not be carried, and the secrets
    the new repository needs (name → where it came from)."""

    project: str
    out: Path
    written: list[str] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # services left out (their profiles) → why
    from_env: list[str] = field(default_factory=list)  # the secrets syncer.yaml lets the environment give
    needs: dict[str, str] = field(default_factory=dict)  # params to give (where → the Compose variable)
    merged: list[str] = field(default_factory=list)  # the files merged into the first, in order
    host_paths: dict[str, str] = field(default_factory=dict)  # host directories bind-mounted → the service
    override_found: bool = False  # the last of them is the override `docker compose` reads beside it
    shell: dict[str, str] = field(default_factory=dict)  # params Compose took from the shell (where → variable)


def import_compose(compose_file: Path, *, out: Path, project: str | None = None,
                   partial: bool = False, profiles: tuple[str, ...] = (), more: tuple[Path, ...] = (),
                   override: bool = True, env_files: tuple[Path, ...] = (),
                   environ: Mapping[str, str] | None = None, name_prefix: str = "") -> ImportReport:
    """Convert `compose_file` (with the files of `more` merged into it, in order, as
    `docker compose -f A -f B` merges them) into a repository under `out` (which must be
    empty or absent). Given alone, a file `docker compose` looks for gets the override file
    beside it merged in, as `docker compose` run in that folder does, unless not `override`.
    Relative paths in every file are read from the first file's folder, as Compose reads them.
    The variables come from the `.env` beside it, or from `env_files` instead (Compose's
    `--env-file`); the project's name and profiles, when not given, from COMPOSE_PROJECT_NAME
    and COMPOSE_PROFILES in `environ` (the process's environment by default), else in those.

    When something cannot be carried, nothing is written unless `partial`; the report lists
    it either way. A file that is not a Compose file at all raises InvalidProject.
    `name_prefix` begins each definition's name (its container's) but a container_name's: two
    Compose applications' `db` side by side on one host; one no name may begin with raises
    UsageError."""
    if why := prefix_problem(name_prefix):
        raise UsageError(f"--name-prefix: {why}")
    folder = compose_file.resolve().parent
    found = override_file(compose_file.name, lambda name: (folder / name).is_file()) \
        if override and not more else None
    merged = [*more, *([compose_file.parent / found] if found else [])]
    data, extra = _read(compose_file), [(str(p), _read(p)) for p in merged]
    given_env = [_read(p) for p in env_files] or None  # (a missing one: as Compose, "cannot read")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new --out")
    imported = convert(str(compose_file), data, read=lambda rel: _read_file(folder, rel), project=project,
                       folder=folder.name, listdir=lambda rel: _list_files(folder, rel), profiles=profiles,
                       more=extra, root=str(folder), home=str(Path.home()),
                       environ=os.environ if environ is None else environ, env_files=given_env,
                       name_prefix=name_prefix)
    if not imported.files:
        raise InvalidProject(imported.problems)
    # what syncer would refuse in what is written too, whatever else cannot be carried: every
    # problem at once, and what `--partial` writes validates (checked leaves the refused out)
    imported.problems.extend(checked(imported, str(out)))
    report = ImportReport(imported.project, out, [], sorted(imported.problems), dict(sorted(imported.secrets.items())),
                          dict(sorted(imported.skipped.items())), env_secrets(imported.secrets),
                          dict(sorted(imported.needs.items())), [str(p) for p in merged],
                          dict(sorted(imported.host_paths.items())), found is not None,
                          dict(sorted(imported.shell.items())))
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


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None


def _read_file(folder: Path, rel: str) -> bytes | None:
    path = folder / rel
    if not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


LISTED_AT_MOST = 1000  # a directory bigger than this is not carried anyway: stop looking


def _list_files(folder: Path, rel: str) -> list[str] | None:
    """The regular files under the directory `rel` (relative to it, `/`-separated, sorted);
    None when `rel` is no directory. Symlinks are left out: in the container Compose mounts,
    one resolves to the container's files, not to the host's."""
    top = folder / rel
    if not top.is_dir():
        return None
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")  # (symlinked ones are not walked)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found.append(path.relative_to(top).as_posix())
        if len(found) > LISTED_AT_MOST:
            break
    return sorted(found)


__all__ = ["ImportReport", "import_compose"]
