"""An interrupted deployment's containers pass the health gate again (stages/interrupted.py,
QA F4), and the store's list of the deployments that did not end."""

from __future__ import annotations

from pathlib import Path

from syncer.adapters.store import Store
from syncer.core import labels as L
from syncer.core.model import ContainerSpec, Desired, LiveContainer, Observed, ServerState
from syncer.stages.interrupted import CAUSE, gate_again
from syncer.stages.plan import plan

SPEC: dict[str, object] = {"image": "busybox:latest", "healthcheck": {"test": ["CMD", "false"]}}
JOB: dict[str, object] = {"image": "busybox:latest", "kind": "job"}


def _want(name: str, spec: dict[str, object], server: str = "local", replica: int = 1,
          definition: str = "") -> ContainerSpec:
    return ContainerSpec("p", server, definition or name, replica, name, "box@1", spec, L.spec_hash(spec))


def _live(name: str, spec: dict[str, object], *, state: str = "running", revision: int = 1, server: str = "local",
          replica: int = 1, definition: str = "") -> LiveContainer:
    labels = L.container_labels(project="p", definition=definition or name, replica=replica, revision=revision,
                                spec_hash_=L.spec_hash(spec), template_ref="box@1", commit=None, spec=spec)
    return LiveContainer(f"id-{name}", name, server, state, "unhealthy", labels)


def _scenario() -> tuple[Desired, Observed]:
    desired = Desired("p", (_want("web", SPEC), _want("web-2", SPEC, replica=2, definition="web"), _want("db", SPEC),
                            _want("stopped", SPEC), _want("job", JOB), _want("svc", SPEC, server="swarm")),
                      ("web", "db", "stopped", "job", "svc"))
    local = ServerState("local", True, managed=(
        _live("web", SPEC), _live("web-2", SPEC, replica=2, definition="web"), _live("db", SPEC),
        _live("stopped", SPEC, state="exited"), _live("job", JOB)))
    swarm = ServerState("swarm", True, managed=(_live("svc", SPEC, server="swarm"),), kind="swarm")
    return desired, Observed("p", {"local": local, "swarm": swarm})


def _kinds(interrupted: dict[str, int]) -> dict[str, tuple[str, str]]:
    desired, observed = _scenario()
    made = plan(desired, observed, prune=True, created_at="t", known={})
    return {a.container: (a.action, a.cause) for a in gate_again(made, desired, observed, interrupted).actions}


def test_the_running_containers_of_an_interrupted_deployment_are_started_and_waited_for_again() -> None:
    got = _kinds({"web": 1})
    assert got["web"] == got["web-2"] == ("start", CAUSE)
    assert got["db"][0] == "noop"  # its latest deployment ended


def test_another_revision_a_job_a_stopped_container_and_a_swarm_service_are_left_as_planned() -> None:
    plain = _kinds({})
    assert _kinds({"web": 2}) == plain  # the deployment that did not end was of another revision
    got = _kinds({"job": 1, "stopped": 1, "svc": 1})
    assert got == plain and got["stopped"][0] == "start" and got["stopped"][1] != CAUSE


def test_nothing_interrupted_gives_the_same_plan_object() -> None:
    desired, observed = _scenario()
    made = plan(desired, observed, prune=True, created_at="t", known={})
    assert gate_again(made, desired, observed, {}) is made
    assert gate_again(made, desired, observed, {"db": 7}) is made


def test_the_store_lists_the_latest_deployments_that_did_not_end(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        run = store.start_run("cli", None, 4242)

        def deployment(definition: str, revision: int) -> str:
            return store.add_deployment(run_id=run, definition=definition, server="local", revision=revision,
                                        actions=[], trigger="cli", commit=None)

        for name in ("killed", "healed", "failed", "ok"):
            deployment(name, 1)
        store.recover()  # (all four were left pending by a killed apply)
        store.finish_deployment(deployment("healed", 1), ok=True)
        store.finish_deployment(deployment("failed", 2), ok=False, error="the container is unhealthy")
        store.finish_deployment(deployment("ok", 2), ok=True)
        running = deployment("running", 3)
        store.deployment_running(running)
        assert store.unended() == {"killed": (1, None), "running": (3, 4242)}
    finally:
        store.close()
