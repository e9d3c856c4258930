"""Run a Plan against the servers, wave by wave. Decides nothing the plan did not,
beyond "skip the dependents of what failed".

A definition's actions form one deployment, run in order (leftovers first, then replicas
one by one, then surplus replicas). Definitions run in waves by depends_on, up to
`parallelism` at once within a wave; the next wave starts when the current one is done
and its containers are running and, where they have a healthcheck, healthy.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncer.core import labels as L
from syncer.adapters.docker import Engine, EngineError, Missing
from syncer.core.errors import DockerUnavailable
from syncer.core.model import Action, ContainerSpec, Desired, Plan
from syncer.engine.swarm_apply import DeployFailed, SwarmDeployer, is_swarm

ACTING = ("create", "recreate", "start", "remove", "update")


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply: parallelism, timeouts, and whether volumes of removed containers go too."""

    parallelism: int = 4
    health_timeout: float = 120.0
    stop_timeout: int = 10
    prune_volumes: bool = False
    settle: float = 0.0  # without a healthcheck: how long a new container must stay up


class Recorder(Protocol):
    """Where deployments and their log lines go (the store, events, the terminal)."""

    def begin(self, definition: str, server: str, revision: int, actions: list[str]) -> str:
        """A deployment is about to run; returns its id."""

    def log(self, deployment: str, line: str) -> None:
        """One line of a deployment's log."""

    def finish(self, deployment: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        """The deployment's outcome."""


@dataclass
class DeploymentResult:
    """What happened to one definition."""

    definition: str
    server: str
    deployment: str
    ok: bool
    rolled_back: bool = False
    error: str = ""
    actions: list[str] = field(default_factory=list)


class ActionFailed(Exception):
    """One action failed; `rolled_back` when the old container was restored."""

    def __init__(self, message: str, *, rolled_back: bool = False) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back


def waves(desired: Desired, groups: Mapping[str, Sequence[Action]]) -> list[list[str]]:
    """Definition names in dependency order: wave n depends only on waves before it."""
    deps = {c.definition: c.depends_on for c in desired.containers}
    level: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            inner = [depth(d, seen | {name}) for d in deps.get(name, ()) if d not in seen]
            level[name] = 1 + max(inner, default=-1)
        return level[name]

    out: dict[int, list[str]] = defaultdict(list)
    for name in groups:
        out[depth(name)].append(name)
    return [sorted(out[k]) for k in sorted(out)]


def group_actions(plan: Plan) -> dict[str, list[Action]]:
    """The acting actions of each definition, in the order they must run."""
    groups: dict[str, list[Action]] = defaultdict(list)
    for a in plan.actions:
        if a.action in ACTING:
            groups[a.definition].append(a)
    for actions in groups.values():
        actions.sort(key=lambda a: (not a.container.endswith(L.TEMP_SUFFIX), a.action == "remove", a.replica))
    return dict(groups)


class Applier:
    """Executes one plan. `engines` maps a server name to its Engine."""

    def __init__(self, plan: Plan, desired: Desired, engines: Mapping[str, Engine], secrets: Mapping[str, str],
                 recorder: Recorder, options: ApplyOptions, *, commit: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.plan = plan
        self.desired = desired
        self.engines = engines
        self.secrets = secrets
        self.recorder = recorder
        self.opts = options
        self.commit = commit
        self.sleep = sleep
        self.specs = {(c.server, c.name): c for c in desired.containers}
        # Swarm servers: services instead of containers, behind the same plan actions
        self.swarms = {name: SwarmDeployer(eng, desired.project, secrets, timeout=options.health_timeout, sleep=sleep)
                       for name, eng in engines.items() if is_swarm(eng)}

    def run(self) -> list[DeploymentResult]:
        """Every deployment's result; failures are results, not exceptions."""
        groups = group_actions(self.plan)
        blocked = {a.definition for a in self.plan.actions if a.action == "conflict"}
        deps = {c.definition: c.depends_on for c in self.desired.containers}
        results: list[DeploymentResult] = []
        failed: set[str] = set(blocked)
        for wave in waves(self.desired, groups):
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
            # A Swarm deployment mostly waits while Swarm schedules its tasks: it does not
            # count against the engine's parallelism, so that all of a wave's services roll at once
            swarm = sum(1 for n in todo if groups[n][0].server in self.swarms)
            with ThreadPoolExecutor(max_workers=max(1, self.opts.parallelism + swarm)) as pool:
                done = list(pool.map(lambda n: self._deploy(n, groups[n]), todo))
            results.extend(done)
            failed.update(r.definition for r in done if not r.ok)
        return results

    def _skip(self, name: str, actions: list[Action], bad: list[str]) -> DeploymentResult:
        server, revision = actions[0].server, actions[0].revision
        kinds = [f"{a.action} {a.container}" for a in actions]
        dep = self.recorder.begin(name, server, revision, kinds)
        message = f"skipped: dependency {', '.join(sorted(bad))} failed or is in conflict"
        self.recorder.log(dep, message)
        self.recorder.finish(dep, ok=False, error=message)
        return DeploymentResult(name, server, dep, False, error=message, actions=kinds)

    def _wait_dependencies(self, todo: list[str], deps: Mapping[str, Sequence[str]],
                           groups: Mapping[str, list[Action]]) -> None:
        """Dependencies nothing acted on this run may still be starting: wait for them."""
        untouched = {d for n in todo for d in deps.get(n, ()) if d not in groups}
        for c in self.desired.containers:
            if c.definition in untouched and "healthcheck" in c.spec and c.server not in self.swarms:
                try:
                    self._wait_ready(self.engines[c.server], c.name, c.spec, lambda _line: None)
                except ActionFailed:
                    pass  # the dependent's own deployment will show what it meets

    def _deploy(self, name: str, actions: list[Action]) -> DeploymentResult:
        server = next((a.server for a in actions if a.action != "remove"), actions[0].server)
        kinds = [f"{a.action} {a.container}" for a in actions]
        dep = self.recorder.begin(name, server, actions[0].revision, kinds)

        def log(line: str) -> None:
            self.recorder.log(dep, line)

        for a in actions:
            log(f"{a.action} {a.container} on {a.server}: {a.cause}")
            try:
                self._one(a, log)
            except ActionFailed as exc:
                log(f"failed: {exc}")
                self.recorder.finish(dep, ok=False, rolled_back=exc.rolled_back, error=str(exc))
                return DeploymentResult(name, server, dep, False, exc.rolled_back, str(exc), kinds)
            except DeployFailed as exc:
                log(f"failed: {exc}")
                self.recorder.finish(dep, ok=False, rolled_back=exc.rolled_back, error=str(exc))
                return DeploymentResult(name, server, dep, False, exc.rolled_back, str(exc), kinds)
            except (EngineError, DockerUnavailable) as exc:
                log(f"failed: {exc}")
                self.recorder.finish(dep, ok=False, error=str(exc))
                return DeploymentResult(name, server, dep, False, False, str(exc), kinds)
        self.recorder.finish(dep, ok=True)
        return DeploymentResult(name, server, dep, True, actions=kinds)

    def _one(self, a: Action, log: Callable[[str], None]) -> None:
        eng = self.engines[a.server]
        if a.server in self.swarms:
            c = self.specs.get((a.server, a.container))
            labels = self._labels(a, c) if c is not None else {}
            self.swarms[a.server].run(a, c, labels, log)
            return
        if a.action == "remove":
            self._remove(eng, a, log)
            return
        spec = self.specs[(a.server, a.container)]
        if a.action == "create":
            self._create(eng, a, spec, log)
        elif a.action == "start":
            eng.start(a.container_id)
            self._wait_ready(eng, a.container_id, spec.spec, log)
        elif a.action == "recreate":
            self._recreate(eng, a, spec, log)

    def _labels(self, a: Action, c: ContainerSpec) -> dict[str, str]:
        return L.container_labels(project=c.project, definition=c.definition, replica=c.replica,
                                  revision=a.revision, spec_hash_=c.spec_hash, template_ref=c.template_ref,
                                  commit=self.commit, spec=c.spec)

    def _ensure_image(self, eng: Engine, image: str, log: Callable[[str], None]) -> None:
        if eng.has_image(image):
            return
        log(f"image {image} is not present: pulling")
        try:
            for line in eng.pull(image):
                log(f"pull: {line}")
        except (EngineError, DockerUnavailable) as exc:
            raise ActionFailed(f"image {image} is not present and could not be pulled: {exc}") from None

    def _create(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        self._ensure_image(eng, c.spec["image"], log)
        ident = eng.create(c.name, c.spec, self._labels(a, c), self.secrets)
        log(f"created {c.name} ({ident[:12]})")
        try:
            self._bring_up(eng, ident, c, log)
        except (ActionFailed, EngineError) as exc:
            eng.remove(ident)
            raise ActionFailed(f"{c.name} did not come up: {exc}") from None

    def _bring_up(self, eng: Engine, ident: str, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """Networks, start, then wait until running (and healthy, with a healthcheck)."""
        eng.connect_networks(ident, list(c.spec.get("networks", [])))
        eng.start(ident)
        self._wait_ready(eng, ident, c.spec, log)

    def _recreate(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        # Order fixed by DESIGN.md: the new container exists (config validated by the engine)
        # before the old one stops, and the old one goes only once the new one is proven.
        self._ensure_image(eng, c.spec["image"], log)
        temp = L.temp_name(c.name)
        eng.remove(temp)
        new = eng.create(temp, c.spec, self._labels(a, c), self.secrets)
        log(f"created {temp} ({new[:12]})")
        old = a.container_id
        was_running = _running(eng, old)
        if was_running:
            eng.stop(old, timeout=self.opts.stop_timeout)
            log(f"stopped the old {c.name} ({old[:12]})")
        try:
            self._bring_up(eng, new, c, log)
        except (ActionFailed, EngineError) as exc:
            log(f"the new container failed: {exc}; restoring the old one")
            eng.remove(new)
            if was_running:
                eng.start(old)
                log(f"restarted the old {c.name} ({old[:12]})")
            raise ActionFailed(f"{c.name}: new container failed ({exc}); old container restored",
                               rolled_back=True) from None
        eng.remove(old)
        eng.rename(new, c.name)
        log(f"replaced {c.name}: {old[:12]} -> {new[:12]}")

    def _remove(self, eng: Engine, a: Action, log: Callable[[str], None]) -> None:
        try:
            info = eng.inspect(a.container_id)
        except Missing:
            log(f"{a.container} is already gone")
            return
        if info.get("State", {}).get("Running"):
            eng.stop(a.container_id, timeout=self.opts.stop_timeout)
        eng.remove(a.container_id)
        log(f"removed {a.container} ({a.container_id[:12]})")
        if self.opts.prune_volumes:
            for m in info.get("Mounts", []):
                if m.get("Type") == "volume" and m.get("Name"):
                    eng.remove_volume(m["Name"])
                    log(f"removed volume {m['Name']}")

    def _wait_ready(self, eng: Engine, ident: str, spec: Mapping[str, Any], log: Callable[[str], None]) -> None:
        has_hc = "healthcheck" in spec
        start = time.monotonic()
        deadline = start + self.opts.health_timeout
        while True:
            state = eng.inspect(ident).get("State", {})
            if not state.get("Running"):
                raise ActionFailed(f"the container exited (code {state.get('ExitCode')}): "
                                   f"{_tail(eng, ident)}".rstrip(": "))
            if has_hc:
                health = (state.get("Health") or {}).get("Status")
                if health == "healthy":
                    log("healthy")
                    return
                if health == "unhealthy":
                    raise ActionFailed("the container is unhealthy: " + _probe_output(state))
            elif time.monotonic() - start >= self.opts.settle:
                return
            if time.monotonic() > deadline:
                raise ActionFailed(f"not healthy within {self.opts.health_timeout:g}s")
            self.sleep(0.2)


def _running(eng: Engine, ident: str) -> bool:
    try:
        return bool(eng.inspect(ident).get("State", {}).get("Running"))
    except Missing:
        return False


def _tail(eng: Engine, ident: str) -> str:
    try:
        lines = eng.logs(ident, tail=3).strip().splitlines()
    except (EngineError, DockerUnavailable):
        return ""
    return " | ".join(line.split(" ", 1)[-1] for line in lines)[-300:]


def _probe_output(state: Mapping[str, Any]) -> str:
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return "no probe output"
    last = log[-1]
    return f"probe exited {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[:200]}"
