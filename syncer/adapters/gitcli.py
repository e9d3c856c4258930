"""HEAD, dirty and a commit's subject from the `git` command itself, without GitPython.

Every `plan` and `apply` of a git work tree asks these two things; GitPython's import alone
(about 60 ms) costs a no-op more than the two `git` processes that answer them. Everything
else about repositories (trees at a ref, clones, fetches) stays in `adapters.git`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from syncer.core.errors import GitError

_QUIET = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # status never takes the index lock; messages in English
_messages: dict[tuple[str, str], str] = {}  # (repository, sha) -> first line: a commit never changes


def _git(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                          env={**os.environ, **_QUIET}, check=False,
                          stdin=subprocess.DEVNULL)


def head(path: Path) -> tuple[str | None, bool]:
    """HEAD's commit and whether the work tree has changes (one `git status`); (None, False)
    outside git, (None, True) before the first commit."""
    out = _git(path, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    if out.returncode != 0:
        if "not a git repository" in out.stderr:
            return None, False
        raise GitError(f"git repository at {path} is damaged: {_said(out.stderr, out.returncode)}")
    sha, dirty = None, False
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            sha = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return (sha, dirty) if sha is not None else (None, True)


def commit_message(path: Path, sha: str) -> str:
    """The first line of a commit's message ("" when unknown)."""
    key = (str(path), sha)
    if key in _messages:
        return _messages[key]
    out = _git(path, "log", "-1", "--format=%B", sha, "--")
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    if not lines:
        return ""
    if len(_messages) > 1000:
        _messages.clear()
    _messages[key] = message = lines[0][:200]
    return message


def _said(stderr: str, code: int) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else
                f"git exited with status {code}")
