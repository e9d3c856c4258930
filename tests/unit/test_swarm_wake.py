"""engine/swarm_wake.py: which of a manager's events say that a service's roll moved, and a
roll's wait that such an event ends (the stream itself is read from a real manager in
tests/integration/test_swarm.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from syncer.engine.swarm_wake import SLOW, Waker, rolled


def _rolled(service: str, state: str) -> dict[str, Any]:
    return {"Type": "service", "Action": "update",
            "Actor": {"ID": service, "Attributes": {"name": "web", "updatestate.new": state}}}


class _Stream:
    """Events put in by the test, read by the waker's thread until close()."""

    def __init__(self) -> None:
        self.q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while (event := self.q.get()) is not None:
            yield event

    def close(self) -> None:
        self.closed.set()
        self.q.put(None)


def _later(stream: _Stream, *events: dict[str, Any], after: float = 0.05) -> None:
    def put() -> None:
        for e in events:
            stream.q.put(e)

    threading.Timer(after, put).start()


def _gone(waker: Waker) -> bool:
    deadline = time.monotonic() + 5
    while waker.alive and time.monotonic() < deadline:
        time.sleep(0.01)
    return not waker.alive


def test_only_a_services_roll_reaching_a_state_is_news() -> None:
    assert rolled(_rolled("svc1", "updating")) == "svc1"
    assert rolled(_rolled("svc1", "completed")) == "svc1"
    assert rolled(_rolled("svc1", "rollback_completed")) == "svc1"
    for other in ({"Type": "service", "Action": "update", "Actor": {"ID": "svc1", "Attributes": {"name": "web"}}},
                  {"Type": "service", "Action": "create", "Actor": {"ID": "svc1", "Attributes": {"name": "web"}}},
                  {"Type": "container", "Action": "start",
                   "Actor": {"ID": "c1", "Attributes": {"com.docker.swarm.service.id": "svc1"}}},
                  {"Type": "service", "Action": "update", "Actor": {"Attributes": {"updatestate.new": "completed"}}},
                  {}):
        assert rolled(other) is None, other


def test_a_wait_ends_when_its_services_roll_moved_since_the_list_it_saw() -> None:
    stream = _Stream()
    waker = Waker(lambda: stream)
    try:
        waker.note(_rolled("svc1", "updating"))  # before the list the waiter saw (seq 1)
        t0 = time.monotonic()
        assert waker.wait("svc1", after=1, timeout=0.2) == (1, False)  # nothing since: the clock ends it
        assert time.monotonic() - t0 >= 0.2

        _later(stream, _rolled("other", "completed"), _rolled("svc1", "completed"))
        t0 = time.monotonic()
        assert waker.wait("svc1", after=1, timeout=10) == (3, True)  # its own move, not the other's
        assert time.monotonic() - t0 < 5
    finally:
        waker.close()
    assert stream.closed.wait(5) and _gone(waker)
    t0 = time.monotonic()
    assert waker.wait("svc1", after=3, timeout=10) == (3, False)  # a stream that ended: the clock, at once
    assert time.monotonic() - t0 < 1


def test_a_stream_that_cannot_be_opened_leaves_the_waits_to_the_clock() -> None:
    def refused() -> Any:
        raise OSError("no such socket")

    waker = Waker(refused)
    assert _gone(waker)
    waker.close()


def test_a_rolls_wait_is_ended_by_the_event_not_by_the_clock() -> None:
    """The deployer's wait for UpdateStatus: a list (updating), a pause of up to SLOW that the
    `completed` event ends at 0.3 s, one more list: no sleep on the clock at all."""
    from syncer.core.model import Desired
    from syncer.engine import swarm_apply

    stream = _Stream()
    lists: list[float] = []

    def project_services(_project: str) -> list[dict[str, Any]]:
        lists.append(time.monotonic())
        state = "updating" if len(lists) == 1 else "completed"
        return [{"ID": "svc1", "UpdateStatus": {"State": state, "StartedAt": "2026-12-02T03:00:00Z"}}]

    slept: list[float] = []
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    deployer = swarm_apply.SwarmDeployer(fake, Desired("p", (), ()), {}, timeout=60.0,  # type: ignore[arg-type]
                                         sleep=slept.append)
    deployer.swarm = SimpleNamespace(project_services=project_services)  # type: ignore[assignment]
    deployer._waker = Waker(lambda: stream)
    _later(stream, _rolled("svc1", "completed"), after=0.3)
    lines: list[str] = []
    t0 = time.monotonic()
    try:
        deployer._wait_update("svc1", "", "", lines.append)
    finally:
        deployer.close()
    took = time.monotonic() - t0
    assert slept == [] and len(lists) == 2, (slept, lists)
    assert 0.25 < took < SLOW, took
    assert lines == ["update updating", "update completed"]
    assert stream.closed.wait(5)  # close() ended the reading


