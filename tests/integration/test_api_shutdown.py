"""`syncer serve` stops in bounded time on SIGTERM, whatever a request in flight waits for.

Regression (a CI flake of test_api_schemathesis): `POST /instances/{id}/restart?timeout=600`
of a container whose TERM was lost (sent while its shell had not yet set its trap: PID 1
ignores a signal it has no handler for, and a loaded machine widens that moment) waits,
as Docker does, the 600 s before its kill; serve then waited for that request without bound
(uvicorn's graceful shutdown has none) and was killed after 60 s. A container that ignores
TERM outright makes the same wait at will.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apiserver import serve
from tests.helpers import IMAGE, git_init, simple_repo, unique, wait_until

ROLLBACK = "/api/v1/deployments/deploy_x/rollback"
WAITING = "request(s) applying to answer"  # the app's stop logs it as it waits for a rollback's answer

DEAF = f"""
id: deaf
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "trap '' TERM; while true; do sleep 1; done"]
"""


@pytest.mark.parametrize("project", ["h1"], indirect=True)
def test_sigterm_ends_serve_soon_while_a_restart_waits_out_a_long_stop_timeout(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project, definitions={"deaf": f"name: {project}-deaf\ntemplate: deaf\n"},
               templates={"deaf": DEAF}) as s:
        ident = s.ok("GET", "/instances")["data"][0]["id"]
        container = docker_api.inspect_container(f"{project}-deaf")["Id"]
        since = int(time.time()) - 1
        answers: list[Any] = []

        def restart() -> None:
            try:
                answers.append(s.call("POST", f"/instances/{ident}/restart", params={"timeout": 600}).status_code)
            except httpx.HTTPError as exc:  # (the server went away: that is what this test does to it)
                answers.append(exc)

        asking = threading.Thread(target=restart, daemon=True)
        asking.start()

        def signalled() -> bool:  # Docker sent the TERM of the restart's stop: the wait of 600 s began
            events = docker_api.events(since=since, until=int(time.time()) + 1, decode=True,
                                       filters={"container": container, "event": "kill"})
            return any(e.get("Actor", {}).get("Attributes", {}).get("signal") == "15" for e in events)

        wait_until(signalled, 30, message="the restart's stop to send TERM")
        assert not answers  # the request is in flight
        assert s.proc is not None
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        code = s.proc.wait(45)  # (unbounded before: the restart would hold it 600 s)
        assert code == 0, s.server_log()[-3000:]
        assert time.monotonic() - started < 30, s.server_log()[-3000:]
        assert "Traceback" not in s.server_log() and "timeout graceful shutdown exceeded" not in s.server_log()
        asking.join(10)
        assert answers == [503]  # cut with an answer saying why, not a connection dropped
        assert "POST /api/v1/instances/" in s.server_log() and "cut, the server is stopping" in s.server_log()


def test_a_rollback_in_flight_is_finished_and_answered_before_the_server_stops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The requests' grace does not cut an apply: a rollback (which answers once its apply is
    done) goes on, is answered, and only then is the service closed. In-process, the apply
    held by a stand-in: what is tested is the server's stop."""
    from syncer.api.app import create_app
    from syncer.cli import views
    from syncer.engine import operations

    ctx, key = _keyed(tmp_path)
    caplog.set_level(logging.INFO, logger="syncer.api.app")
    applying, done = threading.Event(), threading.Event()

    def rollback(*args: Any, **kwargs: Any) -> str:
        applying.set()
        assert done.wait(60)
        return "report"

    monkeypatch.setattr(operations, "rollback_deployment", rollback)
    monkeypatch.setattr(views, "apply_dict", lambda report: {"applied": report})
    with _stopped_during_a_rollback(create_app(ctx, sample_interval=None), key, applying) as (stopping, answers):
        wait_until(lambda: WAITING in caplog.text, 30, message="the stop to wait for the rollback")
        assert stopping.is_alive() and not answers  # the grace of 1 s is over: neither cut nor closed under it
        done.set()
    assert [(r.status_code, r.json()["data"]) for r in answers] == [(200, {"applied": "report"})]


