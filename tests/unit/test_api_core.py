"""The API's small pure parts: rate-limit windows, coalesced calls, memo, parsing helpers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from syncer.api.auth import RateLimiter
from syncer.api.caches import Coalesced, Memo
from syncer.api.server import parse_listen
from syncer.api.service import Page
from syncer.api.routes.instances import uptime_from_status
from syncer.engine.keys import hash_api_key, key_permissions
from syncer.engine.samples import cpu_percent, memory_used
from syncer.core.errors import SyncerError, UsageError
from tests.helpers import wait_until


def test_a_key_gets_its_limit_per_minute_window_then_a_fresh_one() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    answers = [limiter.hit("key_a", 3) for _ in range(4)]
    assert [a[0] for a in answers] == [True, True, True, False]
    assert [a[1] for a in answers] == [2, 1, 0, 0] and {a[2] for a in answers} == {1060}
    assert limiter.hit("key_b", 3)[0] is True  # another key has its own window
    now[0] = 1060.0
    assert limiter.hit("key_a", 3) == (True, 2, 1120)


def test_simultaneous_callers_share_calls_and_never_get_a_result_older_than_their_call() -> None:
    starts: list[float] = []

    def compute() -> int:
        starts.append(time.monotonic())
        time.sleep(0.2)
        return len(starts)

    shared = Coalesced(compute)
    seen: list[tuple[float, int]] = []
    ready = threading.Barrier(24)  # (together: starting 24 threads takes a while on a busy machine)

    def caller() -> None:
        ready.wait()
        began = time.monotonic()
        seen.append((began, shared.get()))

    threads = [threading.Thread(target=caller) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 24 and len(starts) <= 3
    assert all(starts[n - 1] >= began for began, n in seen)


def test_a_coalesced_failure_reaches_every_caller_it_served() -> None:
    def boom() -> int:
        raise SyncerError("docker is down")

    with pytest.raises(SyncerError, match="docker is down"):
        Coalesced(boom).get()


def test_memo_keeps_a_value_and_an_error_for_its_ttl() -> None:
    calls = []

    def compute() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise SyncerError("once")
        return len(calls)

    memo = Memo(compute, ttl=0.05)
    assert memo.get() == 1 and memo.get() == 1 and len(calls) == 1
    time.sleep(0.06)
    with pytest.raises(SyncerError):
        memo.get()
    with pytest.raises(SyncerError):
        memo.get()
    assert len(calls) == 2


def test_a_slow_memo_answers_the_last_value_while_one_refresh_runs() -> None:
    """A plan of 10k definitions takes seconds: /status answers the last one meanwhile."""
    release, calls = threading.Event(), []

    def compute() -> int:
        calls.append(1)
        if len(calls) > 1:
            release.wait(10)
        else:
            time.sleep(0.03)
        return len(calls)

    memo = Memo(compute, ttl=0.01, slow=0.02)
    assert memo.get() == 1
    time.sleep(0.15)  # stale, even counting the spacing of four computations
    started = time.monotonic()
    assert [memo.get() for _ in range(5)] == [1] * 5 and time.monotonic() - started < 0.5
    wait_until(lambda: len(calls) >= 2, 5)  # (its thread may start late on a busy machine)
    assert len(calls) == 2  # one refresh in the background, not one per caller
    release.set()
    wait_until(lambda: memo.get() >= 2, 5)


@pytest.mark.parametrize("status, seconds", [("Up Less than a second", 0), ("Up 1 second", 1), ("Up 5 minutes", 300),
                                             ("Up About a minute", 60), ("Up About an hour (healthy)", 3600),
                                             ("Up 3 days (unhealthy)", 259200), ("Exited (0) 2 hours ago", None),
                                             ("Created", None), ("Up 2 weeks (Paused)", 1209600)])
def test_uptime_is_read_from_the_engines_list_status(status: str, seconds: int | None) -> None:
    assert uptime_from_status(status) == seconds


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "host:", "host:99999", "host:x"):
        with pytest.raises(UsageError):
            parse_listen(bad)


def test_pages_cut_lists() -> None:
    assert Page(2, 2).cut([1, 2, 3, 4, 5]) == [3, 4] and Page(3, 2).cut([1, 2, 3, 4, 5]) == [5]
    assert Page(9, 20).cut([1]) == [] and Page(2, 20).offset == 20


def test_keys_are_kept_as_hashes_and_write_implies_read() -> None:
    assert hash_api_key("syncer_abc") == hash_api_key("syncer_abc") != hash_api_key("syncer_abd")
    assert hash_api_key("syncer_abc").startswith("sha256:") and "syncer_abc" not in hash_api_key("syncer_abc")
    assert key_permissions("write") == ["read", "write"] and key_permissions("read") == ["read"]


def test_cpu_percent_is_the_change_between_two_readings() -> None:
    assert cpu_percent(None, (10, 100, 2)) is None
    assert cpu_percent((0, 0, 2), (50, 1000, 2)) == 10.0  # 50 of 1000 host ns, 2 CPUs
    assert cpu_percent((50, 1000, 2), (50, 1000, 2)) is None  # no host time passed
    stats = {"memory_stats": {"usage": 5000, "stats": {"total_inactive_file": 1000}}}
    assert memory_used(stats) == 4000 and memory_used({"memory_stats": {}}) is None


def test_an_error_message_naming_what_the_caller_sent_is_cut_short() -> None:
    """A 404 for a 100 kB definition id repeated the whole id."""
    from syncer.api.service import MESSAGE_LIMIT, error_body

    message = error_body("not_found", f"no definition '{'x' * 100_000}' in the store")["error"]["message"]
    assert len(message) == MESSAGE_LIMIT and message.startswith("no definition 'xxx") and message.endswith("…")
    assert error_body("not_found", "no definition 'web'")["error"]["message"] == "no definition 'web'"


def test_a_store_that_fails_a_sampling_round_is_one_warning_line_not_a_traceback(
        tmp_path: Any, monkeypatch: Any, caplog: Any) -> None:
    """QA: with the state database locked by another process, the sampler logged `metric
    sampling failed` with a whole traceback at every round."""
    import logging

    from syncer.adapters.store import StoreError
    from syncer.engine.samples import SampleRecorder

    rec = SampleRecorder(tmp_path, lambda: None, interval=0.01, retention=60)  # type: ignore[arg-type,return-value]

    def locked(store: Any) -> int:
        rec._stopping.set()
        raise StoreError("state database /x/state.db: database is locked (another syncer process is writing it)")

    monkeypatch.setattr(rec, "once", locked)
    with caplog.at_level(logging.WARNING, logger="syncer.engine.samples"):
        rec._loop()
    [record] = caplog.records
    assert record.getMessage() == ("metric sampling failed: state database /x/state.db: database is locked"
                                   " (another syncer process is writing it)")
    assert record.exc_info is None and record.levelno == logging.WARNING
