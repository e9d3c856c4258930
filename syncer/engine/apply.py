"""Run a Plan against the servers, wave by wave. Decides nothing the plan did not,
beyond "skip the dependents of what failed".

A definition's actions form one deployment, run in order (leftovers first, then replicas
one by one, then surplus replicas). Definitions run in waves by depends_on, up to
`parallelism` at once within a wave; the next wave starts when the current one is done
and its containers are running and, where they have a healthcheck, healthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence

from syncer.core import labels as L
from syncer.adapters.docker import Engine, EngineError
from syncer.core.errors import DockerUnavailable, SyncerError
from syncer.core.model import BLOCKING, Action, ContainerSpec, Desired, Plan, RegistryAnswer
from syncer.core.redact import NOTHING, Redactor
from syncer.engine.containers import ContainerSteps, inspect_or_empty, resume
from syncer.engine.heal import OWN
from syncer.engine.recording import DeploymentResult, Recorder
from syncer.engine.readiness import ActionFailed, ended_on_its_own
from syncer.engine.options import ApplyOptions
from syncer.engine.swarms import DeployFailed, Swarms
from syncer.stages.interrupted import adopts
from syncer.stages.waves import group_actions, waves


class Applier(ContainerSteps):
    """Executes one plan. `engines` maps a server name to its Engine."""

    def __init__(self, plan: Plan, desired: Desired, engines: Mapping[str, Engine], secrets: Mapping[str, str],
                 recorder: Recorder, options: ApplyOptions, *, commit: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, redact: Redactor = NOTHING,
                 registry: Mapping[str, Mapping[str, RegistryAnswer]] | None = None,
                 internal: Collection[str] = (), commits: Mapping[str, str | None] | None = None) -> None:
        """`registry`: server → image ref → what its registry said when the plan was made
        (`pull_policy: always`); a Swarm service is pinned to that digest, the one the plan showed.
        `internal`: engine names of the networks syncer.yaml makes `internal: true`; `commits`:
        definition → the commit of the earlier revision it is made at (else `commit`)."""
        self.plan = plan
        self.desired = desired
        self.engines = engines
        self.secrets = secrets
        self.recorder = recorder
        self.opts = options
        self.commit = commit
        self.commits = dict(commits or {})
        self.sleep = sleep
        self.redact = redact  # failures quote container and probe output: masked at the source
        self.specs = {(c.server, c.name): c for c in desired.containers}
        self.registry = registry or {}
        self.completed: list[tuple[str, str, str]] = []  # one-shots that ran to completion: name, id, definition
        # started under a policy that lets them end, and running when the wait ended: ask again
        # at the end of the apply (a quick one-shot's exit: `ended_on_their_own`)
        self.may_end: list[tuple[str, ContainerSpec, str, int]] = []  # server, spec, id, unix time of its start
        self.network_errors: dict[str, str] = {}  # server → why a network it needs could not be made
        self.halted: SyncerError | None = None  # a deployment the recorder could not begin: none begins after it
        self.begun = False  # a deployment began (the store recorded it)
        self.made: list[tuple[str, str]] = []  # the networks this apply made: server, id
        self.internal = frozenset(internal)
        self.swarms = Swarms(engines, desired, secrets, timeout=options.health_timeout,
                             job_timeout=options.job_timeout, sleep=sleep, registry=registry, internal=internal)

    def run(self) -> list[DeploymentResult]:
        """Every deployment's result; failures are results, not exceptions."""
        try:
            return self._waves()
        finally:
            self.swarms.close()

    def _waves(self) -> list[DeploymentResult]:
        groups = group_actions(self.plan)
        blocked = {a.definition for a in self.plan.actions if a.action in BLOCKING}
        deps = {c.definition: c.depends_on for c in self.desired.containers}
        results: list[DeploymentResult] = []
        failed: set[str] = set(blocked)
        self._networks("network create")  # before the first container that joins them
        for wave in waves(self.desired, groups):
            if self.halted is not None:
                break
            todo = []
            for name in wave:
                bad = [d for d in deps.get(name, ()) if d in failed]
                if bad:
                    results.append(self._skip(name, groups[name], bad))
                    failed.add(name)
                else:
                    todo.append(name)
            self._wait_dependencies(todo, deps, groups)
            # Parallel inside a wave only: the next wave needs this one running and healthy.
            workers = self.opts.parallelism + self.swarms.workers(todo, groups)  # (see Swarms.workers)
            from concurrent.futures import ThreadPoolExecutor  # (it imports logging): not for a no-op
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                done = list(pool.map(lambda n: self._deploy(n, groups[n]), todo))
            results.extend(done)
            failed.update(r.definition for r in done if not r.ok)
        if self.halted is not None:  # nothing more is done: no network is removed either, but
            if not self.begun:  # an apply that began no deployment leaves Docker as it found it
                self._unmake_networks()
            return results
        self._networks("network remove")  # after every container that used them is gone
        return results

    def _networks(self, kind: str) -> None:
        """Create (or remove) the plan's networks. A failed create fails the actions of its
        server (recorded on each deployment); a network still in use is left for later."""
        for a in self.plan.actions:
            if a.action != kind:
                continue
            eng = self.engines.get(a.server)
            if eng is None:
                continue  # the server stopped answering: its container actions fail on their own
            try:
                if kind == "network create":
                    name = self._network_key(a.container)
                    made = eng.create_network(a.container, L.network_labels(self.plan.project, name),
                                              internal=a.container in self.internal,
                                              ipam=next((r.after for r in a.reasons if r.field == "ipam"), ()))
                    self.made.append((a.server, made or a.container))
                else:  # (on a Swarm server, once the tasks that left it let go)
                    self.swarms.remove_network(a, eng)
            except (EngineError, DockerUnavailable) as exc:
                if kind == "network create":
                    self.network_errors[a.server] = f"network {a.container} could not be created: {exc}"

    def _unmake_networks(self) -> None:
        """Remove the networks this apply made (no container joined them: no deployment began)."""
        for server, ident in self.made:
            try:
                self.engines[server].remove_network(ident)
            except (EngineError, DockerUnavailable):
                pass  # (an unused network of the project: the next apply's plan uses it, or prunes it)

    def _network_key(self, engine_name: str) -> str:
        """The name syncer.yaml gives a network of the project (its `syncer.network` label)."""
        prefix = f"{self.plan.project}_"
        if engine_name == self.plan.project:
            return L.DEFAULT_NETWORK
        return engine_name[len(prefix):] if engine_name.startswith(prefix) else engine_name

    def _begin(self, name: str, server: str, revision: int, kinds: list[str]) -> str | DeploymentResult:
        """The deployment's id; its result when it cannot be recorded (the store): then it is
        not run, nor anything after it (a deployment under way is carried to its end)."""
        if self.halted is None:
            try:
                dep = self.recorder.begin(name, server, revision, kinds)
                self.begun = True
                return dep
            except SyncerError as exc:
                self.halted = exc
        return DeploymentResult(name, server, "", False, error=f"not started: {self.halted}", actions=kinds)

    def _skip(self, name: str, actions: list[Action], bad: list[str]) -> DeploymentResult:
        server, revision = actions[0].server, actions[0].revision
        kinds = [f"{a.action} {a.container}" for a in actions]
        dep = self._begin(name, server, revision, kinds)
        if isinstance(dep, DeploymentResult):
            return dep
        message = f"skipped: dependency {', '.join(sorted(bad))} failed or is in conflict"
        self.recorder.log(dep, message)
        self.recorder.finish(dep, ok=False, error=message)
        return DeploymentResult(name, server, dep, False, error=message, actions=kinds)

    def _wait_dependencies(self, todo: list[str], deps: Mapping[str, Sequence[str]],
                           groups: Mapping[str, list[Action]]) -> None:
        """Dependencies nothing acted on this run may still be starting: wait for them."""
        untouched = {d for n in todo for d in deps.get(n, ()) if d not in groups}
        for c in self.desired.containers:
            eng = self.engines.get(c.server)
            if c.definition in untouched and eng is not None and not c.is_job and c.server not in self.swarms:
                try:
                    self._wait_ready(eng, c.name, c.spec, lambda _line: None)
                except (ActionFailed, EngineError, DockerUnavailable):
                    pass  # the dependent's own deployment will show what it meets

    def _deploy(self, name: str, actions: list[Action]) -> DeploymentResult:
        server = next((a.server for a in actions if a.action != "remove"), actions[0].server)
        # the revision the definition is made at: a remove carries its container's own (an interrupted
        # recreate's leftover, first in order, the abandoned spec's), not the deployment's
        revision = next((a.revision for a in actions if a.action != "remove"), actions[0].revision)
        kinds = [f"{a.action} {a.container}" for a in actions]
        dep = self._begin(name, server, revision, kinds)
        if isinstance(dep, DeploymentResult):
            return dep

        def log(line: str) -> None:
            self.recorder.log(dep, self.redact.text(line))

        replaced: list[str] = []  # (containers this deployment already made at its spec)
        for a in actions:
            log(f"{a.action} {a.container} on {a.server}: {a.cause}")
            try:
                self._one(a, log)
            except (ActionFailed, DeployFailed, EngineError, DockerUnavailable) as exc:
                rolled_back = isinstance(exc, (ActionFailed, DeployFailed)) and exc.rolled_back
                error = self.redact.text(str(exc))
                if rolled_back and replaced:  # (its earlier replicas were not rolled back with it)
                    error += f"; partly rolled back: {', '.join(replaced)} already run(s) the new spec"
                log(f"failed: {error}")
                self.recorder.finish(dep, ok=False, rolled_back=rolled_back, error=error)
                return DeploymentResult(name, server, dep, False, rolled_back, error, kinds)
            if a.action in ("create", "recreate") and server not in self.swarms:
                replaced.append(a.container)
        self.recorder.finish(dep, ok=True)
        return DeploymentResult(name, server, dep, True, actions=kinds)

    def _one(self, a: Action, log: Callable[[str], None]) -> None:
        eng = self.engines.get(a.server)
        if eng is None:  # it answered the plan but not the apply: only its own actions fail
            raise DockerUnavailable(f"server '{a.server}' is unreachable")
        if a.server in self.swarms:  # services instead of containers, behind the same actions
            return self.swarms.run(a, self.specs.get((a.server, a.container)), self._labels, log)
        if a.action == "remove":
            self._remove(eng, a, log)
            return
        spec = self.specs[(a.server, a.container)]
        if a.server in self.network_errors:
            raise ActionFailed(self.network_errors[a.server])
        if adopts(a):  # an interrupted recreate's leftover runs this spec: gated and renamed, not made again
            self._adopt(eng, a, spec, log)
        elif a.action == "run":
            self._run_job(eng, a, spec, log)
        elif a.action == "create":
            self._create(eng, a, spec, log)
        elif a.action == "start":
            with OWN.acting(a.container_id):  # dying while it comes up: this apply's failure, not a fault
                resume(eng, a.container_id)
                self._ready_or_ended(eng, a.container_id, spec, log)
            OWN.forget(a.container_id)  # up: from now on its death is a fault
        elif a.action == "recreate":
            self._recreate(eng, a, spec, log)
        elif a.action == "restart":  # after a dependency it restarts with (depends_on restart: true)
            with OWN.acting(a.container_id, until="restart"):  # its kill, die and stop are this apply's
                eng.restart(a.container_id, timeout=self._stop_timeout(inspect_or_empty(eng, a.container_id)))
                log(f"restarted {spec.name} ({a.container_id[:12]}): {a.cause}")
                self._wait_ready(eng, a.container_id, spec.spec, log)

    def _labels(self, a: Action, c: ContainerSpec) -> dict[str, str]:
        return L.container_labels(project=c.project, definition=c.definition, replica=c.replica,
                                  revision=a.revision, spec_hash_=c.spec_hash, template_ref=c.template_ref,
                                  commit=self.commits.get(c.definition, self.commit), spec=c.spec)

    def ended_on_their_own(self) -> None:
        """The one-shots that exited 0 on their own since their wait ended (readiness.ended_on_its_own)."""
        self.completed += [(c.name, ident, c.definition) for server, c, ident, since in self.may_end
                           if ended_on_its_own(self.engines[server], c.project, ident, since)]
