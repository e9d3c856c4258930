"""The watch loop's queue: triggers during an apply coalesce into exactly one follow-up."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from syncer.engine import facade as engine
from syncer.daemon.watch import Trigger, WatchOptions, Watcher, parse_duration


def test_triggers_during_an_apply_cause_exactly_one_follow_up(tmp_path: Path) -> None:
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    calls: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def fake_apply(reasons: str, definition: str | None) -> None:
        calls.append(reasons)
        if len(calls) == 1:
            inside.set()
            assert release.wait(10)

    w._apply = fake_apply  # type: ignore[method-assign]
    w.queue.put(Trigger("first"))
    loop = threading.Thread(target=w.step)
    loop.start()
    assert inside.wait(10)
    for i in range(5):
        w.request(f"during-{i}")
    release.set()
    loop.join(10)
    assert w.step(timeout=1) is True
    assert w.step(timeout=0.2) is False
    assert calls[0] == "first"
    assert len(calls) == 2 and all(f"during-{i}" in calls[1] for i in range(5))


def test_one_definition_requests_stay_scoped(tmp_path: Path) -> None:
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    seen: list[str | None] = []
    w._apply = lambda reasons, definition: seen.append(definition)  # type: ignore[method-assign]
    w.request("api", definition="web")
    w.step(timeout=1)
    w.request("api", definition="web")
    w.request("api", definition="db")
    w.step(timeout=1)
    assert seen == ["web", None]


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("250ms", 0.25), ("2", 2)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