@pytest.mark.parametrize("late", ["answer", "thread"])
def test_a_rollback_is_answered_before_the_service_closes_however_late_its_answer_or_its_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, late: str) -> None:
    """Regression (review of 67631ef): the stop waited only for the rollback's apply, counted in
    its worker thread. An answer still being built after the apply (`answer`), or an apply whose
    thread had not yet started, the pool busy (`thread`), met a closed service: 503 "this request
    was cut" for a rollback that worked, or an apply over closed Docker clients and store."""
    from starlette.concurrency import run_in_threadpool

    from syncer.api.app import create_app
    from syncer.api.routes import deployments
    from syncer.api.service import Service
    from syncer.cli import views
    from syncer.engine import operations

    ctx, key = _keyed(tmp_path)
    caplog.set_level(logging.INFO, logger="syncer.api.app")
    entered, closed = threading.Event(), threading.Event()
    early: list[bool] = []  # per late step: True when the service was closed before it went on
    close = Service.close

    def closing(self: Service) -> None:
        closed.set()
        close(self)

    def stopped() -> bool:  # the stop closed the service, or waits for this request's answer
        return closed.is_set() or WAITING in caplog.text

    def answer(report: str) -> dict[str, str]:
        if late == "answer":  # built after the apply: slow, here held until the stop has gone on
            entered.set()
            wait_until(stopped, 30, interval=0.02, message="the stop to close the service or wait for the answer")
            early.append(closed.is_set())
        return {"applied": report}

    async def busy_pool(func: Any, *args: Any) -> Any:  # the apply's thread starts once the stop has gone on
        entered.set()
        while not stopped():
            await asyncio.sleep(0.02)
        early.append(closed.is_set())
        return await run_in_threadpool(func, *args)

    monkeypatch.setattr(Service, "close", closing)
    monkeypatch.setattr(operations, "rollback_deployment", lambda *args, **kwargs: "report")
    monkeypatch.setattr(views, "apply_dict", answer)
    if late == "thread":
        monkeypatch.setattr(deployments, "run_in_threadpool", busy_pool)
    with _stopped_during_a_rollback(create_app(ctx, sample_interval=None), key, entered) as (_, answers):
        pass  # (the stop goes on by itself)
    assert early == [False]
    assert [(r.status_code, r.json()["data"]) for r in answers] == [(200, {"applied": "report"})]


@contextmanager
def _stopped_during_a_rollback(app: Any, key: str,
                               started: threading.Event) -> Iterator[tuple[threading.Thread, list[Any]]]:
    """Serves `app` (its requests' grace: 1 s), asks it for a rollback and, once `started` is
    set, stops it; yields the stop's thread and the answers while both go on, then waits for both."""
    from syncer.api.app import serve_in_thread

    handle = serve_in_thread(app, "127.0.0.1", 0, grace=1)
    answers: list[Any] = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        url = f"http://127.0.0.1:{handle.port}{ROLLBACK}"
        asking = threading.Thread(target=lambda: answers.append(client.post(url)), daemon=True)
        asking.start()
        assert started.wait(30)
        stopping = threading.Thread(target=handle.stop, daemon=True)
        stopping.start()
        yield stopping, answers
        asking.join(30)
        stopping.join(30)
    assert not stopping.is_alive()


def _keyed(tmp_path: Path) -> tuple[Any, str]:
    """An empty project's context, and a write key of its store."""
    from syncer.engine import facade as engine
    from syncer.engine import operations

    repo = simple_repo(tmp_path / "r", unique("h5"), definitions={})
    git_init(repo)
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "s")
    store = operations.state_store(ctx)
    try:
        return ctx, operations.create_api_key(store, name="t", permission="write").key
    finally:
        store.close()
