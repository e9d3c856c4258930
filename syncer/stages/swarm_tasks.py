"""What a deployment reads in a Swarm service's tasks, as the manager lists them (raw rows):
which failed or wait, and why; how many run; whether a job's run completed; and in the body
it sent: how many tasks to wait for, whether they are health-checked, how long a roll takes. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from syncer.stages.health import probes
from syncer.stages.swarm_jobs import job_complete, job_completions

_NOT_YET = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")  # before running


class TaskNote(NamedTuple):
    """One task a deployment reports: `ended` (it failed, or Swarm stopped it) or still on its
    way (`pending`, with the scheduler's reason as its error: Swarm could not place it)."""

    ident: str
    where: str  # `slot N`, or a global service's (or job's) `node ID`
    state: str
    why: str
    ended: bool

    @property
    def line(self) -> str:
        """`task ID (slot N) failed, now STATE: WHY` (or `is STATE: WHY`), for the log."""
        return f"task {self.ident[:12]} ({self.where}) {'failed, now' if self.ended else 'is'} {self.reason}"

    @property
    def reason(self) -> str:
        """`STATE: WHY`, for the deployment's error."""
        return f"{self.state}: {self.why}"


def failed_tasks(tasks: Sequence[Mapping[str, Any]], since: str = "") -> list[TaskNote]:
    """Each task created after `since` (an RFC 3339 time) that failed or that Swarm stopped (a
    new task a rollback shut down), with Swarm's error or last message; oldest first."""
    notes = []
    for t in sorted(tasks, key=lambda t: t.get("CreatedAt", "")):
        status = t.get("Status") or {}
        failed = status.get("State") in ("failed", "rejected") or bool(status.get("Err"))
        # an unhealthy task ends `complete` with no error on some engines (20.10): Swarm
        # shutting down a task we did not ask to stop is the failure
        stopped = t.get("DesiredState") == "shutdown"
        if (failed or stopped) and t.get("CreatedAt", "") >= since:
            why = status.get("Err") or "stopped by Swarm (it exited, or its healthcheck failed)"
            ended = stopped or status.get("State") not in _NOT_YET
            notes.append(TaskNote(t["ID"], _where(t), str(status.get("State")), why, ended))
    return notes


def waiting_tasks(tasks: Sequence[Mapping[str, Any]], since: str = "", *, until: str = "running") -> list[TaskNote]:
    """Each task created after `since` that Swarm wants running (or, for a job, to complete)
    and that is not `until` yet, with Swarm's reason (`pending: no suitable node (scheduling
    constraints not satisfied on 1 node)`): what a wait that ran out reports; oldest first."""
    notes = []
    for t in sorted(tasks, key=lambda t: t.get("CreatedAt", "")):
        status = t.get("Status") or {}
        if t.get("DesiredState") in ("running", "complete") and status.get("State") != until \
                and t.get("CreatedAt", "") >= since:
            why = status.get("Err") or status.get("Message") or "no reason given"
            notes.append(TaskNote(t["ID"], _where(t), str(status.get("State")), why, False))
    return notes


def _where(task: Mapping[str, Any]) -> str:
    """Where a task runs, for its log line: its slot, or (a global one's, which has none) its node."""
    return f"slot {task['Slot']}" if task.get("Slot") else f"node {str(task.get('NodeID') or '?')[:12]}"


def job_progress(mode: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                 restart: Mapping[str, Any] | None = None) -> tuple[bool, list[Mapping[str, Any]]]:
    """(completed, failed tasks Swarm will not retry) of one run of a job service, raw: `mode`
    and `restart` (its RestartPolicy), its spec's; `tasks`, that run's (stages/swarm_jobs.job_complete
    says when it completed). Under `on-failure`, a failed task is retried in its slot (a global
    job's: on its node) until MaxAttempts restarts failed too (0: forever; the job timeout ends it)."""
    def state(t: Mapping[str, Any]) -> str:
        return str((t.get("Status") or {}).get("State", ""))

    failed = [t for t in tasks if state(t) in ("failed", "rejected")]
    runs = [(state(t), str(t.get("NodeID", "")), str(t.get("UpdatedAt", ""))) for t in tasks]
    if (restart or {}).get("Condition") == "on-failure":
        def where(t: Mapping[str, Any]) -> Any:
            return t.get("NodeID") if "GlobalJob" in mode else t.get("Slot") or 0

        attempts = int((restart or {}).get("MaxAttempts") or 0)
        failures = Counter(where(t) for t in failed)
        failed = [t for t in failed if attempts and failures[where(t)] > attempts]
    return job_complete(runs, job_completions(mode)), failed


def running_count(tasks: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """How many tasks are in each state, among those Swarm wants running."""
    return Counter((t.get("Status") or {}).get("State", "") for t in tasks if t.get("DesiredState") == "running")


def wanted_replicas(body: Mapping[str, Any]) -> int | None:
    """The replicas a service body asks for; None for a global one (a task on each node)."""
    return None if "Global" in body["Mode"] else int(body["Mode"]["Replicated"]["Replicas"])


def health_checked(body: Mapping[str, Any],
                   image_test: Callable[[str], Sequence[str] | None] = lambda image: None) -> bool:
    """Whether the service's tasks have a healthcheck: their spec's test, else (a spec that
    names none, or only its timings) the image's, asked of `image_test(image)` only then;
    `NONE` in the spec disables it."""
    cs = body["TaskTemplate"]["ContainerSpec"]
    return probes((cs.get("Healthcheck") or {}).get("Test") or image_test(str(cs["Image"])))


def roll_time(update: Mapping[str, Any], replicas: int) -> float:
    """Seconds a roll takes beyond starting tasks: each batch is watched for the monitor
    window and followed by the delay (the health timeout alone would cut a long roll short)."""
    batches = -(-replicas // update["Parallelism"]) if update["Parallelism"] else 1
    return float(batches * (update["Monitor"] + update["Delay"]) / 10**9)


def last_reason(notes: list[TaskNote]) -> str:
    """`; STATE: Swarm's reason` of the last (newest) task noted."""
    return f"; {notes[-1].reason}" if notes else ""


def waiting_reason(tasks: list[dict[str, Any]], since: str, notes: list[TaskNote]) -> str:
    """The tail of the error of a wait that ran out of time: Swarm made no task at all (on a
    create: no node meets its placement), else the newest task noted's reason."""
    if not tasks and not since:
        return "; Swarm made no task (does any node meet its placement?)"
    return last_reason(notes)


def runs_template(service: Mapping[str, Any], tasks: list[dict[str, Any]]) -> bool:
    """Whether every task Swarm wants running runs `service`'s template as it stands and runs.
    Placement is left aside, as Swarm leaves it: a task on a node that still fits is kept."""
    def task_part(spec: Any) -> Any:  # (a task's copy of the template has no `Runtime`)
        return {k: v for k, v in (spec or {}).items() if k not in ("Runtime", "Placement")}

    template = task_part(service.get("Spec", {}).get("TaskTemplate"))
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    return bool(wanted) and all(task_part(t.get("Spec")) == template
                                and (t.get("Status") or {}).get("State") == "running" for t in wanted)


def superseded(ours: str, status: Mapping[str, Any]) -> bool:
    """Whether the roll a deployment follows (`ours`: its UpdateStatus.StartedAt, "" until seen)
    was replaced: someone wrote the spec again while it rolled — Swarm then drops the status and
    its updater starts again (a roll of its own, which may be over before the next look).
    Swarm's rollback of it is still its own."""
    if not ours:
        return False
    state = status.get("State") or ""
    return not state or (status.get("StartedAt") != ours and not state.startswith("rollback"))
