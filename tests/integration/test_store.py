"""The state database against a real SQLite file: threads, other processes, file modes."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from syncer.adapters.store import Store, StoreError, now
from syncer.core import clock

T = TypeVar("T")


class _Rollback(Exception):
    """Raised inside a transaction to roll it back."""


def test_threads_sharing_one_store_never_see_rows_of_an_uncommitted_transaction(tmp_path: Path) -> None:
    """Regression: rows were fetched after the store's lock was released, so a reader on the
    shared connection stepped through rows that a writer's open transaction had just added
    (and then rolled back)."""
    store = Store(tmp_path)
    with store.transaction():
        for i in range(300):
            store.hold(f"c{i:04d}", "stable", "h")
    problems: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        try:
            while not stop.is_set():
                with pytest.raises(_Rollback), store.transaction():
                    for i in range(20):
                        store.hold(f"ghost-{n}-{i}", "ghost", "h")
                        store.upsert_definition(f"ghost-{n}-{i}", "local", "box")
                    raise _Rollback
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            problems.append(repr(exc))

    def reader() -> None:
        try:
            for _ in range(100):
                holds, definitions = store.holds(), store.definitions()
                if len(holds) != 300 or any(k.startswith("ghost") for k in holds) or definitions:
                    problems.append(f"wrong rows: {len(holds)} holds, {len(definitions)} definitions")
        except Exception as exc:  # noqa: BLE001
            problems.append(repr(exc))

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in writers + readers:
        t.start()
    for t in readers:
        t.join(timeout=120)
    stop.set()
    for t in writers:
        t.join(timeout=120)
    store.close()
    assert sorted(set(problems)) == []


def test_threads_writing_and_reading_concurrently_lose_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    problems: list[str] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                ident = store.add_deployment(run_id=None, definition=f"d{n}", server="local", revision=i,
                                             actions=["create"], trigger="test", commit=None)
                store.log(ident, f"line {i}")
                if store.deployment(ident)["logs"][0]["line"] != f"line {i}":
                    problems.append(f"{ident}: wrong log")
                store.deployments(definition=f"d{n}", limit=1000)
        except Exception as exc:  # noqa: BLE001
            problems.append(repr(exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert problems == []
    assert store.count_deployments() == 240
    assert all(store.count_deployments(definition=f"d{n}") == 40 for n in range(6))
    store.close()


_HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO meta (key, value, updated_at) VALUES ('other', '1', 'x')")
print("holding", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def _in_thread(call: Callable[[], T]) -> T:
    """Run `call` in another thread (where a lock leaked by this one would block) with a timeout."""
    out: list[T] = []
    t = threading.Thread(target=lambda: out.append(call()), daemon=True)
    t.start()
    t.join(timeout=10)
    assert out, "the store is frozen: a call from another thread never returned"
    return out[0]


def test_a_transaction_that_cannot_begin_raises_store_error_and_frees_the_store(tmp_path: Path) -> None:
    """Regression: a failed BEGIN (another process held the write lock past the busy timeout)
    surfaced as a bare sqlite3 error and kept the store's lock, freezing every other thread."""
    store = Store(tmp_path, busy_timeout=0.2)
    other = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store.path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "holding"
        with pytest.raises(StoreError, match="locked"):
            store.add_samples([("web", "web-1", now(), 1.0, 10)])
        with pytest.raises(StoreError, match="locked"):
            store.start_run("test", None, 1)
        assert _in_thread(store.runs) == []  # reads go on while another process writes (WAL)
    finally:
        assert other.stdin is not None
        other.stdin.write("\n")
        other.stdin.close()
        other.wait(timeout=30)
    _in_thread(lambda: store.add_samples([("web", "web-1", now(), 1.0, 10)]))
    store.add_samples([("web", "web-1", now(), 2.0, 20)])
    assert len(store.samples("web", "0", "9")) == 2
    assert store.get_meta("other") == 1
    store.close()


