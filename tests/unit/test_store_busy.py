"""A write that waits for another process's lock on state.db (adapters/store/busy.py): the
busy timeout cut into a quiet wait and the rest, one warning per file however many writes
wait, one line once a write gets through (QA round F5: watch stalled 30 s in silence)."""

from __future__ import annotations

import logging
import threading

import pytest

from syncer.adapters.store import busy
from syncer.adapters.store.busy import Waits, parts


def test_the_busy_timeout_is_a_quiet_wait_of_two_seconds_then_the_rest() -> None:
    assert parts(30.0) == (2.0, 28.0)
    assert parts(2.5) == (2.0, 0.5)
    # no longer than the quiet part: SQLite waits it all, no warning (a test's short timeout)
    assert parts(0.2) == (0.2, 0.0)
    assert parts(2.0) == (2.0, 0.0)
    assert parts(0.0) == (0.0, 0.0)


def test_the_first_write_to_wait_warns_the_others_do_not_until_one_gets_through() -> None:
    waits = Waits()
    assert waits.through("/s/state.db", 5.0) is None  # nothing waited: nothing to say
    assert waits.begin("/s/state.db", 10.0) is True
    assert waits.begin("/s/state.db", 12.0) is False  # another write (or the same, again): no line
    assert waits.begin("/other/state.db", 12.0) is True  # another file is another wait
    assert waits.through("/s/state.db", 25.0) == 15.0  # since the first one began to wait
    assert waits.through("/s/state.db", 26.0) is None  # said once
    assert waits.begin("/s/state.db", 30.0) is True  # a new wait, a new warning


def test_threads_waiting_at_once_give_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(busy, "WAITS", Waits())
    caplog.set_level(logging.INFO, logger="syncer.store")
    threads = [threading.Thread(target=busy.waiting, args=("/s/state.db", 2.0, 30.0)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy.through("/s/state.db")
    busy.through("/s/state.db")
    lines = [r.getMessage() for r in caplog.records if r.name == "syncer.store"]
    assert lines[0] == "store: /s/state.db is locked by another process; waiting up to 30s"
    assert len(lines) == 2 and lines[1].startswith("store: /s/state.db is writable again; writes go on")
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
