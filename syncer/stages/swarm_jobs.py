"""A Swarm job's runs (`Mode: ReplicatedJob` / `GlobalJob`): which run a service or a task is
at, whether a run completed, and how its last run reads as a job container's state would. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from syncer.core.model import LiveTask

_EXIT_RE = re.compile(r"non-zero exit \((-?[0-9]+)\)")


def job_state(tasks: Sequence[LiveTask], completions: int | None) -> tuple[str, str]:
    """A job service's state and status as a container's would read (`exited`, `Exited (0)
    ...`), so that the plan judges a Swarm job as it judges a job container: `tasks`, those of
    its last run; `completions`, as job_complete takes it."""
    states = [t.state for t in tasks]
    if any(s not in ("complete", "failed", "rejected", "shutdown", "orphaned", "remove") for s in states):
        return "running", "job running"
    if job_complete([(t.state, t.node, t.updated) for t in tasks], completions):
        return "exited", "Exited (0) job completed"
    failed = sorted((t for t in tasks if t.state in ("failed", "rejected")), key=lambda t: t.updated)
    if failed:
        m = _EXIT_RE.search(failed[-1].error)
        return "exited", f"Exited ({m.group(1) if m else 1}) {failed[-1].error}"
    return ("running", "job running") if tasks else ("created", "no task yet")


def job_complete(tasks: Sequence[tuple[str, str, str]], completions: int | None) -> bool:
    """Whether one run of a job completed. `tasks`: its tasks' (state, node, updated);
    `completions`: a replicated job's TotalCompletions (that many exited 0), or None for a
    global job (on each node, its latest task exited 0: one that failed there and was not
    retried is a failed run, whatever the other nodes did)."""
    if completions is not None:
        return sum(1 for state, _, _ in tasks if state == "complete") >= completions
    latest: dict[str, str] = {}
    for state, node, _ in sorted(tasks, key=lambda t: t[2]):
        latest[node] = state
    return bool(latest) and all(state == "complete" for state in latest.values())


def job_completions(mode: Mapping[str, Any]) -> int | None:
    """A job service's Mode → what job_complete takes (None: a global job)."""
    replicated = mode.get("ReplicatedJob")
    return None if replicated is None else int(replicated.get("TotalCompletions") or replicated.get("MaxConcurrent") or 1)


def job_run(value: Mapping[str, Any] | None) -> int:
    """Which run of a job a service (its `JobStatus`) or a task (itself) is at: Swarm's
    JobIteration, 0 for the first (the API leaves a zero index out)."""
    return int(((value or {}).get("JobIteration") or {}).get("Index") or 0)
