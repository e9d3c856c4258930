"""HEAD, dirty and a commit's subject from the `git` command (adapters/gitcli.py), on real
repositories: what every plan and apply of a git work tree asks, without GitPython."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.adapters import cache, gitcli
from syncer.core.errors import GitError
from syncer.core.model import Project
from syncer.engine import facade as engine
from tests.helpers import commit_all, git, simple_repo, unique


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


def test_a_load_at_the_commit_of_its_cache_entry_runs_no_git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit's message never changes: a no-op plan or apply reads it from the project's
    cache entry (one `git` process less of every scheduled run), and asks git at a new commit."""
    repo = simple_repo(tmp_path / "r", unique("su-msg"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "first\n\nthe body")
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    asked: list[str] = []
    real = gitcli._git

    def counting(path: Path, *args: str) -> object:
        asked.append(args[0])
        return real(path, *args)

    monkeypatch.setattr(gitcli, "_git", counting)

    def load() -> tuple[Project, int]:  # as a new process would: nothing remembered in memory
        gitcli._messages.clear()
        cache.PROJECTS.last = None
        asked.clear()
        project = engine.load(ctx)
        return project, asked.count("log")

    assert [(p.commit_message, logs) for p, logs in [load(), load()]] == [("first", 1), ("first", 0)]
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")  # the same files at a new commit
    assert [(p.commit_message, logs) for p, logs in [load(), load()]] == [("second", 1), ("second", 0)]
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")  # a new commit, the same message
    third, logs = load()
    assert (third.commit, third.commit_message, logs) == (git(repo, "rev-parse", "HEAD"), "second", 1)
    assert load()[1] == 0
    (repo / ".git").rename(tmp_path / "git-away")  # no longer a git work tree: no commit, no message
    gone, logs = load()
    assert (gone.commit, gone.commit_message, logs) == (None, "", 0)
