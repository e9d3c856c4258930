"""Where a repository's files come from (a directory, or a git commit), and where the project
root is. No YAML here: finding and listing files must not pay for the parser, which a
cached plan never needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from syncer.core.errors import ProjectNotFound

PROJECT_FILE = "syncer.yaml"
YAML_SUFFIXES = (".yaml", ".yml")


class Tree(Protocol):
    """Where files come from: a directory, or a git commit (see gitsource)."""

    def read(self, path: str) -> bytes | None:
        """The bytes of a repo-relative file, or None when absent."""

    def yaml_files(self, folder: str) -> list[str]:
        """Repo-relative paths of every YAML file under `folder`, any depth, sorted."""

    def inside(self, path: str) -> bool:
        """False when reading `path` would leave the repository (a symlink leading out)."""


@dataclass(frozen=True)
class DirTree:
    """A repository on disk."""

    root: Path

    def read(self, path: str) -> bytes | None:
        """The bytes of a repo-relative file, or None when absent."""
        try:
            return (self.root / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def yaml_files(self, folder: str) -> list[str]:
        """Repo-relative paths of every YAML file under `folder`, any depth, sorted."""
        base = self.root / folder
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fn in filenames:
                if fn.endswith(YAML_SUFFIXES) and not fn.startswith("."):
                    found.append(os.path.relpath(os.path.join(dirpath, fn), self.root))
        return sorted(p.replace(os.sep, "/") for p in found)

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
