"""HEAD, dirty and a commit's subject from the `git` command (adapters/gitcli.py), on real
repositories: what every plan and apply of a git work tree asks, without GitPython."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.adapters import gitcli
from syncer.core.errors import GitError
from tests.helpers import commit_all, git


def test_head_dirty_and_subject_follow_the_work_tree(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    (repo / "sub").mkdir(parents=True)
    assert gitcli.head(repo) == (None, False)  # not a repository
    git(repo, "init", "-q", "-b", "main")
    assert gitcli.head(repo) == (None, True)  # no commit yet
    (repo / "sub/a.yaml").write_text("a: 1\n")
    sha = commit_all(repo, "first line\n\nthe body")
    assert gitcli.head(repo) == (sha, False) and gitcli.head(repo / "sub") == (sha, False)  # from inside too
    assert gitcli.commit_message(repo, sha) == "first line"
    (repo / "sub/a.yaml").write_text("a: 2\n")
    assert gitcli.head(repo) == (sha, True)  # modified
    git(repo, "checkout", "-q", "--", "sub/a.yaml")
    (repo / "new.yaml").write_text("b: 1\n")
    assert gitcli.head(repo) == (sha, True)  # untracked
    (repo / "new.yaml").unlink()
    git(repo, "checkout", "-q", "--detach")
    assert gitcli.head(repo) == (sha, False)  # detached HEAD
    assert gitcli.commit_message(repo, "0" * 40) == ""


def test_a_damaged_repository_is_one_clear_error(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a").write_text("x")
    commit_all(repo, "one")
    (repo / ".git/index").write_bytes(b"garbage, not an index")
    with pytest.raises(GitError) as info:
        gitcli.head(repo)
    assert str(info.value).startswith(f"git repository at {repo} is damaged: fatal: ")
    assert len(str(info.value).splitlines()) == 1
