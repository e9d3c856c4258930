"""The watch's Docker side: each server's event stream, read as faults to heal.

A fault is healed whether or not a cycle runs (requests then coalesce into one follow-up).
A container that ended on its own is healed at once the first time, then with a growing
wait while it keeps crashing (`stages.selfheal.crash_delay`); one that exited 0 as its
restart policy allows (`restart: "no"` or `on-failure`) has finished, and is remembered as
such instead (`heal.note_finished`): plans leave it exited. A network changed by hand (a
container taken off it, the network removed) sends a burst of events: they are requested
together once it is over (daemon/bursts.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from syncer.core.errors import SyncerError
from syncer.daemon.bursts import Burst
from syncer.engine import facade as engine
from syncer.engine import heal, sources
from syncer.engine.requests import Kind

if TYPE_CHECKING:
    from syncer.daemon.watch import Watcher

log = logging.getLogger("syncer.daemon.watch")
SETTLE_S = 3.0  # the longest a fault's cycle waits for the container list to show it
TWIN_S = 1.0  # a disconnect logged again within this is Docker's twin event (its check still runs)


class DockerFaults:
    """Follows every server's events for one `Watcher` and turns faults into its requests."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.crashes = heal.CrashLoops()
        # the faults not healed yet: container id → (server, name, definition); a cycle that
        # cannot plan (an invalid repository, a secret not set) heals them as they ran
        self._open: dict[str, tuple[Any, str, str | None]] = {}
        self._lock = threading.Lock()
        self.project = ""  # (set by `run`)
        self.external: list[str] = []
        self._said: dict[tuple[str, str], float] = {}  # (container id, network) → when its disconnect was logged
        self.burst = Burst(watcher.opts.debounce, lambda reason, definition: watcher.request(
            reason, kind=Kind.DOCKER, definition=definition))

    def healed(self, definition: str | None) -> None:
        """A cycle of `definition` (None: every one) converged: its faults are healed."""
        with self._lock:
            for ident in [i for i, (_, _, d) in self._open.items() if definition is None or d == definition]:
                del self._open[ident]

    def heal_as_it_ran(self) -> None:
        """The repository cannot be planned: start each faulted container again with the
        config it was made with (what syncer last applied), rather than leave it dead until a
        valid commit. One that was removed waits for that commit."""
        with self._lock:
            faults, self._open = self._open, {}
        for ident, (server, name, _) in faults.items():
            started = heal.start_as_it_ran(server, ident)
            if started:
                log.info("%s: started again as it ran (the repository cannot be planned: syncer heals what it"
                         " last applied)", name, extra={"event": "heal.as_it_ran"})
            elif started is False:
                log.warning("%s: removed, and made again only once the repository can be planned", name,
                            extra={"event": "heal.waits"})

    def run(self) -> None:
        """Follow each server's event stream; reconnect with backoff; heal on the way back."""
        w = self.watcher
        project = engine.load(w.ctx)
        self.project = project.config.name
        # (the external networks it joins: a container taken off one is healed too)
        self.external = sorted(n for n, external in project.config.networks.items() if external)
        watchers = [threading.Thread(target=self._server_events, args=(project.config.name, s),
                                     daemon=True, name=f"events-{s.name}")
                    for s in project.config.servers.values()]
        for t in watchers:
            t.start()
        w.stopping.wait()

    def _server_events(self, project: str, server: Any) -> None:
        # Every end of the stream counts as a loss: events were missed while it was down
        # (the daemon restarted, the connection dropped), so a resync follows the reconnect.
        # `since` replays what the daemon still has from just before the last event seen.
        w = self.watcher
        backoff, lost, since = 1.0, False, int(time.time())
        while not w.stopping.is_set():
            observer = None
            try:
                events = sources.docker_events(server, project, since=since, networks=self.external)
                observer = heal.Observer(server)
                if lost:
                    log.info("docker %s: reachable again", server.name, extra={"event": "docker.back"})
                    w.request(f"docker {server.name} reachable again", kind=Kind.DOCKER)
                lost, backoff = False, 1.0
                for event in events:
                    if w.stopping.is_set():
                        return
                    since = max(since, int(event.get("time") or since))
                    self.event(server, observer, event)
                if not w.stopping.is_set():  # (closed by the watch stopping: nothing was lost)
                    log.warning("docker %s: the event stream ended (reconnecting)", server.name,
                                extra={"event": "docker.lost"})
            except Exception as exc:  # noqa: BLE001 - any failure: the daemon went away
                if not lost and not w.stopping.is_set():
                    log.warning("docker %s: %s (reconnecting)", server.name, str(exc)[:200],
                                extra={"event": "docker.lost"})
            finally:
                if observer is not None:
                    observer.close()
            lost = True
            w.stopping.wait(backoff + random.random() * 0.2 * backoff)
            backoff = min(backoff * 2, 30.0)

    def event(self, server: Any, observer: heal.Observer, event: dict[str, Any]) -> None:
        """One event. A fault's cycle starts at once: it loads and renders the project while
        Docker finishes the exit, and observes once the container list shows what the event
        announced (Docker 20.10 lists a container `running` for a while after its `die`)."""
        w = self.watcher
        verdict = heal.read_event(event)
        if verdict.what == "ignore":
            return
        if verdict.what in ("detached", "removed"):  # (a burst of them is one request)
            if w.opts.self_heal:
                self._network(server, observer, verdict)
            return
        log.info("docker %s: %s %s", server.name, verdict.action, verdict.name, extra={"event": "docker.event"})
        if verdict.what == "unhealthy":
            self._unhealthy(server, verdict)
            return
        if verdict.what == "finished":
            self._finished(server, verdict)
            return
        if verdict.what == "drift":  # the manager has the new spec (the list the new name) already: plan now
            if w.opts.self_heal:
                what = verdict.name if verdict.action == "rename" else f"service {verdict.name}"
                w.request(f"docker: {what} {verdict.why}", kind=Kind.DOCKER, definition=verdict.definition)
            return
        if verdict.what == "note" or not w.opts.self_heal or verdict.expect is None:
            return
        with self._lock:  # (a backed-off crash too: its timer's cycle may find the repository invalid)
            self._open[verdict.container_id] = (server, verdict.name, verdict.definition)
        if verdict.crashed and self._backed_off(server, verdict):
            return
        expect, settled = verdict.expect, threading.Event()

        def settle() -> None:
            try:
                observer.settle(verdict.container_id, expect, timeout=SETTLE_S)
            except SyncerError:
                pass  # the list could not be read: the plan will tell
            finally:
                settled.set()

        # its own thread: waiting for one container's state must not hold back the next event
        threading.Thread(target=settle, daemon=True, name=f"settle-{verdict.name}").start()
        # of its definition alone: one container's fault is healed from a list of that
        # definition's containers, not the project's (a resync or any other request of the
        # batch still plans everything)
        w.request(f"docker: {verdict.name} {verdict.action}", kind=Kind.DOCKER, definition=verdict.definition,
                  ready=lambda: settled.wait(SETTLE_S + 1))

    def _network(self, server: Any, observer: heal.Observer, verdict: heal.Verdict) -> None:
        """A network event, joined to the burst it comes in: a project network removed (the
        stream has the project's only) is planned with the whole project; a container taken off
        one is checked in its own thread (the engine is asked whose container it is)."""
        self.burst.begin()
        if verdict.what == "removed":
            log.info("docker %s: destroy network %s", server.name, verdict.name, extra={"event": "docker.event"})
            self.burst.end(f"docker: {verdict.why}", found=True)
            return
        threading.Thread(target=self._detached, args=(server, observer, verdict), daemon=True,
                         name=f"detached-{verdict.container_id[:12]}").start()

    def _detached(self, server: Any, observer: heal.Observer, verdict: heal.Verdict) -> None:
        """A container taken off one of the project's networks: when it is one of the project's
        and stays off it (not released as it ended), its definition is planned again."""
        definition = None
        try:
            definition = self._taken_off(server, observer, verdict)
        finally:  # (every check begun ends: the burst waits for it)
            self.burst.end(f"docker: a container of {definition} {verdict.why}", definition,
                           found=definition is not None)

    def _taken_off(self, server: Any, observer: heal.Observer, verdict: heal.Verdict) -> str | None:
        """The definition of the project's container the event took off its network for good."""
        labels = observer.detached(verdict.container_id, verdict.name, timeout=SETTLE_S)
        definition = (labels or {}).get("syncer.definition")
        if labels is None or labels.get("syncer.project") != self.project or not definition:
            return None
        if self._first_of_twins(verdict.container_id, verdict.name):
            log.info("docker %s: disconnect %s from %s", server.name, verdict.container_id[:12], verdict.name,
                     extra={"event": "docker.event"})
        return definition

    def _first_of_twins(self, container_id: str, network: str) -> bool:
        """Whether this disconnect is the first of Docker's two events for it (the log line is
        said once; both checks run, and the burst makes them one request)."""
        now = time.monotonic()
        with self._lock:
            self._said = {k: t for k, t in self._said.items() if now - t < TWIN_S}
            first = (container_id, network) not in self._said
            self._said[(container_id, network)] = now
        return first

    def _finished(self, server: Any, verdict: heal.Verdict) -> None:
        log.info("docker %s: %s %s (a container that runs to completion is a `kind: job` in its template)",
                 server.name, verdict.name, verdict.why, extra={"event": "heal.finished"})
        try:
            heal.note_finished(self.watcher.ctx, verdict)
        except SyncerError as exc:  # not remembered: the next plan starts it again, as before
            log.warning("%s: %s", verdict.name, exc, extra={"event": "store.error"})

    def _backed_off(self, server: Any, verdict: heal.Verdict) -> bool:
        """A container that keeps ending on its own is healed after a growing wait; True when
        this heal was put off (a timer queues it)."""
        delay, count = self.crashes.delay(verdict.name)
        if not delay:
            return False
        code = "" if verdict.exit_code is None else f" with code {verdict.exit_code}"
        log.warning("docker %s: %s exited%s on its own, %d times in a row: healing it in %gs (crash loop back-off)",
                    server.name, verdict.name, code, count, delay, extra={"event": "heal.backoff"})
        self.watcher.later(f"docker: {verdict.name} {verdict.action} (after {delay:g}s of back-off)", delay,
                           kind=Kind.DOCKER, definition=verdict.definition)
        return True

    def _unhealthy(self, server: Any, verdict: heal.Verdict) -> None:
        w = self.watcher
        w.emit("instance.unhealthy", {"container": verdict.name, "server": server.name,
                                      "definition": verdict.definition})
        if not w.opts.self_heal or verdict.definition is None:
            return
        if heal.unhealthy_policy(w.ctx, verdict.definition) != "restart":
            return  # the default: report only

        def restart() -> None:
            if heal.restart_unhealthy(server, verdict.container_id, timeout=w.opts.apply.stop_timeout):
                log.info("docker %s: restarted unhealthy %s (self_heal: unhealthy: restart)", server.name,
                         verdict.name, extra={"event": "heal.restart"})

        # its own thread: a restart waits for the stop timeout, the event stream must not
        threading.Thread(target=restart, daemon=True, name=f"restart-{verdict.name}").start()
