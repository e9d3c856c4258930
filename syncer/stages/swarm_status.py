"""What a long-running Swarm service's tasks say about it, for `status`, `instances`, the API
and the plan: its state word and status line, and the words of a plan's noop when its spec is
in sync but its tasks do not all run. Pure: the tasks as observe read them (`GET /tasks`).

The words are the container side's where they mean the same (`running`, `starting`,
`stopped`, and `exited` for one whose every task ran to its end, exit 0, under a restart
policy that starts none again), and three of Swarm's own for what a container cannot be: `degraded` (some of the
tasks it wants run, not all: a container's `running/unhealthy` at the scale of a service),
`pending` (none runs and Swarm has placed none of those: no node can take them, a drained one,
a constraint no node meets) and `failing` (none runs, and a slot's task failed before the one
there now, or its restart policy gave up: not `starting`, which is a service's first tasks on
their way). The status line says how many run and why the others do not, with Swarm's own
reason (a task's `Status.Err`, else its `Status.Message`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from syncer.core.live import SERVICE_DEGRADED, SERVICE_FAILING, SERVICE_PENDING, SERVICE_SHORT, LiveTask
from syncer.core.model import IN_SYNC_BUT
from syncer.core.swarm_slots import (
    CURRENT, FAILED, RESTARTING, given_up, previous_failure, restarting, slot_of)
from syncer.stages.swarm import tasks_summary

_UNPLACED = ("new", "pending")  # the scheduler has given them no node yet


def service_state(tasks: Sequence[LiveTask], wanted: int | None) -> tuple[str, str]:
    """(state, status) of a long-running service from its tasks, every one observe read (a
    slot's earlier failed tasks among them); `wanted`: its replicas, None for a global service
    (a task on each node it may use: as many as Swarm wants running)."""
    # (a failed task's successor waits out the restart delay as desired `ready`: it is wanted too)
    current = [t for t in tasks if t.desired in CURRENT]
    running = sum(1 for t in current if t.state == "running")
    want = len(current) if wanted is None else wanted
    summary = tasks_summary(running, want)
    if not want:  # scaled to 0 (`instances stop`), or a global service Swarm has made no task for yet
        return ("starting" if wanted is None else "stopped"), summary
    if running >= want:
        return "running", summary
    short = [t for t in current if t.state != "running"]
    unplaced = [t for t in short if t.state in _UNPLACED]  # (whatever Swarm wants of them next)
    gone = want - running - len(short)
    ended = given_up(tasks, want, {slot_of(t) for t in current}) if wanted is not None else []
    if not current and ended and len(ended) == want and all(t.state == "complete" for t in ended):
        # (`on-failure`/`no`: a task that exited 0 ends its slot, as a one-shot container is left exited)
        return "exited", f"{summary}: {gone} complete (exit 0: their restart policy starts none again)"
    state = (SERVICE_DEGRADED if running else SERVICE_PENDING if unplaced
             else SERVICE_FAILING if _failing(tasks, short, ended) else "starting")
    return state, f"{summary}: " + "; ".join(_why(tasks, short, unplaced, gone, ended))


def _failing(tasks: Sequence[LiveTask], short: list[LiveTask], ended: list[LiveTask]) -> bool:
    """Whether tasks that do not run follow a failure in their slot (Swarm restarts them: the
    next one waits out the restart delay, or is on its way again), or a slot Swarm starts no task
    in any more ended with a failure (the restart policy gave up: `ended`, each such slot's last
    task). A first task on its way, or one a roll or a start from 0 made after the old one was
    shut down, follows none: `starting`."""
    return any(previous_failure(tasks, slot_of(t)) for t in short) or any(t.state in FAILED for t in ended)


def _why(tasks: Sequence[LiveTask], short: list[LiveTask], unplaced: list[LiveTask], gone: int,
         ended: list[LiveTask]) -> list[str]:
    """Why the tasks that do not run do not: those not placed (Swarm's reason), those on their
    way (by state; `restarting`: a failed one's successor waiting out the restart delay, as a
    container's restart policy says it), the slots Swarm starts no task in any more (`ended`:
    their restart policy gave up), the slots with no task yet (`gone` counts both), and the
    newest failure in the slots that do not run."""
    parts = []
    if unplaced:
        newest = max(unplaced, key=lambda t: t.updated)
        parts.append(f"{len(unplaced)} not placed: {newest.error or newest.message or 'no node given yet'}")
    placed = Counter(RESTARTING if restarting(t, tasks) else t.state or "unknown" for t in short if t not in unplaced)
    if placed:
        parts.append(", ".join(f"{n} {state}" for state, n in sorted(placed.items())))
    if ended:
        parts.append(f"{len(ended)} not started again (their restart policy)")
    if gone > len(ended):  # (a start from 0 or a scale up: Swarm is about to make them)
        parts.append(f"{gone - len(ended)} not made yet")
    # the newest failure where a task was placed and does not run (not one of a task Swarm has not
    # placed since: a drain rejects the tasks it moves), or a slot given up on ended with
    slots = {slot_of(t) for t in [*short, *ended] if t not in unplaced}
    failed = [t for t in tasks if t.state in FAILED and t.error and slot_of(t) in slots]
    if failed:
        parts.append(f"last failure: {max(failed, key=lambda t: t.updated).error}")
    return parts


def noop_cause(state: str, status: str) -> str:
    """A plan's cause for a service whose spec is in sync: `in sync (2/2 task(s) running)`, or,
    when not all its tasks run, the same words as `status` and what Swarm does about it (there
    is nothing for syncer to write: the spec is what the repository says)."""
    if state not in SERVICE_SHORT:
        return f"in sync ({status})" if status else "in sync"
    then = ("Swarm places them when a node can take them" if state == SERVICE_PENDING
            else "Swarm starts a failed one again while its restart policy allows" if state == SERVICE_FAILING
            else "Swarm starts them, and a failed one again as its restart policy says")
    return f"{IN_SYNC_BUT}{status} ({then})"
