"""The apply lock on a server (engine/serverlock.py) against an engine whose answers the test
chooses: the moments a real engine gives only now and then (a create still in flight)."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import pytest

from syncer.adapters.docker import Conflict
from syncer.core.errors import LockHeld
from syncer.core.model import Project, ProjectConfig, Server
from syncer.engine import serverlock
from syncer.engine.serverlock import ServerLock


def _project() -> Project:
    config = ProjectConfig(name="acme", servers={"local": Server("local")}, default_server="local",
                           default_profile="", template_dirs=(), definition_dirs=())
    return Project(root="/nowhere", config=config, templates=(), definitions=())


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class _Engine:
    """The lock's name taken at once by a create the engine finishes only after `visible_after`
    seconds (an apply killed while taking its lock): until then a create conflicts and no
    container has the name; then the dead apply's marker is there."""

    def __init__(self, visible_after: float, holder_pid: int) -> None:
        self.t0 = time.monotonic()
        self.visible_after = visible_after
        self.stale: dict[str, Any] | None = {
            "id": "stale", "labels": {serverlock.HOST: socket.gethostname(), serverlock.PID: str(holder_pid)}}
        self.made: list[str] = []

    def _in_flight(self) -> bool:
        return time.monotonic() - self.t0 < self.visible_after

    def create_marker(self, name: str, labels: Any, env: Any) -> str:
        if self._in_flight() or self.stale is not None:
            raise Conflict(f"create {name}: the name is in use")
        self.made.append(name)
        return "mine"

    def marker(self, name: str) -> dict[str, Any] | None:
        return None if self._in_flight() else self.stale

    def remove(self, ident: str) -> None:
        if ident == "stale":
            self.stale = None
        else:
            self.made.remove("acme.syncer-lock")  # the release

    def close(self) -> None:
        pass


def test_a_lock_whose_create_is_still_in_flight_is_waited_for_then_taken_over() -> None:
    """CI saw it: an apply killed while its lock's create was on its way left the name taken
    with no container behind it for a moment; the next apply gave up at once ("another apply
    keeps taking the project's lock") where the engine was about to show a dead holder."""
    engine = _Engine(visible_after=0.4, holder_pid=_dead_pid())
    with ServerLock(_project(), "syncer apply", engines=lambda server: engine) as lock:  # type: ignore[arg-type,return-value]
        assert [ident for _, ident in lock.held] == ["mine"] and engine.made == ["acme.syncer-lock"]
    assert engine.made == []  # released


def test_a_name_that_stays_taken_by_nobody_is_reported_in_bounded_time(monkeypatch: Any) -> None:
    monkeypatch.setattr(serverlock, "IN_FLIGHT_PAUSE", 0.01)
    monkeypatch.setattr(serverlock, "TRIES", 4)
    engine = _Engine(visible_after=3600, holder_pid=_dead_pid())
    started = time.monotonic()
    with pytest.raises(LockHeld, match="keeps taking the project's lock on server 'local'"):
        ServerLock(_project(), "syncer apply", engines=lambda server: engine).__enter__()  # type: ignore[arg-type,return-value]
    assert time.monotonic() - started < 10 and engine.made == []


class _Shared:
    """One engine two server entries reach: its lock made once, then met again as this apply's."""

    def __init__(self, ident: str) -> None:
        self.ident, self.lock = ident, None  # type: ignore[var-annotated]

    def create_marker(self, name: str, labels: Any, env: Any) -> str:
        if self.lock is not None:
            raise Conflict(f"create {name}: the name is in use")
        self.lock = {"id": self.ident, "labels": dict(labels)}
        return self.ident

    def marker(self, name: str) -> dict[str, Any] | None:
        return self.lock

    def remove(self, ident: str) -> None:
        self.lock = None

    def close(self) -> None:
        pass


def test_two_entries_for_one_engine_name_the_entry_whose_lock_it_is_not_every_one_locked() -> None:
    """QA: servers `a` (a swarm), `b` and `c` (one engine by TLS and by ssh): the error said `c`
    reaches an engine locked through `'a', 'b'`."""
    servers = {name: Server(name) for name in ("a", "b", "c")}
    config = ProjectConfig(name="acme", servers=servers, default_server="a", default_profile="",
                           template_dirs=(), definition_dirs=())
    swarm, shared = _Shared("lock-on-the-swarm"), _Shared("lock-on-the-engine")
    engines = {"a": swarm, "b": shared, "c": shared}
    with pytest.raises(serverlock.SameEngine, match="server 'c' reaches a Docker engine this apply already locked"
                                                    " through server 'b': two server entries"):
        ServerLock(Project(root="/nowhere", config=config, templates=(), definitions=()), "syncer apply",
                   engines=lambda server: engines[server.name]).__enter__()  # type: ignore[arg-type,return-value]
    assert swarm.lock is None and shared.lock is None  # released


def test_a_process_is_gone_once_it_ended_reaped_or_not() -> None:
    """adapters/lock.gone, which the server lock and the plan's check of an interrupted apply
    (engine/project._interrupted) both ask."""
    import os

    from syncer.adapters.lock import gone

    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert gone(zombie.pid) and gone(_dead_pid()) and not gone(os.getpid()) and not gone(1)
    finally:
        zombie.wait()


def test_a_lock_whose_holder_ended_unreaped_is_taken_over() -> None:
    """QA: an apply killed by `kill -9` whose parent has not reaped it (a CI container without
    an init keeps such a zombie for as long as it runs) still answered signal 0, so its lock
    was held against every later apply."""
    zombie = subprocess.Popen(["true"])  # never waited for until the end: a zombie meanwhile
    try:
        deadline = time.monotonic() + 10
        while open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        engine = _Engine(visible_after=0.0, holder_pid=zombie.pid)
        with ServerLock(_project(), "syncer apply", engines=lambda server: engine) as lock:  # type: ignore[arg-type,return-value]
            assert [ident for _, ident in lock.held] == ["mine"]
    finally:
        zombie.wait()
