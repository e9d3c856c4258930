"""Self-heal, the engine's side: which containers syncer itself is acting on, waiting until
the container list shows what an event announced, and restarting an unhealthy container
whose definition opts in (`self_heal: {unhealthy: restart}`).

The ids syncer stops, removes or restarts are recorded before it acts and kept for a short
grace once the action returns (its events arrive within milliseconds), so that the watcher
can tell its own events from faults by id. Starting a container forgets its id: from then
on a kill of it is a fault again; a restart's id is forgotten once its `restart` event, the
last of the kill, die, stop and start it makes, has been read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

from syncer.adapters.docker import Engine, EngineError, Missing
from syncer.core.errors import DockerUnavailable, SyncerError
from syncer.core.model import Server
from syncer.engine.project import Context, load, state_store
from syncer.stages import selfheal
from syncer.stages.selfheal import Expect, Verdict

__all__ = ["LOOKUPS", "OWN", "SERVICE_WRITES", "SIGNALLED", "TURNS", "CrashLoops", "Observer", "OwnActions", "Turn",
           "Turns", "Verdict", "marked_swarm", "note_finished", "read_event", "restart_unhealthy", "start_as_it_ran",
           "turn_of", "unhealthy_policy"]

GRACE_S = 5.0  # how long an id stays "ours" once the action on it returned
# How long a signal someone sent (`docker kill`, `docker stop`) makes the container's next
# `die` theirs (a fault), not its own end: a stop waits up to the stop timeout to kill.
SIGNAL_GRACE_S = 300.0
# A service event this long after syncer's write to it is still the write's (the manager sends
# it as it writes; a created service gets an update as the manager gives it its endpoint, in
# the same few milliseconds): short, since a change made by hand within it is not seen as one
# (one that comes later costs a re-plan that finds nothing to do). Windows are kept this long
# for events read late, judged by their own time.
WRITE_GRACE_S = 0.5
WRITE_KEEP_S = 120.0
POLL_S = 0.005  # a one-container list by id costs ~2 ms: the wait is what Docker takes, not the polling


class OwnActions:
    """Container ids syncer is acting on (thread-safe): `in` tells an own event from a fault."""

    def __init__(self, grace: float = GRACE_S) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}  # id -> monotonic expiry (inf while acting)
        self._closing: dict[str, str] = {}  # id -> the event that ends the action on it

    @contextmanager
    def acting(self, ident: str, *, until: str = "") -> Iterator[None]:
        """Mark `ident` as ours for the action in the block, and a grace after it. `until`: the
        event that ends the action (a restart's `restart`, after its kill, die, stop and start,
        which may reach the watcher after the call returned): once it is `seen`, the id is no
        longer ours, at once rather than after the grace, so that its next death is a fault."""
        with self._lock:
            self._until[ident] = float("inf")
            if until:
                self._closing[ident] = until
        try:
            yield
        finally:
            with self._lock:
                if until and ident not in self._closing:  # its closing event came before the call returned
                    self._until.pop(ident, None)
                else:
                    self._until[ident] = time.monotonic() + self.grace

    def seen(self, ident: str, action: str) -> None:
        """An event of `ident`: when it is the one its action ends with, the id is a fault's
        again (or will be, once the action's call returns)."""
        with self._lock:
            for key in [k for k, a in self._closing.items() if a == action and _same(k, ident)]:
                del self._closing[key]
                if self._until.get(key) != float("inf"):
                    self._until.pop(key, None)

    def mark(self, ident: str) -> None:
        """`ident` is ours for the grace from now (a container syncer just created)."""
        with self._lock:
            self._until[ident] = time.monotonic() + self.grace

    def forget(self, ident: str) -> None:
        """`ident` is no longer ours: syncer started it, what happens to it next is a fault."""
        with self._lock:
            self._until.pop(ident, None)

    def __contains__(self, ident: object) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, t in self._until.items() if t < now]:
                del self._until[key]
                self._closing.pop(key, None)
            return isinstance(ident, str) and any(_same(k, ident) for k in self._until)


