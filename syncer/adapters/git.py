"""The one module that imports git (GitPython): commits, refs and trees of a repository.

Imported lazily by the engine, and only when the repository is a git work tree, so that
a plan of a plain directory does not pay for it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from syncer.core.errors import GitError
from syncer.stages.tree import MAX_FILE_BYTES, YAML_SUFFIXES, UnsafePath

_SYMLINK_MODE = 0o120000
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def open_repo(path: Path) -> git.Repo:
    """The git repository whose work tree holds `path`."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise GitError(f"{path} is not inside a git repository ({exc})") from None


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
        if path.startswith("/") or ".." in path.split("/"):
            raise UnsafePath(path, "the path must stay inside the repository")
        obj = self._blob(path)
        if obj is None or obj.type != "blob":
            return None
        if obj.mode == _SYMLINK_MODE:  # its content is the link's target, never a file's
            raise UnsafePath(path, "a symbolic link in git: refused (commit the file itself)")
        if obj.size > MAX_FILE_BYTES:
            raise UnsafePath(path, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB: refused")
        return bytes(obj.data_stream.read())

    def inside(self, path: str) -> bool:
        """False when `path` at this commit is a symlink whose target leaves the project."""
        obj = self._blob(path)
        if obj is None or obj.mode != 0o120000:
            return True
        target = PurePosixPath(path).parent / bytes(obj.data_stream.read()).decode("utf-8", "replace")
        depth = 0
        for part in target.parts:
            depth += -1 if part == ".." else (0 if part == "." else 1)
            if depth < 0 or target.is_absolute():
                return False
        return True

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


def safe_url(url: str) -> str:
    """A remote URL with any credentials removed, for logs."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def is_remote(source: str) -> bool:
    """True for a URL git clones (https://, ssh://, file://, git@host:path)."""
    return "://" in source or (source.count(":") == 1 and "@" in source.split(":")[0])


def sync_clone(url: str, dest: Path, branch: str) -> str:
    """Clone `url` into `dest` (or fetch it there) and move the work tree to origin/branch.

    The clone belongs to syncer: it is reset hard, and cloned anew when it is damaged.
    Returns the commit the work tree now holds.
    """
    url, env = _without_credentials(url)
    if not (dest / ".git").exists():
        return _clone(url, dest, branch, env)
    try:
        return _fetch_reset(git.Repo(dest), url, branch, env)
    except (InvalidGitRepositoryError, NoSuchPathError, ValueError, GitCommandError) as exc:
        # Unreachable remote or damaged clone? A fresh clone beside it tells: if it works,
        # it replaces the old one; if not, the remote is the problem and the clone stays.
        import shutil

        fresh = dest.with_name(dest.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        try:
            sha = _clone(url, fresh, branch, env)
        except GitError:
            reason = _first_line(exc) if isinstance(exc, GitCommandError) else str(exc)
            raise GitError(f"git {safe_url(url)} ({branch}): {reason}") from None
        shutil.rmtree(dest, ignore_errors=True)
        fresh.rename(dest)
        return sha


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its `user:password@`, and the environment that gives them to git as an
    HTTP header instead: never in the clone's .git/config, never on a command line (which
    every user of the host can read in the process list)."""
    match = re.match(r"^(https?://)([^/@]+)@(.*)$", url)
    if match is None:
        return url, {}
    user, _, password = match.group(2).partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
           "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}", "GIT_TERMINAL_PROMPT": "0"}
    return match.group(1) + match.group(3), env


def _clone(url: str, dest: Path, branch: str, env: dict[str, str]) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # (the state dir: the store and the key)
    try:
        repo = git.Repo.clone_from(url, dest, branch=branch, single_branch=True, env=env or None)
    except GitCommandError as exc:
        raise GitError(f"cannot clone {safe_url(url)} ({branch}): {_first_line(exc)}") from None
    return str(repo.head.commit.hexsha)


def _fetch_reset(repo: git.Repo, url: str, branch: str, env: dict[str, str]) -> str:
    if repo.remotes.origin.url != url:  # also drops credentials an older syncer wrote there
        repo.remotes.origin.set_url(url)
    with repo.git.custom_environment(**env):
        repo.remotes.origin.fetch(f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
    target = repo.commit(f"origin/{branch}")
    repo.git.checkout("-B", branch, target.hexsha)
    repo.git.reset("--hard", target.hexsha)
    repo.git.clean("-fdq")
    return str(target.hexsha)


def _first_line(exc: GitCommandError) -> str:
    """The line of git's stderr that says what went wrong (`fatal: ...`), credentials masked."""
    lines = []
    for line in str(exc.stderr or exc).splitlines():
        line = line.strip()
        if line.startswith("stderr:"):  # GitPython's wrapping: "stderr: 'fatal: ..."
            line = line[len("stderr:"):].strip()
        line = line.strip("'").strip()
        if line and not line.startswith(("Cloning into", "cmdline:", "Cmd(")):
            lines.append(_CREDENTIALS.sub(r"\1***@", line))
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else f"git exited with status {exc.status}"


def current_branch(path: Path) -> str | None:
    """The branch checked out in the repository holding `path`; None when detached or not git."""
    try:
        return str(git.Repo(path, search_parent_directories=True).active_branch.name)
    except (InvalidGitRepositoryError, NoSuchPathError, TypeError, ValueError):
        return None


def fetch_problem(path: Path) -> str | None:
    """Why a push cannot be fetched into the repository holding `path` (None when it can):
    it must be a git clone with a remote."""
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return f"{path} is not a git clone"
    if not repo.remotes:
        return f"the git repository at {repo.working_tree_dir} has no remote"
    return None


def fast_forward(path: Path, branch: str) -> str:
    """Fetch `branch` from the remote of the clone holding `path` (origin, or the first one)
    and fast-forward the checked-out branch to it; the commit now checked out.

    A work tree the user owns is never reset: raises GitError when another branch is
    checked out, when local commits diverge, or when local changes would be overwritten.
    """
    repo = open_repo(path)
    names = [r.name for r in repo.remotes]
    if not names:
        raise GitError(f"the git repository at {repo.working_tree_dir} has no remote")
    remote = repo.remote("origin" if "origin" in names else names[0])
    try:
        remote.fetch(f"+refs/heads/{branch}:refs/remotes/{remote.name}/{branch}")
        target = repo.commit(f"{remote.name}/{branch}")
        checked_out = None if repo.head.is_detached else repo.active_branch.name
        if checked_out != branch:
            raise GitError(f"cannot fast-forward {branch}: the work tree at {repo.working_tree_dir} has"
                           f" {checked_out or 'a detached HEAD'} checked out")
        repo.git.merge("--ff-only", target.hexsha)
    except GitCommandError as exc:
        raise GitError(f"git {safe_url(str(remote.url))} ({branch}): {_first_line(exc)}") from None
    return str(repo.head.commit.hexsha)
