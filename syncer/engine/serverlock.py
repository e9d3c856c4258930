"""One apply at a time per project across state dirs: the lock is also taken on the servers.

Two CI runners with their own state dirs share nothing on disk, so the state dir's flock
cannot serialise them. On each reachable server of the project, the lock is a marker
container `<project>.syncer-lock` (created, never started): creating a name is atomic in
the engine, so whoever creates it holds the lock; its labels say who (host, pid, purpose)
and since when; it is released by removing it (by id: never a successor's). A name the
engine refuses while no container has it yet is a create still in flight (an apply killed
while taking the lock: the engine finishes that create), waited for. A holder on
this host whose process is gone is taken over; one older than the lease is reported with
how to break it. A holder labelled with this very process that no live lock of the process
knows is one whose release failed (the server went away mid-apply: a long-lived `syncer watch`
would otherwise lock itself out for good once the server is back), and is taken over too.
Servers are locked in name order, so two applies never hold halves. On a Swarm server the
lock is a Swarm config of that name instead: config names are unique in the whole swarm, so
two applies that reach it through different managers still exclude each other (a marker
container would lock one node's engine only), and a config is made in a few milliseconds. A self-heal (only
containers of the deployed revision to start or create again) takes no lock when
`held_elsewhere` finds none: it would double the time a killed container stays down.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from types import TracebackType
from typing import Any

from syncer.adapters.docker import Conflict, Engine, EngineError
from syncer.adapters.lock import gone
from syncer.core import clock
from syncer.core import labels as L
from syncer.core.errors import Conflict as SameEngine, DockerUnavailable, LockHeld
from syncer.core.model import Project, Server
from syncer.engine.observe import EngineFactory, is_swarm

LEASE = 3600.0  # seconds: a holder older than this is probably gone (the message says how to break it)
# a lock's name taken while no container has it yet is a create in flight: looked at again after
# 0.05 s, then twice as long each time up to 1 s (~6 s in all over TRIES), then reported
IN_FLIGHT_PAUSE = 0.05
TRIES = 10
HOST, PID, SINCE, PURPOSE = "syncer.lock.host", "syncer.lock.pid", "syncer.lock.since", "syncer.lock.purpose"
TOKEN = "syncer.lock.token"
_LIVE: set[str] = set()  # the tokens of this process's locks not yet released


def lock_name(project: str) -> str:
    """The marker container that is a project's apply lock on a server."""
    return f"{project}.syncer-lock"


