"""Actions on one instance through the API take turns, in the order they came; other instances
do not wait for them (engine/heal.py: TURNS). Against a real `syncer serve` and engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver import Served, containers, serve
from tests.helpers import IMAGE

# sh as PID 1 leaves TERM to its default, which the kernel ignores for PID 1: a stop or a
# restart waits out its whole timeout before the kill
DEAF = f"""
id: deaf
version: "1"
spec:
  image: {IMAGE}
  command: [sh, -c, "while true; do sleep 1; done"]
"""
RESTART_S = 4  # the restart's stop timeout: how long it is under way


def _defs(project: str, *names: str) -> dict[str, str]:
    return {n: f"name: {project}-{n}\ntemplate: deaf\n" for n in names}


def _restart_under_way(s: Served, docker_api: Any, ident: str) -> tuple[threading.Thread, dict[str, Any]]:
    """POST restart in a thread; returns once the engine has sent the restart's TERM (its `kill`
    event), with the thread and where its answer will be."""
    answer: dict[str, Any] = {}
    since = int(time.time())
    thread = threading.Thread(target=lambda: answer.update(
        s.ok("POST", f"/instances/{ident}/restart?timeout={RESTART_S}")["data"]))
    thread.start()
    events = docker_api.events(since=since, until=since + 30, decode=True,
                               filters={"container": ident, "event": "kill"})
    assert next(iter(events), None) is not None, "the restart never reached the engine"
    return thread, answer


@pytest.mark.parametrize("project", ["hci"], indirect=True)
def test_a_stop_sent_while_a_restart_runs_goes_after_it_and_holds(tmp_path: Path, project: str,
                                                                    docker_api: Any) -> None:
    with serve(tmp_path, project, definitions=_defs(project, "slow"), templates={"deaf": DEAF}) as s:
        ident = containers(docker_api, project)["slow"]["Id"]
        thread, restarted = _restart_under_way(s, docker_api, ident)
        stopped = s.ok("POST", f"/instances/{ident}/stop?timeout=1")["data"]
        thread.join(60)
        assert restarted["status"] == "running"  # the restart ended first, then the stop ran
        assert stopped["status"] == "exited" and stopped["held_stopped"] is True
        assert containers(docker_api, project)["slow"]["State"] == "exited"  # as the last request said
        assert s.ok("GET", f"/instances/{ident}")["data"]["held_stopped"] is True


@pytest.mark.parametrize("project", ["hci"], indirect=True)
def test_an_action_on_another_instance_does_not_wait(tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project, definitions=_defs(project, "a", "b"), templates={"deaf": DEAF}) as s:
        both = containers(docker_api, project)
        thread, restarted = _restart_under_way(s, docker_api, both["a"]["Id"])
        stopped = s.ok("POST", f"/instances/{both['b']['Id']}/stop?timeout=0")["data"]
        assert thread.is_alive(), "b's stop waited for a's restart"
        thread.join(60)
        assert stopped["status"] == "exited" and restarted["status"] == "running"