def _quiet_deployer(task_spec: dict[str, Any], completed_after: int) -> tuple[Any, list[str], list[float]]:
    """A deployer whose service shows no new UpdateStatus until list `completed_after`, whose
    template is {"ContainerSpec": {"Image": "b"}, "Runtime": "container"}, and whose one task
    runs `task_spec`."""
    from syncer.core.model import Desired
    from syncer.engine import swarm_apply

    lists: list[int] = []

    def project_services(_project: str) -> list[dict[str, Any]]:
        lists.append(1)
        done = len(lists) >= completed_after
        # (until then, the UpdateStatus of an earlier roll: started before this update)
        return [{"ID": "svc1", "UpdateStatus": {"State": "completed", "StartedAt": "new" if done else "before"}}]

    template = {"ContainerSpec": {"Image": "b"}, "Runtime": "container"}
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    slept: list[float] = []
    deployer = swarm_apply.SwarmDeployer(fake, Desired("p", (), ()), {}, timeout=60.0,  # type: ignore[arg-type]
                                         sleep=slept.append)
    deployer.swarm = SimpleNamespace(  # type: ignore[assignment]
        project_services=project_services, inspect_service=lambda _i: {"Spec": {"TaskTemplate": template}},
        service_tasks=lambda _i: [{"DesiredState": "running", "Status": {"State": "running"}, "Spec": task_spec}])
    lines: list[str] = []
    return deployer, lines, slept


def test_an_update_swarm_starts_no_roll_for_ends_when_the_tasks_already_run_the_template(monkeypatch: Any) -> None:
    from syncer.engine import swarm_apply

    monkeypatch.setattr(swarm_apply, "POLL", 0.0)  # each look lists afresh
    deployer, lines, slept = _quiet_deployer({"ContainerSpec": {"Image": "b"}}, completed_after=100)
    deployer._wait_update("svc1", "before", "", lines.append)
    assert lines == ["its tasks already run this template: Swarm has nothing to roll"] and len(slept) == 2


def test_an_update_whose_roll_has_not_begun_is_waited_for_while_the_tasks_run_the_old_template(
        monkeypatch: Any) -> None:
    from syncer.engine import swarm_apply

    monkeypatch.setattr(swarm_apply, "POLL", 0.0)
    deployer, lines, slept = _quiet_deployer({"ContainerSpec": {"Image": "a"}}, completed_after=6)
    deployer._wait_update("svc1", "before", "", lines.append)
    assert lines == ["update completed"] and len(slept) == 5


def test_a_placement_swarm_keeps_its_tasks_under_is_no_roll_and_new_ports_always_are(monkeypatch: Any) -> None:
    """Swarm keeps a task whose node still fits a changed placement (preferences, the most
    replicas per node): no roll, no UpdateStatus. New published ports always roll: their wait
    never takes the tasks' template for Swarm's verdict."""
    from syncer.engine import swarm_apply

    monkeypatch.setattr(swarm_apply, "POLL", 0.0)
    # the task runs the template as it was before the placement changed: the template has none
    deployer, lines, slept = _quiet_deployer({"ContainerSpec": {"Image": "b"}, "Placement": {"MaxReplicas": 1}},
                                             completed_after=100)
    deployer._wait_update("svc1", "before", "", lines.append)
    assert lines == ["its tasks already run this template: Swarm has nothing to roll"]
    deployer, lines, slept = _quiet_deployer({"ContainerSpec": {"Image": "b"}}, completed_after=6)
    deployer._wait_update("svc1", "before", "", lines.append, template_only=False)
    assert lines == ["update completed"] and len(slept) == 5
