"""A Swarm service whose tasks keep failing: `instances` gives it one row per slot Swarm wants
(core/swarm_slots.py), the one waiting out its restart delay `restarting` with the last failure
(Swarm's own list, desired `running`, left it out: a degraded 1/3 service read as 1 or 2 rows),
and `status` calls one with none running `failing`, not `starting` (stages/swarm_status.py)."""

from __future__ import annotations

from syncer.core.model import LiveContainer, LiveTask, ServerState
from syncer.core.swarm_slots import slot_rows
from syncer.stages.swarm_status import noop_cause, service_state

EXIT = "task: non-zero exit (1)"


def _task(ident: str, slot: int, state: str, desired: str = "running", *, error: str = "", at: str = "2",
          service: str = "svc1") -> LiveTask:
    return LiveTask(ident, "web", service, slot, "node1", state, desired, error, "", at)


def _failed(ident: str, slot: int, at: str = "1") -> LiveTask:
    return _task(ident, slot, "failed", "shutdown", error=EXIT, at=at)


def _service(replicas: int | None, mode: str = "replicated") -> LiveContainer:
    return LiveContainer("svc1", "web", "cluster", "degraded", None, {"syncer.project": "acme"},
                         replicas=replicas, mode=mode)


def _rows(tasks: list[LiveTask], service: LiveContainer) -> list[tuple[str, str, str]]:
    return [(r.name, r.state, r.status) for r in slot_rows("cluster", "acme", [service], tasks).get("svc1", [])]


def test_instances_lists_one_row_per_slot_the_one_waiting_out_its_restart_delay_restarting() -> None:
    tasks = [_task("t1", 1, "running"),
             _task("t2", 2, "ready", "ready"), _failed("f2", 2), _failed("f2old", 2, at="0"),
             _task("t3", 3, "starting"), _failed("f3", 3)]  # its delay is over: on its way again
    assert _rows(tasks, _service(3)) == [
        ("web.1", "running", "task running"),
        ("web.2", "restarting", f"waiting out its restart delay (task ready); last failure: {EXIT}"),
        ("web.3", "starting", f"task starting; last failure: {EXIT}")]
    row = slot_rows("cluster", "acme", [_service(3)], tasks)["svc1"][1]
    assert (row.id, row.definition, row.replica, row.labels["syncer.project"]) == ("t2", "web", 2, "acme")


def test_a_slot_whose_restart_policy_gave_up_is_its_last_task_and_says_so() -> None:
    """max_attempts spent: Swarm wants no task in slots 2 and 3 any more (their last ones failed)."""
    tasks = [_task("t1", 1, "running"), _failed("f2", 2), _failed("f2old", 2, at="0"), _failed("f3", 3)]
    assert _rows(tasks, _service(3)) == [
        ("web.1", "running", "task running"),
        ("web.2", "failed", f"task failed: {EXIT}; not started again (its restart policy)"),
        ("web.3", "failed", f"task failed: {EXIT}; not started again (its restart policy)")]
    # a slot above the replicas (scaled down), one a roll shut down (its new task comes), one never made: no row
    shut = _task("s2", 2, "shutdown", "shutdown")
    assert _rows([_task("t1", 1, "running"), shut, _failed("f4", 4)], _service(3)) == [
        ("web.1", "running", "task running")]


def test_a_task_waiting_for_the_one_a_roll_stops_is_not_restarting() -> None:
    """A stop-first roll's new task waits as desired `ready` too, after no failure."""
    tasks = [_task("new", 1, "ready", "ready"), _task("old", 1, "shutdown", "shutdown")]
    assert _rows(tasks, _service(1)) == [("web.1", "ready", "task ready")]
    assert service_state(tasks, 1) == ("starting", "0/1 task(s) running: 1 ready")


