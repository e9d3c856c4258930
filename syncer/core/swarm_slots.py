"""A Swarm service's slots, as `instances` lists them and `status` judges them: one row for each
slot Swarm wants a task in (a global service's: each node it made a task for), whether its task
runs, waits out its restart delay (`restarting`, as a container under its restart policy) or
was not started again (its restart policy gave up: the slot's last task, `failed`). Swarm's
own list (`GET /tasks`, desired `running`) leaves the slot of a task waiting out its restart
delay out (that task is desired `ready` until the delay is over) and a slot given up on has no
task it wants: a 1/3 service read as 1 or 2 rows.

Pure, stdlib only: `ServerState.instances` (core/live.py) and stages/swarm_status.py build on it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from syncer.core.live import LiveContainer, LiveTask

CURRENT = ("running", "ready")  # desired states of a slot's task: `ready` waits out the restart delay
FAILED = ("failed", "rejected")
RESTARTING = "restarting"  # the word of a slot whose task failed and whose next one waits (Docker's)
_ENDED = (*FAILED, "complete")  # a slot's last task Swarm starts no other after: its restart policy's end


def slot_of(task: LiveTask) -> str:
    """A replicated task's slot, a global one's node: where Swarm replaces a failed task."""
    return str(task.slot) if task.slot else task.node


def previous_failure(tasks: Iterable[LiveTask], slot: str) -> LiveTask | None:
    """The task before the slot's current one (its newest that Swarm wants no more) when that
    one failed: the slot restarts after a failure. None when it ended otherwise (a roll shut
    it down) or the slot had none before (its first task on its way)."""
    before = [t for t in tasks if slot_of(t) == slot and t.desired not in CURRENT]
    last = max(before, key=lambda t: t.updated, default=None)
    return last if last is not None and last.state in FAILED else None


def restarting(task: LiveTask, tasks: Iterable[LiveTask]) -> bool:
    """Whether a task waits out its restart delay after its slot's task failed (desired `ready`;
    a stop-first roll's new task also waits as `ready`, for the old one to stop, after no failure)."""
    return task.desired == "ready" and previous_failure(tasks, slot_of(task)) is not None


def slot_rows(server: str, project: str, services: Sequence[LiveContainer],
              tasks: Sequence[LiveTask]) -> dict[str, list[LiveContainer]]:
    """Each service's `instances` rows by its id: one per task Swarm wants in a slot (running or
    on its way: desired `running`, or `ready` while it waits out its restart delay), and for a
    replicated service one per slot 1..replicas with no such task but one before (its restart
    policy gave up). A job's are its tasks desired `running` as before (its runs end)."""
    kinds = {c.id: c for c in services}
    rows: dict[str, list[LiveContainer]] = {}
    by_service: dict[str, list[LiveTask]] = {}
    for t in tasks:
        by_service.setdefault(t.service_id, []).append(t)
    for ident, mine in by_service.items():
        service = kinds.get(ident)
        job = service is not None and service.mode.endswith("job")
        current = [t for t in mine if t.desired == "running" or (t.desired == "ready" and not job)]
        made = [_row(server, project, t, mine) for t in current]
        if service is not None and service.mode == "replicated" and service.replicas:
            taken = {slot_of(t) for t in current}
            made += [_given_up(server, project, t) for t in given_up(mine, service.replicas, taken)]
        if made:
            rows[ident] = sorted(made, key=lambda r: (r.replica, r.name))
    return rows


def _row(server: str, project: str, task: LiveTask, mine: Sequence[LiveTask]) -> LiveContainer:
    """A task Swarm wants in its slot: its state (`restarting` while it waits out the restart
    delay after a failure), and its slot's last failure when it follows one."""
    failed = previous_failure(mine, slot_of(task))
    waits = restarting(task, mine)
    state = RESTARTING if waits else task.state
    status = (f"waiting out its restart delay (task {task.state})" if waits
              else f"task {task.state}" + (f": {task.error}" if task.error else ""))
    if failed is not None and failed.error:
        status += f"; last failure: {failed.error}"
    return _container(server, project, task, state, status)


def given_up(mine: Sequence[LiveTask], replicas: int, taken: set[str]) -> list[LiveTask]:
    """The newest task of each slot 1..replicas that has no task Swarm wants (`taken`: the slots
    that have one) when it ended there — failed, rejected or complete: its restart policy starts
    no other. Not a slot that never had a task, nor one whose newest a roll or a scale to 0 shut
    down (Swarm is about to make its next one)."""
    newest: dict[str, LiveTask] = {}
    for t in mine:
        key = slot_of(t)
        if not t.slot or t.slot > replicas or key in taken:
            continue
        if key not in newest or t.updated > newest[key].updated:
            newest[key] = t
    # (a task a roll shut down is followed by the roll's own: that slot is not given up)
    return [newest[k] for k in sorted(newest, key=int) if newest[k].state in _ENDED]


def _given_up(server: str, project: str, task: LiveTask) -> LiveContainer:
    """A slot Swarm starts no task in any more (its restart policy's max_attempts, or `restart:
    no`): its last task's state and error."""
    why = f": {task.error}" if task.error else ""
    return _container(server, project, task, task.state,
                      f"task {task.state}{why}; not started again (its restart policy)")


def _container(server: str, project: str, task: LiveTask, state: str, status: str) -> LiveContainer:
    """A task's row, named `<service>.<slot>` (a global service's `<service>.<node>`)."""
    labels: Mapping[str, str] = {"syncer.project": project, "syncer.definition": task.service,
                                 "syncer.replica": str(task.slot)}
    return LiveContainer(id=task.id, name=f"{task.service}.{task.slot or task.node[:12]}", server=server,
                         state=state, health=task.health, labels=labels, status=status)
