"""The state dir and the git clone keep to themselves (issue 12, point 9; point 10's git reason).

Real files, real processes, real git (and a real HTTP server for a clone with credentials).
"""

from __future__ import annotations

import base64
import fcntl
import http.server
import multiprocessing
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.adapters import git as gitsource
from syncer.adapters.lock import ApplyLock
from syncer.adapters.store import Store
from syncer.core.errors import GitError, LockHeld
from syncer.engine import secrets
from syncer.engine.project import Context, load
from tests.helpers import commit_all, git, git_init, simple_repo, unique


def test_a_clean_commit_stays_clean_with_the_state_dir_inside_it(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "repo", unique("hyg"))
    git_init(repo)
    ctx = Context(repo=repo)
    first, second = load(ctx), load(ctx)  # the first makes .syncer/, the second sees it
    secrets.secret_key(ctx.state(repo))
    assert not first.dirty and not second.dirty and not load(ctx).dirty
    assert git(repo, "status", "--porcelain") == ""
    git(repo, "add", "-A")  # `git add -A` would have committed the key
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_state_dir_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "repo", unique("hyg"))
    ctx = Context(repo=repo, state_dir=tmp_path / "state")
    project = load(ctx)
    state = ctx.state(repo)
    secrets.secret_key(state)
    Store(state).close()
    with ApplyLock(state, "test"):
        pass
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    found = [p for p in state.rglob("*")]
    assert {p.name for p in found} >= {".gitignore", "secret.key", "state.db", "apply.lock"}, found
    for p in found:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, (p, oct(mode))
    assert project.config.name


def _make_key(state: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        out.put(secrets.secret_key(Path(state)).hex())
    except Exception as exc:  # noqa: BLE001 - the test reports what failed
        out.put(f"error: {exc!r}")


def test_first_use_by_several_processes_makes_one_key(tmp_path: Path) -> None:
    mp = multiprocessing.get_context("fork")
    for round_ in range(12):
        state = tmp_path / f"s{round_}"
        state.mkdir(mode=0o700)
        barrier, out = mp.Barrier(6), mp.Queue()
        procs = [mp.Process(target=_make_key, args=(str(state), barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        keys = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert len(set(keys)) == 1 and len(keys[0]) == 64, keys
        assert keys[0] == (state / "secret.key").read_bytes().hex()
        assert [p.name for p in state.iterdir()] == ["secret.key"]  # no temporary left behind


def test_a_reader_of_the_lock_file_does_not_block_applies(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with ApplyLock(state, "first"):
        pass
    stranger = os.open(state / "apply.lock", os.O_RDONLY)  # e.g. another user's `cat`, or flock(1)
    try:
        fcntl.flock(stranger, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with ApplyLock(state, "syncer apply"):
            with pytest.raises(LockHeld) as held:  # a real holder still excludes the next one
                ApplyLock(state, "second").__enter__()
            assert f"pid {os.getpid()}" in str(held.value) and "syncer apply" in str(held.value)
    finally:
        os.close(stranger)


def test_git_errors_end_in_git_reason(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        gitsource.sync_clone(f"file://{tmp_path}/nowhere", tmp_path / "clone", "main")
    assert str(info.value).endswith(f"fatal: '{tmp_path}/nowhere' does not appear to be a git repository")


class _Server(http.server.SimpleHTTPRequestHandler):
    """git's dumb HTTP protocol: static files behind Basic auth."""

    expected = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    source = tmp_path / "src"
    simple_repo(source, "creds")
    git_init(source)
    bare = tmp_path / "served" / "repo.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    git(bare, "update-server-info")
    handler = type("H", (_Server,), {"expected": "Basic " + base64.b64encode(b"ci-bot:s3cr3t-t0ken").decode()})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "served")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo.git", source
    finally:
        server.shutdown()
        server.server_close()


def test_clone_credentials_never_reach_the_git_config(tmp_path: Path, git_http: tuple[str, Path]) -> None:
    url, source = git_http
    with_creds = url.replace("http://", "http://ci-bot:s3cr3t-t0ken@")
    dest = tmp_path / "clone"
    sha = gitsource.sync_clone(with_creds, dest, "main")
    assert sha == git(source, "rev-parse", "HEAD")
    config = (dest / ".git" / "config").read_text()
    assert "s3cr3t" not in config and url in config
    (source / "definitions").mkdir(exist_ok=True)
    (source / "definitions" / "x.yaml").write_text("name: x\ntemplate: box\n")
    new = commit_all(source, "more")
    git(tmp_path / "served" / "repo.git", "fetch", "-q", str(source), "main:main")
    git(tmp_path / "served" / "repo.git", "update-server-info")
    assert gitsource.sync_clone(with_creds, dest, "main") == new  # the fetch authenticates too
    assert "s3cr3t" not in (dest / ".git" / "config").read_text()
    with pytest.raises(GitError) as info:  # no credentials: refused by the server, said plainly
        gitsource.sync_clone(url, tmp_path / "other", "main")
    assert "s3cr3t" not in str(info.value) and "fatal:" in str(info.value)
