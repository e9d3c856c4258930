"""Where a repository's files come from (a directory, or a git commit), and where the project
root is. No YAML here: finding and listing files must not pay for the parser, which a
cached plan never needs."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Protocol

from syncer.core.errors import ProjectNotFound
from syncer.core.record import Record, record

PROJECT_FILE = "syncer.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1 << 20  # no file syncer reads from a repository is larger than this


class UnsafePath(ValueError):
    """A repository path syncer refuses to read: it leads outside the repository, is not a
    regular file (a FIFO, a device), or is too large. The message names the path, never
    what it points at."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def resolve_in_repo(root: Path, path: str, *, real_root: str | None = None) -> Path:
    """The real location of the repo-relative `path`, refused (UnsafePath) when it is
    absolute, climbs out with '..', or resolves (through symbolic links) outside `root`
    (`real_root`: the root's own real path, when the caller resolved it already).

    The one check for every path a repository names: templates, definitions, syncer.yaml,
    folders, `files.source`, `env_file`.
    """
    if path.startswith("/") or ".." in path.replace(os.sep, "/").split("/"):
        raise UnsafePath(path, "the path must stay inside the repository")
    base = real_root or os.path.realpath(root)
    real = os.path.realpath(os.path.join(base, path))
    if real != base and not real.startswith(base.rstrip("/") + "/"):
        raise UnsafePath(path, "the path leads outside the repository (through a symbolic link): refused")
    return Path(real)


def read_regular(root: Path, path: str, *, limit: int = MAX_FILE_BYTES, real_root: str | None = None) -> bytes | None:
    """The bytes of the repo-relative regular file `path` (None when absent), read without
    ever blocking or reading without end: a FIFO, a device or a file over `limit` bytes
    is refused (UnsafePath), and so is a path that leads outside the repository."""
    real = resolve_in_repo(root, path, real_root=real_root)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        return None
    except OSError as exc:  # a symbolic link loop, no permission...
        raise UnsafePath(path, f"cannot be read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(path, "not a regular file (a FIFO, socket or device): refused")
        if st.st_size > limit:
            raise UnsafePath(path, f"the file is larger than {limit // 1024} KiB: refused")
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise UnsafePath(path, f"the file is larger than {limit // 1024} KiB: refused")
    return data


class Tree(Protocol):
    """Where files come from: a directory, or a git commit (see gitsource)."""

    def read(self, path: str) -> bytes | None:
        """The bytes of a repo-relative file, or None when absent; UnsafePath when the
        path is refused (outside the repository, not a regular file, too large)."""

    def yaml_files(self, folder: str) -> list[str]:
        """Repo-relative paths of every YAML file under `folder`, any depth, sorted;
        UnsafePath when `folder` leads outside the repository."""

    def inside(self, path: str) -> bool:
        """False when reading `path` would leave the repository (a symlink leading out)."""


class FilesTree:
    """A repository held in memory (path → text or bytes): what `syncer import` is about to
    write, validated before a byte reaches the disk."""

    def __init__(self, files: Mapping[str, str | bytes]) -> None:
        self.files = files

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when absent."""
        data = self.files.get(path)
        return data.encode("utf-8") if isinstance(data, str) else data

    def yaml_files(self, folder: str) -> list[str]:
        """Every YAML file under `folder`, sorted."""
        prefix = folder.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(prefix) and p.endswith(YAML_SUFFIXES))

    def inside(self, path: str) -> bool:
        """Always: it holds nothing but its own files."""
        return True


@record
class DirTree(Record):
    """A repository on disk."""

    root: Path

    @cached_property
    def real_root(self) -> str:
        """The root's real path, resolved once for every file read through this tree (one
        load): the links inside the repository are still resolved at each read."""
        return os.path.realpath(self.root)

    def read(self, path: str) -> bytes | None:
        """The bytes of a repo-relative regular file, or None when absent (see read_regular)."""
        return read_regular(self.root, path, real_root=self.real_root)

    def yaml_files(self, folder: str) -> list[str]:
        """Repo-relative paths of every YAML file under `folder`, any depth, sorted."""
        base = resolve_in_repo(self.root, folder, real_root=self.real_root)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fn in filenames:
                if fn.endswith(YAML_SUFFIXES) and not fn.startswith("."):
                    # relative to the folder as written: a file's path says where the user put it
                    found.append(os.path.join(folder, os.path.relpath(os.path.join(dirpath, fn), base)))
        return sorted(os.path.normpath(p).replace(os.sep, "/") for p in found)

    def inside(self, path: str) -> bool:
        """False when `path` resolves (symlinks followed) outside the repository."""
        root = self.root.resolve()
        return (root / path).resolve().is_relative_to(root)


def find_root(start: Path) -> Path:
    """`start` or the nearest parent holding syncer.yaml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise ProjectNotFound(
        f"no {PROJECT_FILE} in {start} or any parent directory (use --repo DIR)"
    )

_EDITOR_TEMP = (".swp", ".swx", ".swo", "~", ".tmp", ".kate-swp")  # an editor's own files while it saves


def watched(path: str, state: str) -> bool:
    """Whether a change of `path` in the work tree is one to plan on: the YAML, and every other
    file the specs may read (env files, `files:` sources, SOPS files — their content is part of
    the spec hash); not git's, the state dir's, or an editor's temporary files."""
    name = path.rsplit("/", 1)[-1]
    return (not path.startswith(state) and "/.git/" not in path and not name.startswith(".#")
            and not name.endswith(_EDITOR_TEMP))