class ServiceWrites:
    """The Swarm services this process writes (create, update, scale), by name, with when
    (thread-safe). A service's event is this process's own when it comes while a write is
    under way or within WRITE_GRACE_S of its end, or when the event's own time falls in such
    a window (an event read late). Only the writes: a change someone makes while syncer waits
    for a roll is theirs (drift), and Swarm's own roll and rollback events say so themselves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, list[list[float]]] = {}  # name -> [[start, end]] (wall clock; end inf while writing)

    @contextmanager
    def writing(self, name: str) -> Iterator[None]:
        """Mark the write to service `name` in the block."""
        window = [time.time(), float("inf")]
        with self._lock:
            self._windows.setdefault(name, []).append(window)
        try:
            yield
        finally:
            with self._lock:
                window[1] = time.time()

    def covers(self, name: str, at_ns: int | None = None) -> bool:
        """Whether an event of service `name` (sent at `at_ns`, the engine's timeNano) is a write's."""
        now = time.time()
        at = at_ns / 1e9 if at_ns else None
        with self._lock:
            kept = [w for w in self._windows.get(name, []) if w[1] + WRITE_KEEP_S > now]
            if kept:
                self._windows[name] = kept
            else:
                self._windows.pop(name, None)
            return any(now <= end + WRITE_GRACE_S
                       or (at is not None and start - WRITE_GRACE_S <= at <= end + WRITE_GRACE_S)
                       for start, end in kept)


SERVICE_WRITES = ServiceWrites()  # this process's: the watcher, and the applies and API calls it runs


def marked_swarm(engine: Engine) -> Any:
    """The server's Swarm side (adapters/swarm.Swarm) with its writes of services marked in
    SERVICE_WRITES: their events are this process's, not a change for the watch to heal."""
    from syncer.adapters.swarm import Swarm  # (only Swarm servers pay for it)

    swarm = Swarm(engine)
    swarm.marks = SERVICE_WRITES.writing
    return swarm


def _same(a: str, b: str) -> bool:
    """Whether two container ids (either may be short) name the same container."""
    return bool(a and b) and (a.startswith(b) or b.startswith(a))


OWN = OwnActions()  # this process's: the watcher and the applies it runs share it
SIGNALLED = OwnActions(grace=SIGNAL_GRACE_S)  # ids someone else sent a signal (kill, stop)


# Instance actions (`syncer instances`, POST /instances/{id}/stop|start|restart) and the watch's
# own heals of one container (started again as it ran, restarted when unhealthy) are serialised
# per container, in the order they came: Docker does not serialise them (a stop sent while a
# restart waits out its stop timeout is undone by the restart's start), and the held-stopped mark
# written beside the action must end agreeing with the container. Not the apply locks: ApplyLock
# (the state dir's flock) and ServerLock (a marker on each server) are one per project, refuse
# (LockHeld) rather than wait, and would make actions on different containers wait for each other.
# Within this process only, as OWN: a `syncer serve` beside a `syncer watch` shares none of it.
class Turns:
    """One action at a time per key (a server's container), in the order they lined up (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lines: dict[tuple[str, str], deque[Turn]] = {}

    def line_up(self, key: tuple[str, str]) -> Turn:
        """Take a place in `key`'s line now; entering it waits until every earlier place has left."""
        place = Turn(self, key)
        with self._cond:
            self._lines.setdefault(key, deque()).append(place)
        return place

    def wait(self, place: Turn) -> None:
        """Until `place` is the first of its line."""
        with self._cond:
            while self._lines[place.key][0] is not place:
                self._cond.wait()

    def leave(self, place: Turn) -> None:
        """`place` is done (or gives up): the next in its line goes."""
        with self._cond:
            line = self._lines[place.key]
            line.remove(place)
            if not line:
                del self._lines[place.key]
            self._cond.notify_all()


class Turn:
    """A place in a line of `Turns`: `with` it to act when its turn comes."""

    def __init__(self, turns: Turns, key: tuple[str, str]) -> None:
        self.turns, self.key = turns, key

    def __enter__(self) -> Self:
        try:
            self.turns.wait(self)
        except BaseException:
            self.turns.leave(self)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.turns.leave(self)


TURNS = Turns()  # this process's: the API's instance actions and the watch's heals share it
LOOKUPS = Turns()  # an instance action's lookup, one at a time per project: its place in TURNS is in arrival order


def turn_of(server: str, ident: str) -> Turn:
    """A place in the line of actions on container `ident` (either id length) of `server`."""
    return TURNS.line_up((server, ident[:12]))


def read_event(event: dict[str, Any]) -> Verdict:
    """The verdict on one event, with this process's own actions recognised by id, and a
    `die` that follows someone's `kill` (a `docker stop` or `kill`) told from a container's
    own end."""
    action, ident = event.get("Action"), str((event.get("Actor") or {}).get("ID") or "")
    # (`docker stop` sends a `kill` first: its `stop` event comes after the `die`)
    if action == "kill" and event.get("Type", "container") == "container" and ident and ident not in OWN:
        SIGNALLED.mark(ident)
    verdict = selfheal.read_event(event, OWN, SIGNALLED, writes=SERVICE_WRITES.covers)
    if action and ident:
        OWN.seen(ident, str(action))
    if action == "die" and ident:
        SIGNALLED.forget(ident)  # the signal's end has come: the container's next end is judged afresh
    return verdict


class CrashLoops:
    """Containers that ended on their own, by name: when each was last healed and how many
    times in a row (`selfheal.crash_delay`). Thread-safe: every server's events use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, float]] = {}

    def delay(self, name: str) -> tuple[float, int]:
        """Seconds to wait before healing `name`, which ended on its own now, and its crashes in a row."""
        with self._lock:
            delay, self._seen[name] = selfheal.crash_delay(self._seen.get(name), time.monotonic())
            return delay, self._seen[name][0]


def note_finished(ctx: Context, verdict: Verdict) -> None:
    """Remember that a container ended on its own as its restart policy allows (`finished`):
    plans leave it exited until its definition changes it or it is started through syncer."""
    store = state_store(ctx)
    try:
        store.mark_finished(verdict.name, verdict.container_id, str(verdict.definition or ""))
    finally:
        store.close()


class Observer:
    """One server's container list, read again until it shows what an event announced."""

    def __init__(self, server: Server) -> None:
        self.engine = Engine(server, timeout=10)

    def settle(self, ident: str, expect: Expect, *, timeout: float = 3.0) -> bool:
        """Wait until the list shows `ident` in the state `expect`; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if selfheal.settled(expect, self.engine.row(ident)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)

    def detached(self, ident: str, network: str, *, timeout: float = 3.0) -> Mapping[str, str] | None:
        """The labels of container `ident` when it is off `network` for good — taken off by hand:
        a container that ends is released from its networks too, but keeps them in its config —
        once the container list shows it so (what a plan reads); None when it is still on it,
        or gone (its own event tells), or the list did not show it within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            info = self.engine.inspect(ident)
            if network in ((info.get("NetworkSettings") or {}).get("Networks") or {}):
                return None
            while True:
                row = self.engine.row(ident)
                if row is None:
                    return None
                if network not in ((row.get("NetworkSettings") or {}).get("Networks") or {}):
                    return dict((info.get("Config") or {}).get("Labels") or {})
                if time.monotonic() > deadline:
                    return None
                time.sleep(POLL_S)
        except (Missing, EngineError, DockerUnavailable):
            return None

    def close(self) -> None:
        """Release the connection."""
        self.engine.close()


def _on_container(server: Server, ident: str, act: Callable[[Engine, Mapping[str, Any]], bool | None]
                  ) -> bool | None:
    """`act(engine, its State)` on one container: its answer; False when the container is
    gone; None when the engine could not be asked."""
    eng = Engine(server)
    try:
        try:
            state = eng.inspect(ident).get("State", {})
        except Missing:
            return False
        return act(eng, state)
    except (EngineError, DockerUnavailable):
        return None
    finally:
        eng.close()


def restart_unhealthy(server: Server, ident: str, *, timeout: int = 10) -> bool:
    """Restart `ident` when it is still running and unhealthy; True when it was restarted."""
    def restart(eng: Engine, state: Mapping[str, Any]) -> bool:
        if not state.get("Running") or (state.get("Health") or {}).get("Status") != "unhealthy":
            return False
        with OWN.acting(ident, until="restart"):  # its kill, die and stop events are this restart's
            eng.restart(ident, timeout=timeout)
        return True

    with turn_of(server.name, ident):  # after an instance action under way on it: judged on what it left
        return bool(_on_container(server, ident, restart))


def start_as_it_ran(server: Server, ident: str) -> bool | None:
    """Start `ident` again as it was made (its own config, nothing read from the repository):
    True when started, False when it is gone (removed), None when there is nothing to do (it
    runs again) or the engine could not be asked."""
    def start(eng: Engine, state: Mapping[str, Any]) -> bool | None:
        if state.get("Running"):
            return None
        eng.start(ident)
        OWN.forget(ident)
        return True

    with turn_of(server.name, ident):  # after an instance action under way on it: judged on what it left
        return _on_container(server, ident, start)


def unhealthy_policy(ctx: Context, definition: str) -> str:
    """What the definition wants done when its container turns unhealthy: "report" (the
    default) or "restart" (`self_heal: {unhealthy: restart}`)."""
    try:
        found = load(ctx).definition(definition)
    except SyncerError:  # an invalid repository: what runs keeps running, and is only reported
        return "report"
    return selfheal.unhealthy_policy(found.self_heal if found is not None else None)
