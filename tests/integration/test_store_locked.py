"""Another process holds the write lock of state.db (QA round F5): the write that waits says
so once, naming the file, and goes on once it can; `/health` answers 503 `unhealthy` while
writes cannot be made, 200 again once the lock is let go."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncer.adapters.store import Store, StoreError
from tests.helpers import wait_until
from tests.integration.test_watch import _running, _watch_with_api
from tests.watching import Watch

LOCKED = "is locked by another process; waiting up to"


def _hold(path: Path) -> sqlite3.Connection:
    """Another process's write, held (as `sqlite3 state.db` with `BEGIN EXCLUSIVE;` typed in)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_write_that_waits_says_so_once_then_fails_in_one_line_or_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syncer.store")
    store = Store(tmp_path, busy_timeout=2.5)
    holder = _hold(store.path)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            store.hold("web-1", "web", "h")
        assert time.monotonic() - started >= 2.4  # the whole busy timeout, not just its quiet part
        assert str(failed.value) == (f"state database {store.path}: database is locked (another process holds its"
                                     " write lock: a syncer, or a tool that opened the file)")
        with pytest.raises(StoreError):
            store.hold("web-2", "web", "h")  # a second write waits too, without a second warning
        assert store.holds() == {}  # reads go on (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.hold("web-3", "web", "h")
    store.hold("web-4", "web", "h")
    lines = [r.getMessage() for r in caplog.records if r.name == "syncer.store"]
    assert lines[0] == f"store: {store.path} {LOCKED} 2.5s"
    assert len(lines) == 2 and lines[1].startswith(f"store: {store.path} is writable again; writes go on")
    store.close()


@pytest.mark.parametrize("project", ["h1"], indirect=True)
def test_watch_says_the_store_is_locked_and_health_is_503_until_the_lock_goes(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    name = f"{project}-web"
    w, base, _ = _watch_with_api(tmp_path, project, name, watches, "--stop-timeout", "1")
    first = wait_until(lambda: _running(docker_api, project, name), 60, message="the first apply")
    with httpx.Client(timeout=30) as client:
        wait_until(lambda: client.get(f"{base}/health").status_code == 200, 30, message="the API to answer")
        holder = _hold(tmp_path / "state" / "state.db")
        try:
            started = time.monotonic()
            r = client.get(f"{base}/health")
            assert r.status_code == 503 and r.json()["status"] == "unhealthy", r.text
            assert set(r.json()) == {"status", "version", "timestamp"}  # the seed's body, as ever
            assert time.monotonic() - started < 5  # asked without waiting for the store's writes
            docker_api.kill(first["Id"])  # a self-heal: its deployment record is written before it acts
            wait_until(lambda: LOCKED in w.text(), 15, message="the watch to say the store is locked")
            assert _running(docker_api, project, name) is None  # nothing acts before its record is written
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_until(lambda: client.get(f"{base}/health").status_code == 200, 10, message="/health healthy again")
    wait_until(lambda: _running(docker_api, project, name), 60, message="the self-heal once the store is free")
    wait_until(lambda: "is writable again; writes go on" in w.text(), 10, message="the line saying it went on")
    text = w.text()
    assert text.count(LOCKED) == 1 and f"state.db {LOCKED} 30s" in text, text
    assert text.count("health: unhealthy: state database") == 1, text  # said when it began, not per probe
    assert "Traceback" not in text
    assert w.stop() == 0