def test_a_service_with_no_task_running_after_failures_is_failing_with_the_last_failure() -> None:
    tasks = [_task("t1", 1, "ready", "ready"), _failed("f1", 1),
             _task("t2", 2, "ready", "ready"), _failed("f2", 2),
             _task("t3", 3, "assigned"), _failed("f3", 3)]  # (its delay over: on its way again)
    state, status = service_state(tasks, 3)
    assert (state, status) == ("failing", f"0/3 task(s) running: 1 assigned, 2 restarting; last failure: {EXIT}")
    assert noop_cause(state, status) == (
        f"in sync, but {status} (Swarm starts a failed one again while its restart policy allows)")
    # its restart policy gave up on every slot
    assert service_state([_failed("f1", 1), _failed("f2", 2)], 2) == (
        "failing", f"0/2 task(s) running: 2 not started again (their restart policy); last failure: {EXIT}")


def test_a_service_whose_first_tasks_are_on_their_way_is_starting() -> None:
    tasks = [_task("t1", 1, "preparing"), _task("t2", 2, "assigned")]
    assert service_state(tasks, 2) == ("starting", "0/2 task(s) running: 1 assigned, 1 preparing")
    # a task that failed long ago, followed by a roll's clean shut down: the slot's new task follows no failure
    rolled = [_task("t1", 1, "starting"), _task("s1", 1, "shutdown", "shutdown", at="1"), _failed("f1", 1, at="0")]
    assert service_state(rolled, 1)[0] == "starting"


def test_a_global_service_and_a_job_keep_their_rows() -> None:
    """A global service's rows are its tasks (no slots to count); a job's, its tasks desired running."""
    glob = [_task("g1", 0, "running"), _task("g2", 0, "ready", "ready")]
    glob[1] = LiveTask("g2", "web", "svc1", 0, "node2", "ready", "ready", "", "", "2")
    assert [r.name for r in slot_rows("cluster", "acme", [_service(None, "global")], glob)["svc1"]] == [
        "web.node1", "web.node2"]
    job = [_task("j1", 1, "running"), _task("j2", 2, "complete", "complete")]
    assert _rows(job, _service(None, "replicated-job")) == [("web.1", "running", "task running")]


def test_instances_list_notes_why_a_row_does_not_run() -> None:
    """The table's last column: held stopped, finished, else a row's status when it does not run."""
    from syncer.cli.instances import _note

    row = {"held_stopped": False, "finished": False, "state": "restarting",
           "status": f"waiting out its restart delay (task ready); last failure: {EXIT}"}
    assert _note(row) == row["status"]
    assert _note({**row, "state": "running", "status": "task running"}) == ""
    assert _note({**row, "held_stopped": True}) == "held stopped"
    assert _note({**row, "finished": True, "state": "exited"}) == "finished"


def test_the_api_gives_an_instance_its_detail_and_takes_a_services_words_as_a_status_filter() -> None:
    """GET /instances: `status` is the state word (the seed's), `detail` the line saying why."""
    import typing

    from syncer.api.routes.instances import InstanceStatus, _instance

    rows = slot_rows("cluster", "acme", [_service(3)], [_task("t2", 2, "ready", "ready"), _failed("f2", 2)])
    inst = _instance(rows["svc1"][0], {"web": "def_1"}, set(), {}, 0.0)
    assert (inst["status"], inst["detail"], inst["replica"]) == (
        "restarting", f"waiting out its restart delay (task ready); last failure: {EXIT}", 2)
    assert {"restarting", "failed", "degraded", "failing"} <= set(typing.get_args(InstanceStatus))


def test_server_state_instances_on_a_swarm_server_are_the_slot_rows_and_a_service_with_none() -> None:
    tasks = (_task("t1", 1, "running"), _task("t2", 2, "ready", "ready"), _failed("f2", 2), _failed("f3", 3))
    held = LiveContainer("svc2", "db", "cluster", "stopped", None, {"syncer.project": "acme"}, replicas=0,
                         mode="replicated")
    rows = ServerState("cluster", True, (_service(3), held), kind="swarm", tasks=tasks).instances()
    assert [(r.name, r.state) for r in rows] == [
        ("web.1", "running"), ("web.2", "restarting"), ("web.3", "failed"), ("db", "stopped")]
