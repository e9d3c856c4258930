"""Waking the deployments that wait for a Swarm roll when the manager's events say it moved,
instead of asking for the services' UpdateStatus on a clock alone.

A service's roll reaching a state (`updating`, `completed`, `rollback_completed`, `paused`...)
is a `service update` event with `updatestate.new`, for the whole cluster, written after the
state is in the manager's store: a waiter woken by it lists the services once and sees the
state. The clock stays, slower (SLOW), for a stream that says nothing; a stream that broke
leaves the wait to the clock it had (POLL). Measured on bench/swarm's change (one service's
env, a start-first roll with a 1s monitor): 1.12x stack deploy's time by the clock, 1.05x,
1.06x and 1.08x woken by the event (three runs, medians of 8 rounds each).

The same stream's task containers (`start`, `health_status: healthy`) were tried for a
create's wait and left: a task is `running` in Swarm's list some time after its container
started, so a waiter woken by the start lists too early and then waits for the clock anyway;
the create's time outside Swarm's own span grew from 0.49 s to 0.58-1.33 s, and Swarm's span
was no shorter for the fewer lists (bench/README.md, 2026-12-02).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

SLOW = 1.0  # seconds between two looks at a roll when the events are read
WOKEN = 0.1  # at least this between two lists the events asked for (rolls ending together)


def rolled(event: Mapping[str, Any]) -> str | None:
    """The id of the service whose roll reached a state, for an event that says so."""
    actor = event.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    if event.get("Type") == "service" and event.get("Action") == "update" and attrs.get("updatestate.new"):
        return str(actor.get("ID", "")) or None
    return None


class Waker:
    """One manager's service events, read by a thread of its own while an apply waits on it."""

    def __init__(self, open_stream: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._cond = threading.Condition()
        self.seq = 0  # roll moves seen so far
        self.alive = True
        self._moved: dict[str, int] = {}  # service id → the seq of its last roll move
        self._stream: Any = None
        self._closed = False
        threading.Thread(target=self._read, args=(open_stream,), daemon=True, name="swarm-events").start()

    def _read(self, open_stream: Callable[[], Iterable[dict[str, Any]]]) -> None:
        try:
            stream = open_stream()
            with self._cond:
                self._stream = stream
                if self._closed:
                    return
            for event in stream:
                self.note(event)
        except Exception:  # noqa: BLE001 - a stream that broke: the waits go by the clock
            pass
        finally:
            with self._cond:
                self.alive = False
                self._cond.notify_all()
            if self._closed:
                _close(self._stream)

    def note(self, event: Mapping[str, Any]) -> None:
        """Count one event (the stream's thread calls it; tests may too)."""
        service = rolled(event)
        if service is None:
            return
        with self._cond:
            self.seq += 1
            self._moved[service] = self.seq
            self._cond.notify_all()

    def wait(self, service: str, after: int, timeout: float) -> tuple[int, bool]:
        """Until the service's roll moved since event `after`, the stream ended, or `timeout`:
        the seq of the events seen (a list asked for after it reflects them), and whether
        a move ended the wait."""
        with self._cond:
            moved = self._cond.wait_for(lambda: not self.alive or self._moved.get(service, 0) > after, timeout)
            return self.seq, bool(moved) and self._moved.get(service, 0) > after

    def close(self) -> None:
        with self._cond:
            self._closed = True
            stream = self._stream
        _close(stream)


def _close(stream: Any) -> None:
    if stream is not None and hasattr(stream, "close"):
        stream.close()


def since() -> int:
    """The `since` of a stream opened now: a second back, so that no event falls between
    the apply's write and the engine's answer to `GET /events`."""
    return int(time.time()) - 1


class Snapshot:
    """One list call shared by every deployment waiting on a server, made again once it is
    `every` seconds old (engine/swarm_apply.POLL): twenty services waiting at once ask the
    manager four times a second, not eighty, and each one still sees its change within `every`
    (a roll's end is not noticed late). A waiter the events woke asks for a list made after
    event `after`."""

    def __init__(self, fetch: Callable[[], list[dict[str, Any]]], seq: Callable[[], int] = lambda: 0, *,
                 every: float) -> None:
        self.fetch, self.seq, self.every = fetch, seq, every
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._at = -1.0
        self._seq = -1  # the events counted when the list was asked for

    def rows(self, after: int = -1) -> tuple[list[dict[str, Any]], int]:
        """The rows, and the events counted before they were asked for. Asked again for
        events at most every WOKEN (twenty services ending at once make one list, not twenty)."""
        with self._lock:
            age = time.monotonic() - self._at
            if age >= self.every or self._seq < after:
                if self._seq < after and age < WOKEN:
                    time.sleep(WOKEN - age)  # (the others wait on the lock, then share this list)
                seq = self.seq()
                self._rows = self.fetch()
                self._at, self._seq = time.monotonic(), seq
            return self._rows, self._seq
