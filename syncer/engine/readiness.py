"""Waiting for a container the apply started: running (and healthy by Docker's verdict when
it has a healthcheck), or — under a restart policy that lets it end (`restart: "no"`,
`on-failure`) — ended with exit 0 on its own, which is a one-shot that ran to completion."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from syncer.adapters.docker import Engine, EngineError
from syncer.core.errors import DockerUnavailable
from syncer.core.redact import Redactor
from syncer.stages.health import has_healthcheck, probe_output
from syncer.stages.selfheal import runs_to_completion


class ActionFailed(Exception):
    """One action failed; `rolled_back` when the old container was restored."""

    def __init__(self, message: str, *, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


RECOVERED = 2.0  # seconds a container its restart policy started again must then stay up to count as up


def wait_ready(eng: Engine, ident: str, spec: Mapping[str, Any], log: Callable[[str], None], *,
               timeout: float, settle: float, redact: Redactor, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Running, and healthy by Docker's verdict when the container has a healthcheck, whether
    the spec or the image's HEALTHCHECK gave it (`test: [NONE]` gives none). True when it
    ran to completion instead: exited 0 under a restart policy that lets it end. Without a
    healthcheck, running for `settle` seconds (a container its restart policy restarted meanwhile:
    running since at least RECOVERED; one it keeps restarting fails). A failure quotes the
    container's output, masked by `redact` before it is cut short."""
    start = time.monotonic()
    deadline = start + timeout
    started, run_began = None, start  # the current run's StartedAt, and when this wait first saw it
    while True:
        info = eng.inspect(ident)
        state = info.get("State", {})
        has_hc = has_healthcheck(info)
        if state.get("StartedAt") != started:
            started, run_began = state.get("StartedAt"), time.monotonic()
        if not state.get("Running"):
            if state.get("ExitCode") == 0 and runs_to_completion(spec.get("restart")):
                log(f"ran to completion (exit 0; restart: {spec['restart']})")
                return True
            raise ActionFailed(f"the container exited (code {state.get('ExitCode')}): "
                               f"{tail(eng, ident, redact)}".rstrip(": "))
        if has_hc:
            health = (state.get("Health") or {}).get("Status")
            if health == "healthy":
                log("healthy")
                return False
            if health == "unhealthy":
                raise ActionFailed(_crashing(eng, ident, info, redact)
                                   or "the container is unhealthy: " + probe_output(state, redact))
        elif not (state.get("Restarting") or info.get("RestartCount")):
            if time.monotonic() - start >= settle:
                return False
        elif not state.get("Restarting") and time.monotonic() - run_began >= max(settle, RECOVERED):
            return False  # (its restart policy brought it back, and it stayed up since)
        if time.monotonic() > deadline:
            raise ActionFailed(_crashing(eng, ident, info, redact) or f"not healthy within {timeout:g}s")
        sleep(0.2)


def _crashing(eng: Engine, ident: str, info: Mapping[str, Any], redact: Redactor) -> str:
    """Why a container its restart policy keeps starting again failed, when no probe said
    anything: its exit code and last lines. (Docker lists it running while it restarts, and
    calls it unhealthy with an empty probe log: "no probe output" hid the crash.)"""
    state = info.get("State") or {}
    restarts = int(info.get("RestartCount") or 0)
    if not (state.get("Restarting") or restarts) or ((state.get("Health") or {}).get("Log") or []):
        return ""
    return (f"the container keeps exiting (code {state.get('ExitCode')}; restarted {restarts} time(s) by its"
            f" restart policy): {tail(eng, ident, redact)}").rstrip(": ")


def ended_on_its_own(eng: Engine, project: str, ident: str, since: int) -> bool:
    """A container started under `restart: "no"` or `on-failure` at `since` (unix seconds), seen
    running when its wait ended: whether it has exited 0 since with no one's `kill` or `stop`
    before (what watch reads in its `die`): a one-shot that ran to completion, which plans leave
    exited. A quick seed ends a moment after its start: asked at the end of the apply, else the
    next plan would start it again, and the apply after that run it twice."""
    try:
        state = eng.inspect(ident).get("State") or {}
        if state.get("Running") or state.get("ExitCode") != 0:
            return False
        signals = eng.events(project, since=since, until=time.time(),  # (a whole second ahead: it waits for it)
                             also={"container": [ident], "event": ["kill", "stop"]})
        return not any(True for _ in signals)
    except (EngineError, DockerUnavailable):
        return False  # (a guess would be worse: the next plan starts it, as before)


def tail(eng: Engine, ident: str, redact: Redactor, lines: int = 3) -> str:
    """The container's last log lines, each masked, then joined and cut short (for a
    failure's message: a cut through a secret would leave a piece no mask knows)."""
    try:
        out = eng.logs(ident, tail=lines).strip().splitlines()
    except (EngineError, DockerUnavailable):
        return ""
    said = (line.partition(" ")[2] for line in out)  # (each line's time stamp off)
    return " | ".join(redact.text(line) for line in said if line.strip())[-100 * lines:]
