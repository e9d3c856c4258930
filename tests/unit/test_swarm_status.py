"""A Swarm service's state words and status line from its tasks (stages/swarm_status.py), what
the plan, `status` and `instances` make of them: QA found a service called `running` with 1 of
its 3 tasks running, `starting` on a drained node, a plan saying only "in sync" while no task
ran, and `instances` without the health of a task whose container is healthy."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from syncer.cli.views import closing_line, plan_text, status_text
from syncer.core.model import LiveTask, ServerState
from syncer.engine.status import DefinitionStatus
from syncer.stages.swarm_status import noop_cause, service_state
from tests.unit.test_swarm import _Engine, _plan, _service, _spec

NO_NODE = "no suitable node (1 node not available for new tasks)"


def _task(ident: str, slot: int, state: str, desired: str = "running", *, error: str = "", at: str = "2",
          message: str = "", container: str = "") -> LiveTask:
    return LiveTask(ident, "web", "svc1", slot, "node1", state, desired, error, container, at, message=message)


def test_a_service_with_some_of_its_tasks_running_is_degraded_with_swarms_reason() -> None:
    tasks = [_task("t1", 1, "running"),
             _task("t2", 2, "ready", "ready"), _task("t3", 3, "starting"),  # a failed one's successor; one starting
             _task("f1", 2, "failed", "shutdown", error="task: non-zero exit (3)", at="1"),
             _task("f0", 2, "failed", "shutdown", error="task: non-zero exit (9)", at="0")]
    assert service_state(tasks, 3) == (
        "degraded", "1/3 task(s) running: 1 restarting, 1 starting; last failure: task: non-zero exit (3)")


def test_a_service_whose_tasks_swarm_cannot_place_is_pending_with_the_schedulers_reason() -> None:
    tasks = [_task(f"t{slot}", slot, "pending", error=NO_NODE) for slot in (1, 2, 3)]
    # (a drain rejects the tasks it moves: no failure of the tasks Swarm places now)
    rejected = _task("old", 2, "rejected", "shutdown", error="error while removing network", at="1")
    assert service_state([*tasks, rejected], 3) == ("pending", f"0/3 task(s) running: 3 not placed: {NO_NODE}")
    # a stop-first roll's new task waits as desired `ready` until the old one stopped: not placed either
    waiting = _task("t4", 1, "pending", "ready", error=NO_NODE)
    assert service_state([waiting], 1) == ("pending", f"0/1 task(s) running: 1 not placed: {NO_NODE}")
    # no error yet: Swarm's message
    assert service_state([_task("t1", 1, "pending", message="pending task scheduling")], 1) == (
        "pending", "0/1 task(s) running: 1 not placed: pending task scheduling")


def test_a_service_whose_tasks_all_run_or_that_wants_none_keeps_its_words() -> None:
    both = [_task("t1", 1, "running"), _task("t2", 2, "running")]
    assert service_state(both, 2) == ("running", "2/2 task(s) running")
    assert service_state([], 0) == ("stopped", "0/0 task(s) running")
    assert service_state([], None) == ("starting", "0/0 task(s) running")  # a global one Swarm made no task for yet
    assert service_state([_task("t1", 1, "preparing")], 1) == ("starting", "0/1 task(s) running: 1 preparing")
    gone = _task("f1", 1, "failed", "shutdown", error="task: non-zero exit (1)")
    assert service_state([gone], 1) == (  # restart: no: Swarm makes no task again (tests/unit/test_swarm_slots.py)
        "failing", "0/1 task(s) running: 1 not started again (their restart policy); last failure: task: non-zero"
        " exit (1)")


def test_the_plan_of_a_service_short_of_tasks_is_a_noop_that_says_so_and_shows_without_show_noop() -> None:
    c = _spec(replicas=3)
    status = f"0/3 task(s) running: 3 not placed: {NO_NODE}"
    p = _plan([c], [replace(_service(c), state="pending", status=status)])
    [a] = p.actions
    assert (a.action, a.cause) == (
        "noop", f"in sync, but {status} (Swarm places them when a node can take them)")
    assert a.attention and not p.has_changes  # nothing to write: plan --detailed-exitcode stays 0
    assert f"  = noop     web  rev 1   in sync, but {status}" in plan_text(p)
    assert closing_line(p) == "No changes. 1 service(s) in sync. Not all tasks running: web (see above)."
    well = _plan([_spec()], [_service(_spec())])
    assert not well.actions[0].attention and "noop" not in plan_text(well)
    assert closing_line(well) == "No changes. 1 service(s) in sync."
    assert noop_cause("degraded", "1/3 task(s) running: 2 restarting") == (
        "in sync, but 1/3 task(s) running: 2 restarting (Swarm starts them, and a failed one again as its restart"
        " policy says)")


def test_status_text_gives_a_degraded_service_its_status_line() -> None:
    row = DefinitionStatus("web", "cluster", 1, [
        {"name": "web", "state": "degraded", "health": None, "exit_code": None,
         "status": "1/3 task(s) running: 2 restarting"}], True, [], "active", False)
    assert "web=degraded (1/3 task(s) running: 2 restarting)" in status_text([row])
    row = replace(row, containers=[{**row.containers[0], "state": "running", "status": "3/3 task(s) running"}])
    assert "web=running  " in status_text([row])


def test_observe_reads_the_health_of_the_tasks_containers_on_the_manager_for_instances() -> None:
    from syncer.adapters.swarm import Swarm
    from syncer.core import labels as L
    from syncer.core.model import LiveContainer

    labels = {L.PROJECT: "acme", L.DEFINITION: "web"}
    service = {"ID": "svc1", "Spec": {"Name": "web", "Labels": labels, "Mode": {"Replicated": {"Replicas": 3}},
                                      "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}}}

    def task(ident: str, slot: int, state: str, container: str = "") -> dict[str, Any]:
        return {"ID": ident, "ServiceID": "svc1", "Slot": slot, "NodeID": "n1", "DesiredState": "running",
                "Status": {"State": state, "ContainerStatus": {"ContainerID": container}}}

    class Reads:
        def services(self) -> list[dict[str, Any]]:
            return [service]

        def tasks(self, filters: Any) -> list[dict[str, Any]]:
            # slot 2 on another node (its container is not in this engine's list); slot 3 not placed
            return [task("t1", 1, "running", "c1"), task("t2", 2, "running", "c9"), task("t3", 3, "pending")]

        def networks(self) -> list[dict[str, Any]]:
            return []

    listed: list[str] = []

    class Engine(_Engine):
        def list_project(self, project: str) -> list[LiveContainer]:
            listed.append(project)
            return [LiveContainer("c1", "web.1.x", "cluster", "running", "healthy", labels)]

    swarm = Swarm(Engine(Reads(), None))  # type: ignore[arg-type]
    [live], tasks, _, _ = swarm.observe("acme")
    assert (live.state, live.health, live.status) == ("degraded", None, "2/3 task(s) running: 1 not placed: no node"
                                                                         " given yet")
    assert listed == [] and [t.health for t in tasks] == [None, None, None]  # a plan and status do not ask
    [live], tasks, _, _ = swarm.observe("acme", health=True)
    assert listed == ["acme"] and [t.health for t in tasks] == ["healthy", None, None]
    rows = ServerState("cluster", True, (live,), kind="swarm", tasks=tuple(tasks)).instances()
    assert [(r.name, r.health) for r in rows] == [("web.1", "healthy"), ("web.2", None), ("web.3", None)]


def test_a_service_whose_tasks_all_ran_to_their_end_is_exited_not_starting() -> None:
    # `restart: on-failure` (or none): a task that exited 0 ends its slot; Swarm shuts it down and starts no other
    done = [_task(f"t{slot}", slot, "complete", "shutdown", at="2") for slot in (1, 2)]
    assert service_state(done, 2) == (
        "exited", "0/2 task(s) running: 2 complete (exit 0: their restart policy starts none again)")
    assert noop_cause(*service_state(done, 2)).startswith("in sync (0/2")  # as a one-shot container left exited
    # one slot's last task failed (its restart policy gave up): failing, not exited
    failed = [done[0], _task("f2", 2, "failed", "shutdown", error="task: non-zero exit (1)", at="3")]
    assert service_state(failed, 2)[0] == "failing"
    # a slot whose completed task a roll shut down has its next one on its way: not exited
    rolling = [*done, _task("n1", 1, "starting", at="4")]
    assert service_state(rolling, 2)[0] == "starting"


def test_a_service_started_again_from_0_after_an_old_failure_is_starting_until_its_tasks_fail() -> None:
    # held at 0 by `instances stop` (its tasks shut down), an older failure in its history, started again to 3:
    # before Swarm makes the new tasks, nothing failed since (slot_rows lists no slot given up either)
    history = [_task("f1", 1, "failed", "shutdown", error="task: non-zero exit (1)", at="1"),
               _task("s1", 1, "shutdown", "shutdown", at="2")]
    assert service_state(history, 3) == ("starting", "0/3 task(s) running: 3 not made yet")