def test_a_failed_body_rolls_back_and_the_next_transaction_works(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(_Rollback), store.transaction():
        store.set_meta("k", 1)
        raise _Rollback
    assert store.get_meta("k") is None
    with store.transaction():
        store.set_meta("k", 2)
    assert _in_thread(lambda: store.get_meta("k")) == 2
    store.close()


def test_the_store_writes_times_with_the_one_clock(tmp_path: Path) -> None:
    store = Store(tmp_path)
    before = clock.stamp()
    run = store.start_run("test", None, 1)
    started = store.runs()[0]["started_at"]
    assert store.runs()[0]["id"] == run
    assert before <= started <= clock.stamp()
    assert clock.iso(clock.epoch(started), ms=True) == started
    assert now().endswith("Z") and len(now()) == len(clock.stamp())
    store.close()


def test_a_second_store_on_the_same_file_migrates_nothing_twice(tmp_path: Path) -> None:
    first = Store(tmp_path)
    first.set_meta("k", "v")
    second = Store(tmp_path)
    assert second.get_meta("k") == "v"
    assert second.integrity() == "ok"
    first.close()
    second.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; sqlite3.connect(sys.argv[1])"
                    ".execute('PRAGMA user_version = 999')", str(tmp_path / "state.db")], check=True)
    with pytest.raises(StoreError, match="newer syncer"):
        Store(tmp_path)


def test_the_database_files_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = Store(state)
    store.set_meta("k", "v")
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    store.close()


def test_a_transaction_inside_another_is_a_savepoint_of_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction():
        store.set_meta("outer", 1)
        with pytest.raises(_Rollback), store.transaction():
            store.set_meta("inner", 1)
            raise _Rollback
        ident = store.upsert_definition("web", "local", "box")  # opens its own transaction inside
    assert (store.get_meta("outer"), store.get_meta("inner")) == (1, None)
    assert store.definition("web")["id"] == ident
    with pytest.raises(_Rollback), store.transaction():
        store.upsert_definition("api", "local", "box")
        raise _Rollback
    assert [d["name"] for d in store.definitions()] == ["web"]
    store.close()


def test_the_apply_lock_file_is_private(tmp_path: Path) -> None:
    from syncer.adapters.lock import LOCK_FILE, ApplyLock

    (tmp_path / LOCK_FILE).touch(mode=0o644)
    with ApplyLock(tmp_path, "test"):
        assert stat.S_IMODE((tmp_path / LOCK_FILE).stat().st_mode) == 0o600


_OPENER = """
import sys, time
from pathlib import Path
from syncer.adapters.store import Store
while time.time() < float(sys.argv[2]):
    pass
store = Store(Path(sys.argv[1]))
store.set_meta(sys.argv[3], 1)
store.close()
"""


def test_processes_opening_a_new_state_dir_at_once_all_migrate_it(tmp_path: Path) -> None:
    import time

    start = str(time.time() + 1.0)  # every process opens at this moment
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, str(tmp_path), start, f"p{n}"],
                              stderr=subprocess.PIPE, text=True) for n in range(6)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    store = Store(tmp_path)
    assert all(store.get_meta(f"p{n}") == 1 for n in range(6))
    store.close()


def test_git_webhook_delivery_ids_are_kept_bounded_in_number_and_age(tmp_path: Path) -> None:
    """Issue 11: a redelivery is recognised across restarts, so the ids live in the store; the
    table keeps the newest `keep` and none seen before `before`, pruned on insert."""
    store = Store(tmp_path)
    try:
        past = "2000-01-01T00:00:00.000Z"
        assert [store.first_hook_delivery(f"github:{n}", keep=3, before=past) for n in range(5)] == [True] * 5
        assert store.hook_deliveries_kept() == 3
        assert not store.first_hook_delivery("github:4", keep=3, before=past)  # a redelivery
        assert store.first_hook_delivery("gitea:4", keep=3, before=past)  # another provider's id
        assert store.first_hook_delivery("github:0", keep=3, before=past)  # forgotten: the oldest went
        assert store.hook_deliveries_kept() == 3
        assert store.first_hook_delivery("github:new", keep=3, before="9999-01-01T00:00:00.000Z")
        assert store.hook_deliveries_kept() == 0  # everything was seen before `before`
    finally:
        store.close()