class ServerLock:
    """`with ServerLock(project, "syncer apply"):` — raises LockHeld when another apply holds it.
    An unreachable server is not locked: the plan reports it and its actions fail."""

    def __init__(self, project: Project, purpose: str, *, engines: EngineFactory = Engine,
                 lease: float = LEASE) -> None:
        self.project, self.purpose, self.engines, self.lease = project, purpose, engines, lease
        self.held: list[tuple[Server, str]] = []
        self.token = uuid.uuid4().hex

    def __enter__(self) -> ServerLock:
        _LIVE.add(self.token)
        try:
            for name in sorted(self.project.config.servers):
                server = self.project.config.servers[name]
                ident = self._take(server)
                if ident is not None:
                    self.held.append((server, ident))
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._release()

    def _labels(self) -> dict[str, str]:
        return {L.MARKER: "lock", L.MARKER_OF: self.project.config.name, HOST: socket.gethostname(),
                PID: str(os.getpid()), SINCE: clock.iso(), PURPOSE: self.purpose, TOKEN: self.token}

    def _take(self, server: Server) -> str | None:
        name = lock_name(self.project.config.name)
        try:
            eng = self.engines(server)
        except DockerUnavailable:
            return None
        try:
            store = _store(eng)
            pause = IN_FLIGHT_PAUSE
            for attempt in range(TRIES):  # a holder may go (or be taken over) between create and inspect
                try:
                    return store.create(name, self._labels())
                except Conflict:
                    holder = store.holder(name)
                    if holder is None:
                        # the name is taken by a create the engine has not finished (an apply
                        # killed while making its lock: the engine still makes it): wait for it
                        if attempt < TRIES - 1:
                            time.sleep(pause)
                        pause = min(2 * pause, 1.0)
                    elif holder["labels"].get(TOKEN) == self.token:  # this apply's own lock
                        others = ", ".join(f"'{s.name}'" for s, ident in self.held if ident == holder["id"]) \
                            or ", ".join(f"'{s.name}'" for s, _ in self.held)  # (the one whose lock it is)
                        raise SameEngine(f"server '{server.name}' reaches a Docker engine this apply already locked"
                                       f" through server {others}: two server entries name one engine (keep one)")
                    elif _dead_here(holder["labels"]):
                        store.remove(holder["id"])  # by id: a live successor's lock is never removed
                    else:
                        raise LockHeld(self._message(server, name, holder["labels"])) from None
            raise LockHeld(f"another apply keeps taking the project's lock on server '{server.name}'")
        except (EngineError, DockerUnavailable):
            return None  # unreachable or refusing: that server's actions fail on their own
        finally:
            eng.close()

    def _message(self, server: Server, name: str, labels: dict[str, str]) -> str:
        since = labels.get(SINCE, "?")
        text = (f"another apply holds the project's lock on server '{server.name}': pid {labels.get(PID, '?')}"
                f" on {labels.get(HOST, '?')} ({labels.get(PURPOSE, '?')}) since {since}")
        try:
            age = clock.now() - clock.epoch(since)
        except ValueError:
            age = self.lease + 1
        if age > self.lease:
            rm = "docker config rm" if server.kind == "swarm" else "docker rm"
            text += (f"; it is older than the {self.lease / 60:g}-minute lease: if that apply is gone,"
                     f" break the lock with `{rm} {name}` on server '{server.name}'")
        return text

    def _release(self) -> None:
        _LIVE.discard(self.token)
        while self.held:
            server, ident = self.held.pop()
            try:
                eng = self.engines(server)
                try:
                    _store(eng).remove(ident)
                finally:
                    eng.close()
            except (EngineError, DockerUnavailable):
                pass  # a lock left behind is reported to the next apply with how to break it


def held_elsewhere(project: Project, servers: set[str], *, engines: EngineFactory = Engine) -> bool:
    """True when another apply holds the project's lock on one of these servers (a read:
    one inspect per server; an unreachable server counts as not held)."""
    name = lock_name(project.config.name)
    for server in sorted(servers):
        try:
            eng = engines(project.config.servers[server])
        except DockerUnavailable:
            continue
        try:
            holder = _store(eng).holder(name)
        except (EngineError, DockerUnavailable):
            holder = None
        finally:
            eng.close()
        if holder is not None and not _dead_here(holder["labels"]):
            return True
    return False


class _Markers:
    """The lock as a marker container (created, never started) on one engine."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng

    def create(self, name: str, labels: dict[str, str]) -> str:
        """Take the lock (Conflict when held)."""
        return self.eng.create_marker(name, labels, {})

    def holder(self, name: str) -> dict[str, Any] | None:
        """The lock's id and labels, None when nobody holds it."""
        return self.eng.marker(name)

    def remove(self, ident: str) -> None:
        self.eng.remove(ident)


class _Configs(_Markers):
    """On a Swarm server: the lock as a Swarm config (names are unique in the whole swarm)."""

    def __init__(self, eng: Engine) -> None:
        super().__init__(eng)
        from syncer.adapters.swarm import Swarm  # only swarm servers pay for it

        self.swarm = Swarm(eng)

    def create(self, name: str, labels: dict[str, str]) -> str:
        return str(self.swarm.create_object("config", name, b"syncer apply lock\n", labels))

    def holder(self, name: str) -> dict[str, Any] | None:
        return self.swarm.find_object("config", name)

    def remove(self, ident: str) -> None:
        self.swarm.remove_object("config", ident)


def _store(eng: Engine) -> _Markers:
    """Where the lock lives on this server, chosen once per engine (fakes have no server)."""
    return _Configs(eng) if is_swarm(eng) else _Markers(eng)


def _dead_here(labels: dict[str, str]) -> bool:
    """True when the holder ran on this host and its process is gone, or it is this process
    and no lock of ours still held has its token (its release failed)."""
    if labels.get(HOST) != socket.gethostname():
        return False
    if labels.get(PID) == str(os.getpid()):
        return labels.get(TOKEN) not in _LIVE
    try:
        pid = int(labels.get(PID, ""))
    except ValueError:
        return False
    return gone(pid)
