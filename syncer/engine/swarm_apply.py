"""Apply on a Swarm server: create, update, restart or remove one service, then wait for Swarm.

Swarm does the rolling and the rolling back (UpdateConfig: start-first by default,
`FailureAction: rollback`, a monitor window); syncer only reports: an update that ends
`completed` is a success, one that ends `rollback_completed` a failed deployment with
`rolled_back`, each failed task's error in the deployment's log. Health, from the spec or
the image's HEALTHCHECK, gates it: a task with a healthcheck is `running` only once healthy.
A roll's wait ends when the manager's service events say its state moved (engine/swarm_wake.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from syncer.adapters.docker import Engine, EngineError
from syncer.core.errors import DockerUnavailable
from syncer.adapters.swarm import Swarm
from syncer.core.model import Action, ContainerSpec, Desired, RegistryAnswer
from syncer.engine.heal import OWN, marked_swarm
from syncer.engine.swarm_wake import SLOW, Snapshot, Waker, since
from syncer.engine.swarms import DeployFailed
from syncer.stages import swarm as S
from syncer.stages.swarm_drift import template_drifted
from syncer.stages.swarm_jobs import job_run
from syncer.stages.swarm_tasks import (
    failed_tasks, health_checked, job_progress, last_reason, roll_time, running_count, runs_template, superseded,
    waiting_reason, waiting_tasks, wanted_replicas)

Log = Callable[[str], None]
# seconds between two looks at the services' tasks and UpdateStatus (shared: see swarm_wake.Snapshot). A task
# list is costly for a busy manager (0.3-0.6 s while 40 tasks start on 2 cores): at 0.1 s, bench/swarm's
# create ran at 0.93x stack deploy's rate and a change took 1.17x its time (medians of 8 rounds); at
# 0.25 s, 1.00x and 1.12x.
POLL = 0.25
CONFIRM = 0.5  # seconds after which a health-checked service's running tasks are looked at again
FAILURES_ON_CREATE = 3  # failed tasks after which a new service is given up (Swarm would retry forever)


def _waiting(tasks: list[dict[str, Any]], since: str, log: Log, *, until: str = "running") -> str:
    """The tasks a wait ran out of time for, logged; the tail of its error."""
    notes = waiting_tasks(tasks, since, until=until)
    for note in notes:
        log(note.line)
    return waiting_reason(tasks, since, notes)


class SwarmDeployer:
    """One Swarm server's side of an apply."""

    def __init__(self, engine: Engine, desired: Desired, secrets: Mapping[str, str], *, timeout: float,
                 job_timeout: float = 600.0, sleep: Callable[[float], None] = time.sleep,
                 registry: Mapping[str, RegistryAnswer] | None = None, internal: Collection[str] = ()) -> None:
        self.swarm: Swarm = marked_swarm(engine)  # (its writes' events are this apply's, not drift)
        self.internal = frozenset(internal)  # engine names of the overlays made `internal: true`
        self.registry = dict(registry or {})  # image ref → what the plan's observation heard (_pinned)
        self.project = desired.project
        self.secrets = secrets
        self.timeout = timeout
        self.job_timeout = job_timeout  # a job runs to completion: the apply's job timeout, not the health one
        self.sleep = sleep
        # each overlay is made, and the event stream opened, once per apply; deployments of one
        # wave run in parallel
        self._lock = threading.Lock()
        self._net_ready: set[str] = set()
        # One GET /tasks and one GET /services for the whole project, shared by every deployment
        # waiting on this server: twenty services polling one by one would slow the manager
        self._task_rows = Snapshot(lambda: self.swarm.project_tasks(self.project), every=POLL)
        self._service_rows = Snapshot(lambda: self.swarm.project_services(self.project), self._seq, every=POLL)
        # the manager's service events, which end a roll's wait sooner than the clock (a unix
        # socket's only: an ssh server's forwarded one too)
        self._waker: Waker | None = None

    def _seq(self) -> int:
        return self._waker.seq if self._waker is not None else 0

    def _listen(self) -> None:
        """Start reading the manager's service events (once per apply and server)."""
        light = self.swarm.light
        with self._lock:
            if self._waker is None and light is not None:
                start = since()
                self._waker = Waker(lambda: light.events({"type": ["service"]}, since=start))

    def _pause(self, ident: str, after: int) -> int:
        """Wait before looking at a roll again: until the events say it moved, else SLOW (POLL
        without them). The events' seq, for the next list to reflect."""
        w = self._waker
        if w is None or not w.alive:
            self.sleep(POLL)
            return -1
        return w.wait(ident, after, SLOW)[0]

    def close(self) -> None:
        """Stop reading the manager's events."""
        if self._waker is not None:
            self._waker.close()

    def _tasks(self, ident: str) -> list[dict[str, Any]]:
        return [t for t in self._task_rows.rows()[0] if t.get("ServiceID") == ident]

    def _update_status(self, ident: str, after: int = -1) -> tuple[dict[str, Any], int]:
        """The service's UpdateStatus, from the shared list (asked by id when the list lacks it)."""
        rows, seq = self._service_rows.rows(after)
        row = next((r for r in rows if r.get("ID") == ident), None)
        return dict((row if row is not None else self.swarm.inspect_service(ident)).get("UpdateStatus") or {}), seq

    def run(self, a: Action, c: ContainerSpec | None, labels: Mapping[str, str], log: Log) -> None:
        """Carry out one plan action on this server."""
        if a.action == "remove" or c is None:
            return self.remove(a, log)
        if a.action == "restart":  # after a dependency (stages/restarts.py): every task rolled
            return self.restart(a, log)  # (the spec is unchanged)
        self._networks(c)
        files = S.files_of(c)
        ids = self.swarm.ensure_files(files, self.project, c.definition, self.secrets) if files else {}
        body = S.attach_files(S.service_spec(c, labels, image=self._pinned(c, log)), ids)
        had_files = False
        if a.action == "run":
            self.run_job(a, c, body, log)
        elif a.action == "create":
            self.create(c, body, log)
        elif a.action == "recreate":  # a mode change (a job turned service): Swarm updates no mode
            self._remove_earlier(a, log)
            self.create(c, body, log)
        else:
            try:
                had_files = self.update(a, c, body, log)
            except DeployFailed:
                if files:  # rolled back to its earlier files: the new ones (a rejected secret's value) go
                    self._drop_files(c, self.swarm.file_names(a.container_id))
                raise
        if files or had_files:  # (two list calls saved for the services without files)
            gone = self.swarm.prune_files(self.project, c.definition, {f.name for f in files})
            if gone:
                log(f"removed unused config(s)/secret(s): {', '.join(sorted(gone))}")

    def _pinned(self, c: ContainerSpec, log: Log) -> str:
        """`pull_policy: always`: the image pinned to the digest its tag names in the registry,
        as `docker service create` resolves it, so that every node runs the same image and the
        next plan can tell when the tag moves. The digest is the one the plan's observation
        heard (what the plan showed is what rolls out; the registry is not asked twice); the
        registry is asked here only for a ref that observation did not ask about. "" otherwise,
        or when the registry did not answer (the nodes then resolve the tag themselves)."""
        ref = str(c.spec["image"])
        if c.spec.get("pull_policy") != "always" or "@" in ref:  # (a digest, as a rollback pins, is pinned)
            return ""
        from syncer.adapters.images import pinned, registry_digest

        answer = self.registry.get(ref) or registry_digest(self.swarm.engine, ref)
        if answer.error:
            log(f"{answer.error}; the service names the tag and each node resolves it")
        return pinned(ref, answer) if answer.digest else ""

    def _networks(self, c: ContainerSpec) -> None:
        """The overlays the service joins: attachable, labelled with the project and the name
        syncer.yaml gives them (external ones were checked at plan time)."""
        with self._lock:
            for name, key in S.networks_of(c).items():
                if name not in self._net_ready:
                    self.swarm.ensure_network(name, self.project, key, internal=name in self.internal)
                    self._net_ready.add(name)

    def run_job(self, a: Action, c: ContainerSpec, body: Mapping[str, Any], log: Log) -> None:
        """A job (`Mode: ReplicatedJob`, or `GlobalJob`: a task on each node) runs once: again in
        its earlier service when that is a job of the same mode, else in a new one (the earlier,
        a long-running service or a job of the other mode, removed first); the deployment
        succeeds when that run's tasks completed (exit 0), else fails with a task's error."""
        ident, run = self._run_in_place(a, c, body, log) if a.container_id else ("", 0)
        if not ident:
            self._remove_earlier(a, log)
            ident = self.swarm.create_service(body, self.secrets)
            log(f"created job service {c.definition} ({ident[:12]}): Swarm runs it to completion")
        deadline = time.monotonic() + self.job_timeout
        while True:
            tasks = [t for t in self._tasks(ident) if job_run(t) == run]
            complete, failed = job_progress(body["Mode"], tasks, (body.get("TaskTemplate") or {}).get("RestartPolicy"))
            if complete:
                done = sum(1 for t in tasks if (t.get("Status") or {}).get("State") == "complete")
                log(f"job completed: {done} task(s) exited 0")
                return
            if failed:
                for note in failed_tasks(failed):
                    log(note.line)
                raise DeployFailed(f"the job failed: {(failed[0].get('Status') or {}).get('Err') or 'task failed'}")
            if time.monotonic() > deadline:
                raise DeployFailed(f"the job did not complete within {self.job_timeout:g}s"
                                   + _waiting(tasks, "", log, until="complete"))
            self.sleep(POLL)

    def _run_in_place(self, a: Action, c: ContainerSpec, body: Mapping[str, Any], log: Log) -> tuple[str, int]:
        """A job whose earlier service is a job of the same mode runs again in it: an update
        (ForceUpdate + 1, so that a spec run before runs again) starts Swarm's next run of it.
        Removing it and making a new one would leave its tasks behind on the nodes (Swarm keeps
        a removed job's tasks and containers: moby/moby#42789). ("", 0): not in place."""
        info = self.swarm.inspect_service(a.container_id)
        spec = info.get("Spec") or {}
        if set(spec.get("Mode") or {}) != set(body["Mode"]):
            return "", 0
        force = int((spec.get("TaskTemplate") or {}).get("ForceUpdate") or 0) + 1
        again = {**body, "TaskTemplate": {**body["TaskTemplate"], "ForceUpdate": force}}
        self.swarm.update_service(a.container_id, int(info["Version"]["Index"]), again, self.secrets)
        run = job_run(self.swarm.inspect_service(a.container_id).get("JobStatus"))
        log(f"updated job service {c.definition} ({a.container_id[:12]}): Swarm runs it again (run {run})")
        return a.container_id, run

    def _remove_earlier(self, a: Action, log: Log) -> None:
        """The definition's earlier service, before a new one of its name is made."""
        if a.container_id:
            with OWN.acting(a.container_id):  # its remove event is this apply's, not a fault
                self.swarm.remove_service(a.container_id)
            log(f"removed the earlier service ({a.container_id[:12]})")

    def create(self, c: ContainerSpec, body: Mapping[str, Any], log: Log) -> None:
        """`POST /services/create`, then wait until every replica's task runs (and is healthy)."""
        try:
            ident = self.swarm.create_service(body, self.secrets)
        except EngineError:
            self._drop_files(c)  # (refused: no service will use them)
            raise
        log(f"created service {c.definition} ({ident[:12]})")
        wanted = wanted_replicas(body)
        checked = lambda: health_checked(body, self.swarm.image_healthcheck)  # noqa: E731 (asked once it runs)
        try:
            self._wait_running(ident, wanted, log, give_up_after=FAILURES_ON_CREATE, checked=checked)
        except DeployFailed as exc:
            with OWN.acting(ident):  # its remove event is this apply's, not a fault to heal
                self.swarm.remove_service(ident)
            self._drop_files(c)
            raise DeployFailed(f"service {c.definition} did not come up: {exc}; removed it") from None

    def _drop_files(self, c: ContainerSpec, keep: Collection[str] = ()) -> None:
        """The configs and secrets of a service not there, or its spec's no more (`keep`: those it names)."""
        with contextlib.suppress(EngineError, DockerUnavailable):  # (best effort: the failure is the news)
            self.swarm.prune_files(self.project, c.definition, set(keep))

    def update(self, a: Action, c: ContainerSpec, body: Mapping[str, Any], log: Log) -> bool:
        """`POST /services/{id}/update?version=…`, then wait for Swarm's verdict. True when
        the service used configs or secrets before (they may now be unused)."""
        info = self.swarm.inspect_service(a.container_id)
        old_cs = info.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
        had_files = bool(old_cs.get("Configs") or old_cs.get("Secrets"))
        version = int(info["Version"]["Index"])
        before = (info.get("UpdateStatus") or {}).get("StartedAt", "")
        sent = str(info.get("UpdatedAt", ""))  # tasks created after this are this update's
        old_task = (info.get("Spec", {}).get("Labels") or {}).get(S.TASK_HASH)
        # a new TaskTemplate or EndpointSpec (published ports) makes Swarm roll every task
        ports_same = S.endpoint_key(info.get("Spec", {}).get("EndpointSpec")) == S.endpoint_key(body["EndpointSpec"])
        self._listen()  # (before the write: its roll's first move must not be missed)
        self.swarm.update_service(a.container_id, version, body, self.secrets)
        wanted = wanted_replicas(body)
        if old_task == body["Labels"][S.TASK_HASH] and ports_same and not template_drifted(a):
            # nothing the tasks run changed (replicas, the update pace, labels): no roll, so
            # Swarm writes no UpdateStatus; wait for the replica count
            log(f"updated service {c.definition}: its tasks are unchanged; "
                + (f"{wanted} replica(s) wanted" if wanted is not None else "one task on each node"))
            # (earlier failed tasks stay in the service's history: only the clock ends this wait)
            self._wait_running(a.container_id, wanted, log, give_up_after=10**9)
            return had_files
        log(f"updated service {c.definition} (version {version}): Swarm is rolling its tasks")
        tasks = wanted if wanted is not None else sum(running_count(self._tasks(a.container_id)).values())
        self._wait_update(a.container_id, before, sent, log, extra=roll_time(body["UpdateConfig"], tasks),
                          template_only=ports_same)
        return had_files

    def restart(self, a: Action, log: Log) -> None:
        """Roll every task (ForceUpdate + 1, the spec the manager holds otherwise unchanged)."""
        info = self.swarm.inspect_service(a.container_id)
        self._listen()  # (before the write: its roll's first move must not be missed)
        self.swarm.scale(a.container_id, None, force=True)
        log(f"restarting service {a.definition}: Swarm rolls its tasks ({a.cause})")
        self._wait_update(a.container_id, (info.get("UpdateStatus") or {}).get("StartedAt", ""),
                          str(info.get("UpdatedAt", "")), log, template_only=False)

    def _wait_update(self, ident: str, before: str, sent: str, log: Log, *, extra: float = 0.0,
                     template_only: bool = True) -> None:
        """Until Swarm's verdict on the roll. `template_only`: only the TaskTemplate changed, so
        tasks already running it mean that Swarm has nothing to roll (not so for new ports)."""
        deadline = time.monotonic() + self.timeout + extra
        seen, after, looks, ours = "", -1, 0, ""
        while time.monotonic() < deadline:
            status, at = self._update_status(ident, after)
            started = status.get("StartedAt", "")
            state = status.get("State", "") if started and started != before else ""
            if superseded(ours, status):  # (Swarm drops a roll's status when the spec is written again)
                raise DeployFailed("the service was changed outside syncer while Swarm rolled it (its update"
                                   " status went); the next apply plans it again")
            ours, looks = ours or (started if state else ""), looks + 1
            if not state and looks == 3 and template_only and self._already_running(ident):
                log("its tasks already run this template: Swarm has nothing to roll")
                return
            if state and state != seen:
                log(f"update {state}" + (f": {status['Message']}" if status.get("Message") else ""))
                seen = state
            if state == "completed":
                return
            if state in ("rollback_completed", "paused", "rollback_paused"):
                for note in failed_tasks(self.swarm.service_tasks(ident), sent):
                    log(note.line)
                if state == "rollback_completed":
                    raise DeployFailed(f"Swarm rolled the update back: {status.get('Message', '')}".rstrip(": "),
                                       rolled_back=True)
                raise DeployFailed(f"the update is {state}: {status.get('Message', '')}".rstrip(": "))
            after = self._pause(ident, at)
        raise DeployFailed(f"the update did not finish within {self.timeout:g}s"
                           + _waiting(self.swarm.service_tasks(ident), sent, log))

    def _already_running(self, ident: str) -> bool:
        """Whether every task Swarm wants running runs the service's template as it stands: an
        update that changed nothing the tasks run (by Swarm's measure) starts no roll and
        writes no UpdateStatus. Asked only when none began by the third look at the roll."""
        return runs_template(self.swarm.inspect_service(ident), self.swarm.service_tasks(ident))

    def _wait_running(self, ident: str, wanted: int | None, log: Log, *, give_up_after: int,
                      checked: Callable[[], bool] = lambda: False) -> None:
        """Until `wanted` tasks run (None: a global service's, every task Swarm wants running,
        one per node its placement allows; at least one). `checked()`: the tasks have a
        healthcheck (asked once they run) — Swarm lists a task stopped as unhealthy whose
        process exits 0 as `running` for a moment before `complete`, so they must still run a
        moment later."""
        deadline = time.monotonic() + self.timeout
        while True:
            tasks = self._tasks(ident)
            if not tasks:
                self.swarm.inspect_service(ident)  # raises Missing when it was removed meanwhile
            counts = running_count(tasks)
            failed = failed_tasks(tasks)
            want = wanted if wanted is not None else sum(counts.values())
            if counts["running"] == want and sum(counts.values()) == want and (want or wanted is not None) \
                    and (not checked() or self._still_running(ident, tasks)):
                log(S.tasks_summary(want, want))
                return
            if len(failed) >= give_up_after or time.monotonic() > deadline:
                for note in failed:
                    log(note.line)
                unplaced = sum(1 for note in failed if not note.ended)  # (pending: Swarm could not place it)
                why = ", ".join(f"{n} task(s) {what}" for n, what in ((len(failed) - unplaced, "failed"),
                                                                       (unplaced, "not placed")) if n) \
                    or f"not running within {self.timeout:g}s"
                raise DeployFailed(f"{why} ({S.tasks_summary(counts['running'], want)})"
                                   + (last_reason(failed) if failed else _waiting(tasks, "", log)))
            self.sleep(POLL)

    def _still_running(self, ident: str, tasks: list[dict[str, Any]]) -> bool:
        """Whether the tasks seen running still run CONFIRM later, in a list asked for then."""
        seen = {t["ID"] for t in tasks if t.get("DesiredState") == "running"}
        self.sleep(CONFIRM)
        now = {t["ID"] for t in self.swarm.service_tasks(ident)
               if t.get("DesiredState") == "running" and (t.get("Status") or {}).get("State") == "running"}
        return seen <= now

    def remove(self, a: Action, log: Log) -> None:
        """Remove the service, wait for its tasks to go, then its configs and secrets."""
        with OWN.acting(a.container_id):  # its remove event is ours, not a fault to heal
            self.swarm.remove_service(a.container_id)
        log(f"removed service {a.container} ({a.container_id[:12]})")
        deadline = time.monotonic() + self.timeout
        while self.swarm.service_tasks(a.container_id) and time.monotonic() < deadline:
            self.sleep(POLL)
        gone = self.swarm.prune_files(self.project, a.definition, set())
        if gone:
            log(f"removed config(s)/secret(s): {', '.join(sorted(gone))}")

    def remove_network(self, name: str) -> None:
        """Remove one of the project's overlays (the plan's `network remove`: no service will
        join it), waiting for the tasks of a service that left it to let go of it."""
        deadline = time.monotonic() + min(self.timeout, 30.0)
        while (why := self.swarm.remove_network(name, self.project)) and time.monotonic() < deadline:
            self.sleep(0.5)
        if why:  # left for a later apply, as a container network still in use is
            raise EngineError(f"network {name} not removed: {why}")
