"""The one module that imports git (GitPython): commits, refs and trees of a repository.

Imported lazily by the engine, and only when the repository is a git work tree, so that
a plan of a plain directory does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from syncer.errors import GitError
from syncer.load import YAML_SUFFIXES


def open_repo(path: Path) -> git.Repo:
    """The git repository whose work tree holds `path`."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise GitError(f"{path} is not inside a git repository ({exc})") from None


def head(path: Path) -> tuple[str | None, bool]:
    """HEAD's commit and whether the work tree has changes; (None, False) outside git."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None, False
    try:
        sha = repo.head.commit.hexsha
    except ValueError:  # no commit yet
        return None, True
    return sha, repo.is_dirty(untracked_files=True)


@dataclass
class GitTree:
    """The files of one commit, read from the object store without touching the work tree."""

    commit: Any
    prefix: str  # the project's folder inside the repository, "" at its root

    @property
    def sha(self) -> str:
        """The commit's full hash."""
        return str(self.commit.hexsha)

    def _blob(self, path: str) -> Any:
        full = str(PurePosixPath(self.prefix, path)) if self.prefix else path
        try:
            return self.commit.tree / full
        except KeyError:
            return None

    def read(self, path: str) -> bytes | None:
        """The bytes of a repo-relative file at this commit, or None."""
        obj = self._blob(path)
        if obj is None or obj.type != "blob":
            return None
        return bytes(obj.data_stream.read())

    def yaml_files(self, folder: str) -> list[str]:
        """Every YAML file under `folder` at this commit, relative to the project."""
        obj = self._blob(folder)
        if obj is None or obj.type != "tree":
            return []
        cut = len(self.prefix) + 1 if self.prefix else 0
        found = [
            item.path[cut:] for item in obj.traverse()
            if item.type == "blob" and item.path.endswith(YAML_SUFFIXES)
            and not PurePosixPath(item.path).name.startswith(".")
        ]
        return sorted(found)


def tree_at(project_root: Path, ref: str) -> GitTree:
    """The project's files at `ref` (a commit, tag or branch)."""
    repo = open_repo(project_root)
    try:
        commit = repo.commit(ref)
    except (BadName, ValueError, GitCommandError) as exc:
        raise GitError(f"unknown git ref '{ref}': {str(exc).strip().splitlines()[0]}") from None
    work = Path(repo.working_tree_dir or project_root).resolve()
    prefix = project_root.resolve().relative_to(work).as_posix()
    return GitTree(commit, "" if prefix == "." else prefix)
