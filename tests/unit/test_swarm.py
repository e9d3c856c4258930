"""Swarm servers, the pure parts: render (one service per definition), the ServiceSpec a
rendered spec becomes, and the plan for a Swarm server (create / update / noop / remove)."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.core import labels as L
from syncer.core.model import (
    ContainerSpec, Definition, Desired, LiveContainer, LiveTask, Located, Observed, Server, ServerState, Template,
)
from syncer.stages import swarm as S
from syncer.stages import swarm_fields
from syncer.stages.swarm_jobs import job_completions, job_run, job_state
from syncer.stages.plan import plan
from syncer.stages.render import normalise, render_definition
from syncer.cli.views import closing_line

KEY = b"k" * 32


def _tpl(spec: dict[str, Any]) -> Template:
    return Template("box", "box", "1.0", "", {}, False, {"type": "object", "properties": {}}, spec, {}, "h",
                    Located("t.yaml"))


def _def(replicas: int | None) -> Definition:
    return Definition("web", "box", None, "cluster", "development", replicas, {}, (), {}, Located("d.yaml"))


def _spec(**extra: Any) -> ContainerSpec:
    """A rendered spec: its short forms made canonical (`dns_search: x` a list), as render does."""
    spec = normalise({"image": "busybox:latest", "command": ["sleep", "1000"], "replicas": 2, **extra})
    return ContainerSpec("acme", "cluster", "web", 1, "web", "box@1.0", spec, L.spec_hash(spec))


def test_a_swarm_server_renders_one_service_per_definition_with_its_replicas() -> None:
    swarm = Server("cluster", "unix:///x.sock", kind="swarm")
    [c] = render_definition("acme", _def(3), _tpl({"image": "busybox"}), swarm, {}, KEY)
    assert (c.name, c.replica, c.spec["replicas"]) == ("web", 1, 3)
    docker = Server("cluster")
    assert [c.name for c in render_definition("acme", _def(3), _tpl({"image": "busybox"}), docker, {}, KEY)] \
        == ["web", "web-2", "web-3"]
    # `replicas` in the spec counts when the definition gives none
    [c] = render_definition("acme", _def(None), _tpl({"image": "busybox", "replicas": 4}), swarm, {}, KEY)
    assert c.spec["replicas"] == 4


def test_the_service_spec_rolls_start_first_and_rolls_back_on_failure() -> None:
    body = S.service_spec(_spec(), {L.PROJECT: "acme"})
    assert body["Name"] == "web" and body["Mode"] == {"Replicated": {"Replicas": 2}}
    assert body["UpdateConfig"] == {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback",
                                    "Monitor": 5 * 10**9, "MaxFailureRatio": 0, "Order": "start-first"}
    assert body["RollbackConfig"]["FailureAction"] == "pause"
    task = body["TaskTemplate"]
    assert task["ContainerSpec"]["Args"] == ["sleep", "1000"] and "Command" not in task["ContainerSpec"]
    assert task["Networks"] == [{"Target": "acme", "Aliases": ["web"]}]
    assert task["RestartPolicy"] == {"Condition": "any"}


def test_spec_fields_map_to_the_swarm_api() -> None:
    ref = "<<secret:DB:" + "0" * 32 + ">>"
    c = _spec(env={"DB": ref}, ports=[{"container_port": 80, "host_port": 8080, "protocol": "tcp"},
                                      {"container_port": 9000, "protocol": "tcp"}],
              healthcheck={"test": ["CMD", "true"], "interval": "2s", "retries": 3},
              placement={"constraints": ["node.role==manager"]},
              update={"parallelism": 2, "delay": "1s", "order": "stop-first", "monitor": "1s"},
              resources={"memory": "64m", "cpus": 0.5}, restart="on-failure:3", user="1000", working_dir="/srv",
              volumes=[{"name": "data", "mount_path": "/data"}])
    body = S.service_spec(c, {})
    cs = body["TaskTemplate"]["ContainerSpec"]
    assert cs["Env"] == [f"DB={ref}"]  # the reference: the adapter reveals it, at the edge only
    assert cs["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2 * 10**9, "Retries": 3}
    assert (cs["User"], cs["Dir"]) == ("1000", "/srv")
    assert cs["Mounts"] == [{"Type": "volume", "Target": "/data", "ReadOnly": False, "Source": "data"}]
    assert body["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                                              "PublishMode": "ingress"}]
    assert body["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==manager"]}
    assert body["TaskTemplate"]["Resources"]["Limits"] == {"MemoryBytes": 64 * 1024**2, "NanoCPUs": 5 * 10**8}
    assert body["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure", "MaxAttempts": 3}
    assert body["UpdateConfig"]["Order"] == "stop-first" and body["UpdateConfig"]["Delay"] == 10**9
    assert body["UpdateConfig"]["Parallelism"] == 2 and body["UpdateConfig"]["Monitor"] == 10**9


def test_scaling_leaves_the_task_template_alone() -> None:
    # a replica count or update pace change must not restart every task
    a = S.service_spec(_spec(), {})
    b = S.service_spec(_spec(replicas=5, update={"parallelism": 3}), {})
    assert a["TaskTemplate"] == b["TaskTemplate"] and a["Labels"][S.TASK_HASH] == b["Labels"][S.TASK_HASH]
    c = S.service_spec(_spec(env={"A": "1"}), {})
    assert c["Labels"][S.TASK_HASH] != a["Labels"][S.TASK_HASH]


def test_service_labels_are_the_services_own_and_roll_no_task() -> None:
    """Compose's `deploy.labels`: on the service (what Traefik's Swarm provider reads), beside
    syncer's own, not on its tasks' containers; a change of them rolls no task."""
    own = {"syncer.project": "acme", "syncer.definition": "web"}
    a = S.service_spec(_spec(labels={"on.container": "1"}), own)
    b = S.service_spec(_spec(labels={"on.container": "1"}, service_labels=["traefik.http.services.web.loadbalancer"
                                                                             ".server.port=8080", "n=2"]), own)
    assert b["Labels"] == {**own, "traefik.http.services.web.loadbalancer.server.port": "8080", "n": "2",
                           S.TASK_HASH: a["Labels"][S.TASK_HASH]}
    assert b["TaskTemplate"] == a["TaskTemplate"]  # the same tasks: Swarm starts no roll
    assert "n" not in b["TaskTemplate"]["ContainerSpec"]["Labels"]
    assert b["TaskTemplate"]["ContainerSpec"]["Labels"]["on.container"] == "1"


def test_files_are_configs_and_secrets_named_by_content_hash() -> None:
    ref = "<<secret:TOKEN:" + "a" * 32 + ">>"
    files = [{"path": "/etc/app.conf", "content": "x=1\n"}, {"path": "/run/secrets/t", "secret": ref}]
    conf, secret = S.files_of(_spec(files=files))
    assert (conf.kind, secret.kind) == ("config", "secret")
    assert conf.name.startswith("acme_web_") and len(conf.name.rsplit("_", 1)[1]) == 12
    assert (conf.mode, secret.mode) == (0o444, 0o400)
    [mixed] = S.files_of(_spec(files=[{"path": "/etc/db.conf", "content": f"password={ref}\n"}]))
    assert (mixed.kind, mixed.mode) == ("secret", 0o400)  # a config holding a secret is a secret
    changed, _ = S.files_of(_spec(files=[{"path": "/etc/app.conf", "content": "x=2\n"}, files[1]]))
    assert changed.name != conf.name
    body = S.attach_files(S.service_spec(_spec(files=files), {}), {conf.name: "c1", secret.name: "s1"})
    cs = body["TaskTemplate"]["ContainerSpec"]
    assert cs["Configs"] == [{"File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o444},
                              "ConfigName": conf.name, "ConfigID": "c1"}]
    assert cs["Secrets"][0]["SecretID"] == "s1"


def _service(c: ContainerSpec, **labels: str) -> LiveContainer:
    base = L.container_labels(project="acme", definition=c.definition, replica=1, revision=1, spec_hash_=c.spec_hash,
                              template_ref=c.template_ref, commit=None, spec=c.spec)
    return LiveContainer("svc1", c.definition, "cluster", "running", None, {**base, **labels}, status="2/2 task(s) running")


def _plan(desired: list[ContainerSpec], live: list[LiveContainer], defs: tuple[str, ...] = ("web",)) -> Any:
    state = ServerState("cluster", True, tuple(live), kind="swarm")
    return plan(Desired("acme", tuple(desired), defs), Observed("acme", {"cluster": state}), prune=True,
                created_at="now")


def test_the_plan_for_a_swarm_server_creates_updates_and_removes_services() -> None:
    c = _spec()
    p = _plan([c], [])
    assert [(a.action, a.container, a.cause) for a in p.actions] == [("create", "web", "service absent")]
    p = _plan([c], [_service(c)])
    assert [(a.action, a.cause) for a in p.actions] == [("noop", "in sync (2/2 task(s) running)")]
    scaled = _spec(replicas=3)
    p = _plan([scaled], [_service(c)])
    [a] = p.actions
    assert (a.action, a.container_id, a.revision) == ("update", "svc1", 2)
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("replicas", 2, 3)]
    assert p.summary()["update"] == 1 and "1 to update (Swarm)" in closing_line(p)
    p = _plan([], [_service(c)], defs=())
    assert [(a.action, a.cause) for a in p.actions] == [("remove", "definition removed (prune)")]


def test_a_plan_counts_services_on_swarm_servers_and_containers_elsewhere() -> None:
    from syncer.stages.planfile import from_dict, to_dict

    c = _spec()
    p = _plan([c], [_service(c)])
    assert closing_line(p) == "No changes. 1 service(s) in sync."
    box = {"image": "busybox:latest"}
    side = ContainerSpec("acme", "local", "side", 1, "side", "box@1.0", box, L.spec_hash(box))
    side_live = LiveContainer("c1", "side", "local", "running", None,
                              L.container_labels(project="acme", definition="side", replica=1, revision=1,
                                                 spec_hash_=side.spec_hash, template_ref="box@1.0", commit=None,
                                                 spec=box))
    both = plan(Desired("acme", (c, side), ("web", "side")),
                Observed("acme", {"cluster": ServerState("cluster", True, (_service(c),), kind="swarm"),
                                  "local": ServerState("local", True, (side_live,))}), prune=True, created_at="t")
    assert closing_line(both).startswith("No changes. 1 container(s) and 1 service(s) in sync.")
    back = from_dict(to_dict(both))  # a saved plan keeps which servers are Swarm's
    assert back.swarm == frozenset({"cluster"}) and closing_line(back) == closing_line(both)
    assert to_dict(both)["servers"]["cluster"]["kind"] == "swarm"


def test_instances_of_a_swarm_server_are_its_tasks() -> None:
    c = _spec()
    task = LiveTask("task1", "web", "svc1", 2, "node1", "running", "running")
    gone = LiveTask("task0", "web", "svc1", 1, "node1", "shutdown", "shutdown")
    state = ServerState("cluster", True, (_service(c),), kind="swarm", tasks=(task, gone))
    [row] = state.instances()
    assert (row.name, row.definition, row.replica, row.state) == ("web.2", "web", 2, "running")


def test_golden_plan_text_with_a_swarm_server_beside_a_docker_one() -> None:
    import os
    from pathlib import Path

    from syncer.cli.views import plan_text

    web, api = _spec(), ContainerSpec("acme", "cluster", "api", 1, "api", "box@1.0", {"image": "a:1", "replicas": 1},
                                      L.spec_hash({"image": "a:1", "replicas": 1}))
    scaled = _spec(replicas=3, env={"LEVEL": "debug"})
    box = {"image": "busybox:latest"}
    side = ContainerSpec("acme", "local", "side", 1, "side", "box@1.0", box, L.spec_hash(box))
    swarm = ServerState("cluster", True, (_service(web),), kind="swarm")
    local = ServerState("local", True, ())
    p = plan(Desired("acme", (scaled, api, side), ("web", "api", "side")),
             Observed("acme", {"cluster": swarm, "local": local}), prune=True, created_at="t")
    text = plan_text(p)
    path = Path(__file__).resolve().parent.parent / "cases" / "plan_text" / "swarm.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_files_in_the_rendered_mapping_form_are_read_too() -> None:
    ref = "<<secret:TOKEN:" + "a" * 32 + ">>"
    files = {"/etc/app.conf": {"sha256": "x", "mode": "0440"}, "/run/t": {"secret": "TOKEN", "hash": ref}}
    conf, secret = S.files_of(_spec(files=files))
    assert (conf.kind, conf.mode, conf.data) == ("config", 0o440, "")  # no payload: empty content
    assert (secret.kind, secret.data, secret.mode) == ("secret", ref, 0o400)


def _state(live: list[LiveContainer], holders: tuple[LiveContainer, ...] = (), api: str = "1.41") -> ServerState:
    return ServerState("cluster", True, tuple(live), holders, kind="swarm", api_version=api)


def test_a_name_held_outside_the_project_is_a_conflict_and_a_held_service_stays_at_zero() -> None:
    from dataclasses import replace

    c = _spec()
    stranger = LiveContainer("abc123def4567890", "web", "cluster", "running", None, {})
    p = plan(Desired("acme", (c,), ("web",)), Observed("acme", {"cluster": _state([], (stranger,))}),
             prune=True, created_at="now")
    assert [(a.action, a.cause) for a in p.actions] == [
        ("conflict", "the name is held by a service syncer does not manage (abc123def456); nothing will be done")]
    stopped = replace(_service(c), replicas=0, state="stopped")
    observed = Observed("acme", {"cluster": _state([stopped])})
    [a] = plan(Desired("acme", (c,), ("web",)), observed, prune=True, created_at="t", held=frozenset({"web"})).actions
    assert (a.action, a.cause) == ("noop", "held at 0 replicas by an operator (start it through syncer)")
    [a] = plan(Desired("acme", (c,), ("web",)), observed, prune=True, created_at="t").actions
    assert (a.action, [(r.field, r.before, r.after) for r in a.reasons]) == ("update", [("replicas", 0, 2)])


def test_a_swarm_job_is_a_replicated_job_run_once_per_spec_hash() -> None:
    job = _spec(kind="job", replicas=1, restart="always")
    body = S.service_spec(job, {})
    assert body["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert "UpdateConfig" not in body and body["TaskTemplate"]["RestartPolicy"] == {"Condition": "none"}
    assert body["TaskTemplate"]["ContainerSpec"]["Labels"][L.KIND] == "job"  # its exit is not a fault
    done = LiveTask("t1", "web", "svc1", 1, "n", "complete", "complete")
    failed = LiveTask("t2", "web", "svc1", 1, "n", "failed", "shutdown", error="task: non-zero exit (3)")
    assert job_state([done], 1) == ("exited", "Exited (0) job completed")
    assert job_state([failed], 1)[0] == "exited" and job_state([failed], 1)[1].startswith("Exited (3)")
    live = _service(job)
    for tasks, want in (([done], ("noop", "job completed (exit 0)")), ([failed], ("run", "the job's last run"))):
        from dataclasses import replace

        state, status = job_state(tasks, 1)
        [a] = _plan([job], [replace(live, state=state, status=status)]).actions
        assert (a.action, a.cause[:len(want[1])]) == want
    assert [a.action for a in _plan([job], []).actions] == ["run"]
    # an engine without ReplicatedJob (API < 1.41) is named at plan time
    old = Observed("acme", {"cluster": _state([], api="1.40")})
    assert swarm_fields.jobs_unsupported(Desired("acme", (job,), ("web",)), old) == [("cluster", "web", "1.40")]
    assert swarm_fields.jobs_unsupported(Desired("acme", (job,), ("web",)), Observed("acme", {"cluster": _state([])})) == []
    silent = Observed("acme", {"cluster": _state([], api="")})  # an engine that did not say: refused, unlike start_interval
    assert swarm_fields.jobs_unsupported(Desired("acme", (job,), ("web",)), silent) == [("cluster", "web", "unknown")]


def test_declared_networks_are_joined_with_the_definition_as_alias() -> None:
    c = _spec(networks={"acme": {"aliases": ["web"]}, "acme_backend": {"aliases": ["api", "web"]},
                        "shared": {"aliases": ["web"]}})
    assert S.service_spec(c, {})["TaskTemplate"]["Networks"] == [
        {"Target": "acme", "Aliases": ["web"]}, {"Target": "acme_backend", "Aliases": ["api", "web"]},
        {"Target": "shared", "Aliases": ["web"]}]
    assert S.networks_of(c) == {"acme": "default", "acme_backend": "backend"}  # `shared` is external
    # left off the project's overlay by the rendered spec (`project_network: false`, or internal
    # networks only), as a container is left off the project network
    alone = _spec(networks={"acme_backend": {"aliases": ["web"]}})
    assert S.service_spec(alone, {})["TaskTemplate"]["Networks"] == [{"Target": "acme_backend", "Aliases": ["web"]}]
    assert S.networks_of(alone) == {"acme_backend": "backend"}


def test_a_swarm_job_waits_for_the_job_timeout_not_the_health_timeout() -> None:
    """A job runs to completion: its wait is the apply's job timeout (a long migration must not
    fail at the health timeout, and a job past its own limit fails)."""
    from types import SimpleNamespace

    from syncer.core.model import Action, ContainerSpec, Desired
    from syncer.engine.swarm_apply import SwarmDeployer
    from syncer.engine.swarms import DeployFailed

    running = [{"ID": "t" * 12, "ServiceID": "svc1", "DesiredState": "complete", "Status": {"State": "running"}}]
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    spec = ContainerSpec("p", "sw", "migrate", 1, "migrate", "job@1", {"image": "x", "kind": "job"}, "h")
    deployer = SwarmDeployer(fake, Desired("p", (spec,), ("migrate",)), {}, timeout=3600.0, job_timeout=0.0,
                             sleep=lambda _s: None)
    deployer.swarm = SimpleNamespace(create_service=lambda body, secrets: "svc1",  # type: ignore[assignment]
                                     project_tasks=lambda project: running)
    body = {"Mode": {"ReplicatedJob": {"TotalCompletions": 1}}}
    action = Action("run", "sw", "migrate", "migrate", 1, "job not run")
    with pytest.raises(DeployFailed, match="within 0s"):
        deployer.run_job(action, spec, body, lambda _line: None)
    # what it waited for, when the clock ran out: a task still running, or Swarm placing none
    with pytest.raises(DeployFailed, match=r"the job did not complete within 0s; running: no reason given$"):
        deployer.run_job(action, spec, body, lambda _line: None)
    running.clear()
    with pytest.raises(DeployFailed, match=r"within 0s; Swarm made no task \(does any node meet its placement\?\)$"):
        deployer.run_job(action, spec, body, lambda _line: None)


def test_a_health_checked_task_seen_running_once_must_still_run_a_moment_later() -> None:
    """Swarm lists a task stopped as unhealthy whose process exits 0 as `running` for a moment,
    then `complete` (found on a real swarm: such a create was once reported ok). A service
    with a healthcheck is up once its tasks still run in a list asked for CONFIRM later."""
    from types import SimpleNamespace

    from syncer.core.model import Desired
    from syncer.engine.swarm_apply import SwarmDeployer
    from syncer.engine.swarms import DeployFailed

    def task(state: str, desired: str = "running") -> dict[str, Any]:
        return {"ID": "t" * 12, "ServiceID": "svc1", "DesiredState": desired, "Slot": 1,
                "CreatedAt": "2026-12-02T10:00:00Z", "Status": {"State": state}}

    listed = [[task("running")]]  # what the shared list shows; the confirming look sees it ended
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    deployer = SwarmDeployer(fake, Desired("p", (), ()), {}, timeout=0.0, sleep=lambda _s: None)
    deployer.swarm = SimpleNamespace(project_tasks=lambda project: listed[0],  # type: ignore[assignment]
                                     service_tasks=lambda ident: [task("complete", "shutdown")])
    lines: list[str] = []
    with pytest.raises(DeployFailed):
        deployer._wait_running("svc1", 1, lines.append, give_up_after=3, checked=lambda: True)
    assert "1/1 task(s) running" not in lines
    deployer.swarm.service_tasks = lambda ident: [task("running")]  # still running: up
    deployer._wait_running("svc1", 1, lines.append, give_up_after=3, checked=lambda: True)
    assert lines[-1] == "1/1 task(s) running"


def test_a_create_whose_image_has_the_healthcheck_is_confirmed_as_one_whose_spec_has_it() -> None:
    """The image's own healthcheck gates the tasks as the spec's does (Swarm runs it), so a
    service without one in its spec is confirmed CONFIRM later when its image has one; the
    image is asked about only when the spec does not decide, and NONE in the spec disables it."""
    from types import SimpleNamespace

    from syncer.core.model import Desired
    from syncer.engine.swarm_apply import SwarmDeployer
    from syncer.engine.swarms import DeployFailed
    from syncer.stages.swarm_tasks import health_checked

    def body(healthcheck: dict[str, Any] | None = None) -> dict[str, Any]:
        cs: dict[str, Any] = {"Image": "busybox:latest", **({"Healthcheck": healthcheck} if healthcheck else {})}
        return {"Name": "app", "Mode": {"Replicated": {"Replicas": 1}}, "TaskTemplate": {"ContainerSpec": cs}}

    asked: list[str] = []

    def image_test(test: list[str] | None) -> Any:
        return lambda image: asked.append(image) or test

    assert health_checked(body(), image_test(["CMD-SHELL", "false"]))
    assert not health_checked(body(), image_test(None))
    assert not health_checked(body(), image_test(["NONE"]))
    assert asked == ["busybox:latest"] * 3
    asked.clear()
    assert not health_checked(body({"Test": ["NONE"]}), image_test(["CMD-SHELL", "false"]))
    assert health_checked(body({"Test": ["CMD", "true"]}), image_test(None))
    assert health_checked(body({"Interval": 10**9}), image_test(["CMD-SHELL", "true"]))  # timings only
    assert asked == ["busybox:latest"]

    def task(state: str, desired: str = "running") -> dict[str, Any]:
        return {"ID": "t" * 12, "ServiceID": "svc1", "DesiredState": desired, "Slot": 1,
                "CreatedAt": "2026-12-02T10:00:00Z", "Status": {"State": state}}

    removed: list[str] = []
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    deployer = SwarmDeployer(fake, Desired("p", (), ()), {}, timeout=0.0, sleep=lambda _s: None)
    deployer.swarm = SimpleNamespace(  # type: ignore[assignment]
        create_service=lambda b, secrets: "svc1", project_tasks=lambda project: [task("running")],
        service_tasks=lambda ident: [task("complete", "shutdown")], remove_service=removed.append,
        prune_files=lambda *a: [], image_healthcheck=lambda image: ["CMD-SHELL", "false"])
    spec = ContainerSpec("p", "sw", "app", 1, "app", "box@1.0", {"image": "busybox:latest"}, "h")
    with pytest.raises(DeployFailed, match="did not come up"):
        deployer.create(spec, body(), lambda _line: None)
    assert removed == ["svc1"]
    deployer.swarm.image_healthcheck = lambda image: None  # no healthcheck: up when seen running
    lines: list[str] = []
    deployer.create(spec, body(), lines.append)
    assert lines[-1] == "1/1 task(s) running"


def test_a_followed_tag_is_pinned_to_the_digest_the_plan_heard_and_the_registry_is_not_asked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the plan showed is what rolls out: the apply pins the digest of the plan's own
    observation. The registry is asked only for a ref that observation did not ask about."""
    from types import SimpleNamespace

    from syncer.adapters import images
    from syncer.core.model import ContainerSpec, Desired, RegistryAnswer
    from syncer.engine.swarm_apply import SwarmDeployer

    asked: list[str] = []
    monkeypatch.setattr(images, "registry_digest",
                        lambda _engine, ref: asked.append(ref) or RegistryAnswer(digest="sha256:" + "b" * 64))
    fake = SimpleNamespace(server=SimpleNamespace(name="sw"), reads=None, light=None)
    planned = RegistryAnswer(digest="sha256:" + "a" * 64)
    spec = ContainerSpec("p", "sw", "web", 1, "web", "box@1", {"image": "reg:5000/app:1", "pull_policy": "always"}, "h")
    other = ContainerSpec("p", "sw", "api", 1, "api", "box@1", {"image": "reg:5000/api:1", "pull_policy": "always"}, "h")
    plain = ContainerSpec("p", "sw", "db", 1, "db", "box@1", {"image": "reg:5000/db:1"}, "h")
    deployer = SwarmDeployer(fake, Desired("p", (spec, other, plain), ()), {}, timeout=1.0,
                             registry={"reg:5000/app:1": planned})
    lines: list[str] = []
    assert deployer._pinned(spec, lines.append) == "reg:5000/app:1@sha256:" + "a" * 64
    assert asked == []
    assert deployer._pinned(other, lines.append) == "reg:5000/api:1@sha256:" + "b" * 64
    assert asked == ["reg:5000/api:1"]
    assert deployer._pinned(plain, lines.append) == "" and asked == ["reg:5000/api:1"] and not lines
    unanswered = SwarmDeployer(fake, Desired("p", (spec,), ()), {}, timeout=1.0,
                               registry={"reg:5000/app:1": RegistryAnswer(error="registry unreachable")})
    assert unanswered._pinned(spec, lines.append) == "" and asked == ["reg:5000/api:1"]
    assert lines == ["registry unreachable; the service names the tag and each node resolves it"]


def test_a_service_held_at_zero_or_a_finished_job_is_still_one_instances_row() -> None:
    from dataclasses import replace

    c = _spec()
    held = replace(_service(c), replicas=0, state="stopped", status="0/0 task(s) running")
    gone = LiveTask("task0", "web", "svc1", 1, "node1", "shutdown", "shutdown")
    [row] = ServerState("cluster", True, (held,), kind="swarm", tasks=(gone,)).instances()
    assert (row.id, row.name, row.definition, row.state) == ("svc1", "web", "web", "stopped")
    assert row.status == "stopped: 0/2 replicas (`instances start` scales it back to 2)"
    job = replace(_service(_spec(kind="job")), id="svc2", name="once", state="exited",
                  status="Exited (0) job completed", labels={L.DEFINITION: "once"})
    done = LiveTask("task1", "once", "svc2", 1, "node1", "complete", "complete")
    task = LiveTask("task2", "web", "svc1", 1, "node1", "running", "running")
    running = replace(held, replicas=2, state="running")
    rows = ServerState("cluster", True, (running, job), kind="swarm", tasks=(task, done)).instances()
    assert [(r.name, r.state, r.status) for r in rows] == [
        ("web.1", "running", "task running"), ("once", "exited", "Exited (0) job completed")]


def test_a_mode_change_between_job_and_service_is_a_replacement_not_an_update() -> None:
    service, job = _spec(), _spec(kind="job")
    [a] = _plan([job], [_service(service)]).actions
    assert (a.action, a.container_id) == ("run", "svc1")
    assert (a.reasons[0].field, a.reasons[0].before, a.reasons[0].after) == ("mode", "replicated", "replicated-job")
    [a] = _plan([service], [_service(job)]).actions
    assert (a.action, a.container_id) == ("recreate", "svc1")
    assert (a.reasons[0].field, a.reasons[0].before, a.reasons[0].after) == ("mode", "replicated-job", "replicated")
    assert a.cause.startswith("mode changed")


def test_an_overlay_no_service_will_join_is_planned_for_removal_and_none_is_planned_for_creation() -> None:
    from dataclasses import replace

    from syncer.core.model import LiveNetwork

    c = _spec(networks={"acme": {"aliases": ["web"]}})
    nets = (LiveNetwork("n1", "acme", {L.PROJECT: "acme"}), LiveNetwork("n2", "acme_old", {L.PROJECT: "acme"}),
            LiveNetwork("n3", "ingress", {}))
    state = ServerState("cluster", True, (_service(c),), kind="swarm", networks=nets)
    p = plan(Desired("acme", (c,), ("web",)), Observed("acme", {"cluster": state}), prune=True, created_at="t")
    assert [(a.action, a.container, a.container_id) for a in p.actions if a.action != "noop"] == [
        ("network remove", "acme_old", "n2")]
    bare = Observed("acme", {"cluster": replace(state, networks=())})
    p = plan(Desired("acme", (c,), ("web",)), bare, prune=True, created_at="t")
    assert [a.action for a in p.actions] == ["noop"]  # the overlay is made by the deployment that joins it


def _credentials(tmp_path: Any, monkeypatch: Any, doc: str | None) -> bool:
    from syncer.adapters.images import registry_credentials

    (tmp_path / "cfg").mkdir(exist_ok=True)
    if doc is not None:
        (tmp_path / "cfg" / "config.json").write_text(doc)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    return registry_credentials()


@pytest.mark.parametrize(("doc", "held"), [
    (None, False), ("{}", False), ('{"auths": {}}', False), ("not json", False),
    ('{"auths": {"registry.example.com": {"auth": "dTpw"}}}', True),
    ('{"credsStore": "pass"}', True), ('{"credHelpers": {"gcr.io": "gcloud"}}', True),
])
def test_registry_credentials_are_what_a_docker_login_left_in_the_client_config(
        tmp_path: Any, monkeypatch: Any, doc: str | None, held: bool) -> None:
    assert _credentials(tmp_path, monkeypatch, doc) is held


def test_a_docker_login_or_logout_after_start_is_seen_by_the_same_process(tmp_path: Any, monkeypatch: Any) -> None:
    """A long-running `watch` must not keep what the client config said when it started."""
    import os

    assert _credentials(tmp_path, monkeypatch, None) is False
    config = tmp_path / "cfg" / "config.json"
    assert _credentials(tmp_path, monkeypatch, '{"auths": {"registry.example.com": {"auth": "dTpw"}}}') is True
    stamp = config.stat().st_mtime_ns
    config.write_text('{"auths": {}}    ')  # a logout; the same mtime, as a coarse clock could leave it
    os.utime(config, ns=(stamp, stamp))
    assert _credentials(tmp_path, monkeypatch, None) is False
    config.unlink()
    assert _credentials(tmp_path, monkeypatch, None) is False


class _Client:
    def __init__(self, who: str, calls: list[tuple[str, str]]) -> None:
        self.who, self.calls = who, calls

    def post(self, path: str, body: Any = None, query: Any = None) -> dict[str, str]:
        self.calls.append((self.who, path))
        return {"ID": "s1"}

    def create_service(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        self.calls.append((self.who, "create_service"))
        return {"ID": "s1"}

    def create_config(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        self.calls.append((self.who, "create_config"))
        return {"ID": "c1"}


class _Engine:
    def __init__(self, light: Any, sdk: Any) -> None:
        self.server = Server("cluster", "unix:///x.sock", kind="swarm")
        self.light, self.reads, self.api = light, light, sdk

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def test_a_service_goes_through_the_sdk_only_where_it_may_need_a_registry_login_or_there_is_no_socket(
        tmp_path: Any, monkeypatch: Any) -> None:
    from syncer.adapters.swarm import Swarm

    body = {"Name": "web", "Labels": {}, "Mode": {"Replicated": {"Replicas": 1}}, "EndpointSpec": {},
            "TaskTemplate": {"ContainerSpec": {"Image": "registry.example.com/app:1", "Env": []}}}
    calls: list[tuple[str, str]] = []
    swarm = Swarm(_Engine(_Client("light", calls), _Client("sdk", calls)))  # type: ignore[arg-type]
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    swarm.create_service(body, {})
    swarm.create_object("config", "c", b"x", {})
    assert calls == [("light", "/services/create"), ("light", "/configs/create")]

    calls.clear()
    (tmp_path / "config.json").write_text('{"auths": {"registry.example.com": {"auth": "dTpw"}}}')
    swarm.create_service(body, {})  # the SDK sends the login along as X-Registry-Auth
    swarm.create_object("config", "c", b"x", {})  # (a config pulls nothing)
    assert calls == [("sdk", "create_service"), ("light", "/configs/create")]

    calls.clear()
    over_tls = Swarm(_Engine(None, _Client("sdk", calls)))  # type: ignore[arg-type]
    over_tls.create_object("config", "c", b"x", {})
    assert calls == [("sdk", "create_config")]


def test_process_settings_reach_the_service_as_they_reach_a_container() -> None:
    """What `docker service create` takes for them (docs of the Engine API's ContainerSpec):
    nothing a container would get is left out of a service without a word."""
    c = _spec(cap_add=["NET_ADMIN"], cap_drop=["ALL"], sysctls={"net.core.somaxconn": 1024}, stop_signal="SIGINT",
              init=True, read_only=True, tty=False, stdin_open=True, ulimits={"nofile": {"soft": 1024, "hard": 2048}},
              dns=["10.0.0.2"], dns_search="corp.example", extra_hosts=["db:10.0.0.5", "v6:::1"],
              tmpfs=["/run", "/cache:size=64m,mode=1777"], logging={"driver": "json-file",
                                                                 "options": {"max-size": "1m", "compress": True}},
              resources={"memory": "64m", "memory_reservation": "32m"})
    body = S.service_spec(c, {})
    cs = body["TaskTemplate"]["ContainerSpec"]
    assert (cs["CapabilityAdd"], cs["CapabilityDrop"]) == (["NET_ADMIN"], ["ALL"])
    assert cs["Sysctls"] == {"net.core.somaxconn": "1024"} and cs["StopSignal"] == "SIGINT"
    assert (cs["Init"], cs["ReadOnly"], cs["TTY"], cs["OpenStdin"]) == (True, True, False, True)
    assert cs["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert cs["DNSConfig"] == {"Nameservers": ["10.0.0.2"], "Search": ["corp.example"]}
    assert cs["Hosts"] == ["10.0.0.5 db", "::1 v6"]  # hosts(5): the address first
    assert cs["Mounts"] == [{"Type": "tmpfs", "Target": "/run"},
                            {"Type": "tmpfs", "Target": "/cache", "TmpfsOptions": {"SizeBytes": 64 * 1024**2,
                                                                                 "Mode": 0o1777}}]
    assert body["TaskTemplate"]["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "1m", "compress": "true"}}
    assert body["TaskTemplate"]["Resources"]["Reservations"] == {"MemoryBytes": 32 * 1024**2}
    assert swarm_fields.not_on_swarm(c.spec) == []


def test_what_no_swarm_service_has_is_named_not_dropped() -> None:
    spec = {"image": "busybox", "privileged": True, "devices": [{"source": "/dev/fuse", "target": "/dev/fuse"}],
            "security_opt": ["no-new-privileges"], "resources": {"shm_size": "1g"}, "tmpfs": ["/t:size=1m,noexec"],
            "read_only": False, "pid": "", "networks": {"back": {"ipv4_address": "10.1.0.9"}, "front": None},
            "volumes": [{"mount_path": "/d", "host_path": "/srv/d", "selinux": "z"}, {"mount_path": "/e", "name": "e"}]}
    assert swarm_fields.not_on_swarm(spec) == ["privileged", "devices", "security_opt", "resources.shm_size",
                                    "tmpfs option(s) noexec of /t (a size and an octal mode only)",
                                    "networks.back.ipv4_address", "selinux of the volume at /d"]
    # a size or mode Swarm cannot read is named too, never a crash of the plan
    assert swarm_fields.not_on_swarm({"tmpfs": ["/a:size=lots,mode=999", "/b:mode=0700,size=1m"]}) == [
        "tmpfs option(s) size=lots,mode=999 of /a (a size and an octal mode only)"]
    swarm = ServerState("cluster", True, kind="swarm")
    docker = ServerState("local", True)
    both = Desired("acme", (_spec(privileged=True), ContainerSpec("acme", "local", "w", 1, "w", "box@1.0",
                                                                   {"image": "b", "privileged": True}, "h")), ())
    observed = Observed("acme", {"cluster": swarm, "local": docker})
    assert swarm_fields.fields_unsupported(both, observed) == [("cluster", "web", ["privileged"])]


def test_a_service_an_earlier_syncer_made_of_the_same_spec_is_rolled_to_what_this_one_makes() -> None:
    """The spec label matches, the task template label does not (an earlier syncer left
    `read_only` out of the service): an update, not a noop that leaves the root writable."""
    from dataclasses import replace

    c = _spec(read_only=True)
    now = S.task_hash(c)
    assert S.service_spec(c, {})["Labels"][S.TASK_HASH] == now  # what apply labels the service with
    assert [a.action for a in _plan([c], [_service(c, **{S.TASK_HASH: now})]).actions] == ["noop"]
    assert [a.action for a in _plan([c], [_service(c)]).actions] == ["noop"]  # made before the label existed
    [a] = _plan([c], [_service(c, **{S.TASK_HASH: "sha256:before"})]).actions
    assert (a.action, a.cause) == ("update", "an earlier syncer carried less of this spec to Swarm: Swarm rolls it")
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("task template", "sha256:before", now)]
    # a service pinned to a digest is compared with that pin in its task template
    pin = "busybox:latest@sha256:" + "a" * 64
    pinned = replace(_service(c, **{S.TASK_HASH: S.task_hash(c, pin)}), image=pin)
    assert [a.action for a in _plan([c], [pinned]).actions] == ["noop"]


def test_a_global_service_runs_a_task_on_each_node_and_one_container_elsewhere() -> None:
    """Compose's `deploy.mode: global` (an agent on every node): Swarm's `Mode: Global`, with no
    replicas in its spec; a container server runs one container, as `docker compose up` does."""
    from dataclasses import replace

    from syncer.stages.shortforms import SpecError

    tpl = _tpl({"image": "busybox", "mode": "global"})
    swarm = Server("cluster", "unix:///x.sock", kind="swarm")
    [c] = render_definition("acme", _def(None), tpl, swarm, {}, KEY)
    assert c.spec["mode"] == "global" and "replicas" not in c.spec
    assert S.service_spec(c, {})["Mode"] == {"Global": {}} and S.service_mode(c) == "global"
    assert [x.name for x in render_definition("acme", _def(None), tpl, Server("cluster"), {}, KEY)] == ["web"]
    with pytest.raises(SpecError, match="mode: global runs one task on each node: replicas cannot go with it"):
        render_definition("acme", _def(3), tpl, swarm, {}, KEY)
    # a job with it: Compose's `global-job`, a run to completion on each node
    [job] = render_definition("acme", _def(None), replace(tpl, kind="job"), swarm, {}, KEY)
    body = S.service_spec(job, {})
    assert body["Mode"] == {"GlobalJob": {}} and "UpdateConfig" not in body and S.service_mode(job) == "global-job"
    assert [x.name for x in render_definition("acme", _def(None), replace(tpl, kind="job"), Server("cluster"), {},
                                              KEY)] == ["web"]


def test_a_job_run_completes_when_each_task_it_asks_for_exited_0() -> None:
    """A replicated job: its TotalCompletions tasks exited 0; a global one: every task Swarm
    made for it (one on each node, made together), and at least one."""
    from syncer.stages.swarm_tasks import job_progress

    def t(state: str) -> dict[str, Any]:
        return {"Status": {"State": state, "Err": "task: non-zero exit (2)" if state == "failed" else ""}}

    two = {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}
    assert job_progress(two, [t("complete"), t("running")]) == (False, [])
    assert job_progress(two, [t("complete"), t("complete")]) == (True, [])
    assert job_progress({"GlobalJob": {}}, []) == (False, [])
    assert job_progress({"GlobalJob": {}}, [t("complete"), t("starting")]) == (False, [])
    assert job_progress({"GlobalJob": {}}, [t("complete"), t("complete")]) == (True, [])
    complete, failed = job_progress({"GlobalJob": {}}, [t("complete"), t("failed")])
    assert not complete and [f["Status"]["State"] for f in failed] == ["failed"]
    # under on-failure, Swarm retries a failed task in its slot: not a failed run until its attempts are spent
    retried = {"Condition": "on-failure", "MaxAttempts": 2}
    assert job_progress(two, [dict(t("failed"), Slot=1), t("running")], retried) == (False, [])
    spent = [dict(t("failed"), Slot=1), dict(t("failed"), Slot=1), dict(t("failed"), Slot=1), t("complete")]
    assert len(job_progress(two, spent, retried)[1]) == 3 and job_progress(two, spent, {"Condition": "none"})[1]
    assert job_progress(two, spent, {"Condition": "on-failure", "MaxAttempts": 0})[1] == []  # (retried forever)
    assert job_progress(two, [dict(t("failed"), Slot=1), dict(t("complete"), Slot=1), t("complete")], retried) == (
        True, [])
    on = [dict(t("complete"), NodeID="a", UpdatedAt="1"), dict(t("failed"), NodeID="b", UpdatedAt="2")]
    assert job_progress({"GlobalJob": {}}, on)[0] is False
    assert job_progress({"GlobalJob": {}}, [*on, dict(t("complete"), NodeID="b", UpdatedAt="3")])[0] is True


def test_a_job_run_is_judged_by_each_node_or_by_its_completions() -> None:
    """A global job whose task failed on one node failed, whatever the other nodes did (and
    one that failed there and was retried to exit 0 completed); a replicated job completed
    when its TotalCompletions tasks exited 0."""
    def t(ident: str, node: str, state: str, at: str) -> LiveTask:
        err = "task: non-zero exit (4)" if state == "failed" else ""
        return LiveTask(ident, "sweep", "svc7", 0, node, state, "complete", error=err, updated=at)

    a_ok, b_bad = t("t1", "a", "complete", "2026-12-02T10:00:01Z"), t("t2", "b", "failed", "2026-12-02T10:00:02Z")
    assert job_state([a_ok, b_bad], None) == ("exited", "Exited (4) task: non-zero exit (4)")
    b_retried = t("t3", "b", "complete", "2026-12-02T10:00:09Z")
    assert job_state([a_ok, b_bad, b_retried], None) == ("exited", "Exited (0) job completed")
    assert job_state([a_ok, b_bad], 2)[1].startswith("Exited (4)")
    assert job_state([a_ok, b_retried], 2) == ("exited", "Exited (0) job completed")
    assert job_state([a_ok], 2) == ("running", "job running")  # (the second is yet to be made)
    assert job_state([], None) == ("created", "no task yet")
    assert job_completions({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 3}}) == 3
    assert job_completions({"GlobalJob": {}}) is None
    assert job_run({"JobIteration": {"Index": 2}}) == 2 and job_run({"JobIteration": {}}) == 0 == job_run(None)


def test_a_global_job_is_observed_as_a_job_in_its_mode() -> None:
    from syncer.adapters.swarm import Swarm

    labels = {L.PROJECT: "acme", L.DEFINITION: "sweep", L.KIND: "job"}
    row = {"ID": "svc7", "JobStatus": {"JobIteration": {"Index": 1}},
           "Spec": {"Name": "sweep", "Labels": labels, "Mode": {"GlobalJob": {}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}}}

    class Reads:
        def services(self) -> list[dict[str, Any]]:
            return [row]

        def tasks(self, filters: Any) -> list[dict[str, Any]]:
            # its first run failed; `instances start` ran it again (JobIteration 1), and that completed
            return [{"ID": "t0", "ServiceID": "svc7", "NodeID": "n1", "DesiredState": "complete",
                     "Status": {"State": "failed", "Err": "task: non-zero exit (1)"}},
                    {"ID": "t1", "ServiceID": "svc7", "NodeID": "n1", "DesiredState": "complete",
                     "JobIteration": {"Index": 1}, "Status": {"State": "complete"}}]

        def networks(self) -> list[dict[str, Any]]:
            return []

    [live], tasks, _, _ = Swarm(_Engine(Reads(), None)).observe("acme")  # type: ignore[arg-type]
    assert (live.mode, live.state, live.status) == ("global-job", "exited", "Exited (0) job completed")
    assert [t.id for t in tasks] == ["t1"]  # the last run's


def test_a_service_turned_global_or_back_is_made_again_not_updated() -> None:
    """Swarm refuses a mode change on update ("service mode change is not allowed")."""
    from dataclasses import replace

    replicated, glob = _spec(), _spec(mode="global")
    [a] = _plan([glob], [replace(_service(replicated), mode="replicated")]).actions
    assert (a.action, a.container_id) == ("recreate", "svc1")
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("mode", "replicated", "global")]
    [b] = _plan([replicated], [replace(_service(glob), mode="global", replicas=None)]).actions
    assert (b.action, b.reasons[0].field, b.reasons[0].before, b.reasons[0].after) == (
        "recreate", "mode", "global", "replicated")
    # in sync: no replica count to drift from
    [c] = _plan([glob], [replace(_service(glob), mode="global", replicas=None, status="1/1 task(s) running")]).actions
    assert (c.action, c.cause) == ("noop", "in sync (1/1 task(s) running)")


def test_a_global_service_is_observed_with_as_many_tasks_as_swarm_wants_running() -> None:
    from syncer.adapters.swarm import Swarm

    labels = {L.PROJECT: "acme", L.DEFINITION: "agent"}
    row = {"ID": "svc9", "Spec": {"Name": "agent", "Labels": labels, "Mode": {"Global": {}},
                                  "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}}}

    def task(ident: str, node: str, state: str, desired: str = "running") -> dict[str, Any]:
        return {"ID": ident, "ServiceID": "svc9", "NodeID": node, "DesiredState": desired, "Status": {"State": state}}

    class Reads:
        def services(self) -> list[dict[str, Any]]:
            return [row]

        def tasks(self, filters: Any) -> list[dict[str, Any]]:
            return [task("t1", "n1", "running"), task("t2", "n2", "starting"), task("t0", "n1", "shutdown", "shutdown")]

        def networks(self) -> list[dict[str, Any]]:
            return []

    [live], tasks, _, _ = Swarm(_Engine(Reads(), None)).observe("acme")  # type: ignore[arg-type]
    assert (live.mode, live.replicas, live.state, live.health, live.status) == (
        "global", None, "degraded", None, "1/2 task(s) running: 1 starting")
    assert len(tasks) == 3


def test_published_ports_take_their_mode_and_a_change_of_them_is_a_roll() -> None:
    """Swarm rolls every task when the EndpointSpec changes (a task's endpoint is part of what
    it runs), so the apply waits for that roll as for a new TaskTemplate; `mode: host` publishes
    on the node a task runs on, as Compose's long form says."""
    c = _spec(ports=[{"container_port": 80, "host_port": 8080}, {"container_port": 53, "host_port": 53,
                                                                 "protocol": "udp", "mode": "host"}])
    assert c.spec["ports"][0] == {"container_port": 80, "protocol": "tcp", "host_port": 8080}  # (ingress: left out)
    ep = S.service_spec(c, {})["EndpointSpec"]
    assert [p["PublishMode"] for p in ep["Ports"]] == ["ingress", "host"]
    kept = {"Mode": "vip", "Ports": [dict(p, Protocol=None) if p["Protocol"] == "tcp" else p for p in ep["Ports"]]}
    assert S.endpoint_key(kept) == S.endpoint_key(ep)  # as the manager keeps it: defaults may be left out
    assert S.endpoint_key({"Mode": "vip"}) == S.endpoint_key({"Mode": "vip", "Ports": []})
    moved = S.service_spec(_spec(ports=[{"container_port": 80, "host_port": 8081}]), {})["EndpointSpec"]
    assert S.endpoint_key(moved) != S.endpoint_key(S.service_spec(_spec(ports=["8080:80"]), {})["EndpointSpec"])
    host = S.service_spec(_spec(ports=[{"container_port": 80, "host_port": 8080, "mode": "host"}]), {})
    assert S.endpoint_key(host["EndpointSpec"]) != S.endpoint_key(S.service_spec(_spec(ports=["8080:80"]), {})[
        "EndpointSpec"])
    assert host["Labels"][S.TASK_HASH] == S.service_spec(_spec(ports=["8080:80"]), {})["Labels"][S.TASK_HASH]


def test_cpu_reservations_and_the_dnsrr_endpoint_mode_reach_the_service() -> None:
    """Compose's deploy.resources.reservations.cpus (what Swarm's scheduler reserves) and
    deploy.endpoint_mode: dnsrr; Swarm refuses a routing-mesh port beside dnsrr, so the plan does."""
    body = S.service_spec(_spec(resources={"cpus_reservation": "0.25", "memory_reservation": "32m", "cpus": 1},
                                endpoint_mode="dnsrr", ports=[{"container_port": 80, "host_port": 8080, "mode": "host"}]),
                          {})
    assert body["TaskTemplate"]["Resources"] == {"Limits": {"NanoCPUs": 10**9},
                                                 "Reservations": {"MemoryBytes": 32 * 1024**2, "NanoCPUs": 25 * 10**7}}
    assert body["EndpointSpec"]["Mode"] == "dnsrr"
    assert S.service_spec(_spec(), {})["EndpointSpec"]["Mode"] == "vip"
    assert S.service_spec(_spec(), {})["TaskTemplate"]["Resources"] == {"Limits": {}}
    assert swarm_fields.not_on_swarm(_spec(endpoint_mode="dnsrr", ports=["8080:80", "9090"]).spec) == [
        "port 8080 through the routing mesh with endpoint_mode: dnsrr (publish it with mode: host)"]
    assert swarm_fields.not_on_swarm(_spec(endpoint_mode="dnsrr", ports=[{"container_port": 80, "host_port": 8080,
                                                               "mode": "host"}]).spec) == []


def test_the_pace_of_restarts_reaches_swarms_restart_policy() -> None:
    """Compose's deploy.restart_policy delay, window and max_attempts (any condition): the
    condition stays `restart`'s; a task restarted too fast would crash-loop a node."""
    def policy(**extra: Any) -> Any:
        return S.service_spec(_spec(**extra), {})["TaskTemplate"]["RestartPolicy"]

    assert policy(restart="on-failure:3", restart_policy={"delay": "10s", "window": "2m"}) == {
        "Condition": "on-failure", "MaxAttempts": 3, "Delay": 10 * 10**9, "Window": 120 * 10**9}
    assert policy(restart="always", restart_policy={"max_attempts": 5, "delay": 1.5}) == {
        "Condition": "any", "MaxAttempts": 5, "Delay": 15 * 10**8}
    assert policy(restart="on-failure:3", restart_policy={"max_attempts": 5})["MaxAttempts"] == 5
    assert policy() == {"Condition": "any"} and policy(restart="no") == {"Condition": "none"}


def test_placement_spreads_over_a_label_and_caps_the_replicas_on_one_node() -> None:
    place = {"constraints": ["node.role == worker"], "preferences": [{"spread": "node.labels.zone"}],
             "max_replicas_per_node": 1}
    assert S.service_spec(_spec(placement=place), {})["TaskTemplate"]["Placement"] == {
        "Constraints": ["node.role == worker"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
        "MaxReplicas": 1}
    # without them, the template is what earlier syncers made (their services roll for nothing)
    assert S.service_spec(_spec(placement={"constraints": ["a==b"]}), {})["TaskTemplate"]["Placement"] == {
        "Constraints": ["a==b"]}


def test_a_rollback_takes_its_own_pace_where_the_spec_gives_one_else_the_updates() -> None:
    body = S.service_spec(_spec(update={"parallelism": 2, "monitor": "1s"},
                                rollback={"parallelism": 0, "order": "stop-first"}), {})
    assert body["UpdateConfig"] == {"Parallelism": 2, "Delay": 0, "Monitor": 10**9, "Order": "start-first",
                                    "FailureAction": "rollback", "MaxFailureRatio": 0}
    assert body["RollbackConfig"] == {"Parallelism": 0, "Delay": 0, "Monitor": 10**9, "Order": "stop-first",
                                      "FailureAction": "pause", "MaxFailureRatio": 0}
    plain = S.service_spec(_spec(), {})
    assert plain["RollbackConfig"] == {**plain["UpdateConfig"], "FailureAction": "pause"}
    assert plain["UpdateConfig"]["Monitor"] == 5 * 10**9 and plain["UpdateConfig"]["Parallelism"] == 1


def test_a_task_that_holds_its_node_rolls_stop_first_and_port_order_is_swarms() -> None:
    """A host-mode port, or a set number of tasks per node: the new task cannot start beside
    the old one, so the roll is stop-first (start-first would leave it pending to the timeout)
    unless the spec says otherwise. Swarm compares published ports in their order."""
    host = [{"container_port": 80, "host_port": 8080, "mode": "host"}]
    assert S.service_spec(_spec(ports=host), {})["UpdateConfig"]["Order"] == "stop-first"
    assert S.service_spec(_spec(ports=host), {})["RollbackConfig"]["Order"] == "stop-first"
    assert S.service_spec(_spec(placement={"max_replicas_per_node": 1}), {})["UpdateConfig"]["Order"] == "stop-first"
    assert S.service_spec(_spec(ports=host, update={"order": "start-first"}), {})["UpdateConfig"]["Order"] == \
        "start-first"
    assert S.service_spec(_spec(ports=["8080:80"]), {})["UpdateConfig"]["Order"] == "start-first"
    two = S.service_spec(_spec(ports=["8080:80", "9090:90"]), {})["EndpointSpec"]
    swapped = S.service_spec(_spec(ports=["9090:90", "8080:80"]), {})["EndpointSpec"]
    assert S.endpoint_key(two) != S.endpoint_key(swapped)


def test_the_task_hash_of_a_spec_is_what_it_was() -> None:
    """Services made by an earlier syncer are compared by this hash (plan: `task template`): a
    change of what syncer makes of an unchanged spec rolls every service of every user. Change
    the value only on purpose, and say so. (The same value as syncer at 1a11e4d computed.)"""
    c = _spec(env={"A": "1"}, ports=["8080:80"], healthcheck={"test": ["CMD", "true"], "interval": "2s"},
              placement={"constraints": ["node.role==worker"]}, resources={"memory": "64m"}, restart="on-failure:2",
              volumes=[{"name": "data", "mount_path": "/data"}], labels={"a": "b"})
    assert S.task_hash(c) == "sha256:6916777cce1459723c53f6c2b167e0d8b33db34c453031a34df8ef42c8b9bbf8"


def test_service_labels_merge_key_by_key_whatever_form_each_side_uses() -> None:
    tpl = _tpl({"image": "busybox", "service_labels": ["a=1", "b=1"]})
    d = Definition("web", "box", None, "cluster", "development", None, {}, (), {"service_labels": {"b": 2, "c": 3}},
                   Located("d.yaml"))
    [c] = render_definition("acme", d, tpl, Server("cluster", "unix:///x.sock", kind="swarm"), {}, KEY)
    assert c.spec["service_labels"] == {"a": "1", "b": "2", "c": "3"}


def test_a_placement_constraint_is_read_as_swarms_scheduler_reads_it() -> None:
    """`key == value` or `key != value` (Swarm's operators, `==` tried first), an attribute
    name, a value without signs that read as operators; anything else Swarm's manager refuses
    on create ("constraint expected one operator from ==, !="), which a plan says first."""
    from syncer.stages.swarm_fields import constraint_problem

    for ok in ("node.role == manager", "node.role==worker", " node.labels.zone != eu-1 ", "node.ip == 10.0.0.0/8",
               "engine.labels.gpu == (a|b)*", "node.platform.os == linux"):
        assert constraint_problem(ok) is None, ok
    assert constraint_problem("node.role = worker") == (
        "'node.role = worker': a constraint is ATTRIBUTE == VALUE or ATTRIBUTE != VALUE (node.role == manager)")
    assert constraint_problem("node.role ==") == "'node.role ==': no value after =="
    assert constraint_problem("== x") == "'== x': '' is no node attribute (node.role, node.labels.NAME, ...)"
    assert constraint_problem("node role == x") is not None and constraint_problem("9node == x") is not None
    assert constraint_problem("node.labels.a == b>c") == (
        "'node.labels.a == b>c': Swarm takes no value 'b>c' (letters, digits and :-_.*()?+[]\\^$|/ only)")
    assert constraint_problem("ab==c!=d") == (  # `==` first: `ab` == `c!=d`, a value Swarm refuses
        "'ab==c!=d': Swarm takes no value 'c!=d' (letters, digits and :-_.*()?+[]\\^$|/ only)")
    assert constraint_problem("node.labels.ab!=c") is None and constraint_problem("a!=c") is not None
    # a key Swarm reads but no node has (its tasks would wait for ever), a role no node has
    assert constraint_problem("node.rol == manager") == (
        "'node.rol == manager': 'node.rol' is no node attribute (node.id, node.hostname, node.ip, node.role,"
        " node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME)")
    assert constraint_problem("node.role == manger") == "'node.role == manger': a node's role is manager or worker"
    assert constraint_problem("Node.Role == Worker") is None  # (Swarm compares them case-blind)


def test_a_wait_that_runs_out_says_why_swarm_has_not_run_the_task() -> None:
    from syncer.adapters.docker import engine_message
    from syncer.stages.swarm_tasks import waiting_tasks

    def t(ident: str, state: str, desired: str = "running", **status: str) -> dict[str, Any]:
        return {"ID": ident * 12, "Slot": 1, "CreatedAt": f"2026-12-02T10:00:0{ident}Z", "DesiredState": desired,
                "Status": {"State": state, **status}}

    tasks = [t("1", "running"), t("2", "pending", Err="no suitable node (scheduling constraints not satisfied on"
                                                      " 1 node)"),
             t("3", "preparing", Message="preparing"), t("4", "shutdown", "shutdown"), t("5", "assigned")]
    assert [n.line for n in waiting_tasks(tasks)] == [
        "task 222222222222 (slot 1) is pending: no suitable node (scheduling constraints not satisfied on 1 node)",
        "task 333333333333 (slot 1) is preparing: preparing", "task 555555555555 (slot 1) is assigned: no reason given"]
    assert [n.line for n in waiting_tasks(tasks, since="2026-12-02T10:00:04Z")] == [
        "task 555555555555 (slot 1) is assigned: no reason given"]
    # a task Swarm cannot place carries the scheduler's reason as its error: still pending, not failed
    from syncer.stages.swarm_tasks import failed_tasks

    notes = failed_tasks([tasks[1], t("6", "rejected", Err="Range of CPUs is from 0.01 to 2.00")])
    assert [(n.ended, n.reason) for n in notes] == [
        (False, "pending: no suitable node (scheduling constraints not satisfied on 1 node)"),
        (True, "rejected: Range of CPUs is from 0.01 to 2.00")]
    assert [n.line for n in notes] == [
        "task 222222222222 (slot 1) is pending: no suitable node (scheduling constraints not satisfied on 1 node)",
        "task 666666666666 (slot 1) failed, now rejected: Range of CPUs is from 0.01 to 2.00"]
    # a global service's (or job's) task has no slot: its node says where (was `slot ?`)
    node = {**t("7", "failed", Err="task: non-zero exit (1)"), "Slot": None, "NodeID": "n0deid0000000xyz"}
    assert failed_tasks([node])[0].line == "task 777777777777 (node n0deid000000) failed, now failed: task: non-zero" \
                                           " exit (1)"
    # Swarm's own errors lose the gRPC status they came wrapped in
    exc = Exception("rpc error: code = Unknown desc = constraint expected one operator from ==, !=")
    assert engine_message(exc) == "constraint expected one operator from ==, !="


def test_a_swarm_server_answering_as_no_manager_stays_reachable_with_the_error() -> None:
    """`syncer servers` / GET /servers: its engine answered (reachable, its version); its nodes
    could not be listed (a worker, or a node out of its swarm): that error, under `swarm`."""
    from syncer.adapters.docker import EngineError
    from types import SimpleNamespace

    from syncer.engine.queries import server_info, swarm_nodes

    class Reads:
        def nodes(self) -> list[dict[str, Any]]:
            raise EngineError("list nodes: This node is not a swarm manager.")

    class Eng(_Engine):
        def version(self) -> dict[str, Any]:
            return {"Version": "27.0.1", "ApiVersion": "1.46"}

        def close(self) -> None:
            pass

    project = SimpleNamespace(config=SimpleNamespace(name="acme"))  # (all server_info reads of it)
    info = server_info(project, Server("cluster", kind="swarm"),  # type: ignore[arg-type]
                       engines=lambda s: Eng(Reads(), None))  # type: ignore[arg-type,return-value]
    assert (info["reachable"], info["engine_version"]) == (True, "27.0.1")
    assert info["swarm"] == {"error": "list nodes: This node is not a swarm manager."}
    node = {"ID": "n1", "Description": {"Hostname": "a"}, "Spec": {"Role": "manager", "Availability": "active"},
            "Status": {"State": "ready"}}
    down = {"ID": "n2xxxxxxxxxxxxxx", "Spec": {"Role": "worker", "Availability": "active"}, "Status": {"State": "down"}}
    assert swarm_nodes([node, down]) == {"nodes": 2, "ready": 1, "managers": 1, "not_ready": ["n2xxxxxxxxxx: down, active"]}


def test_a_swarm_server_that_does_not_answer_keeps_its_kind_and_its_services_are_services() -> None:
    """A `kind: swarm` server unreachable (or no manager): its plan line counted
    `container(s) not planned`, and the plan's Swarm checks skipped it."""
    from syncer.core.errors import DockerUnavailable
    from syncer.core.model import Server
    from syncer.engine.observe import observe_server

    def refuse(server: Server) -> Any:
        raise DockerUnavailable("server 'cluster': This node is not a swarm manager")

    state = observe_server("p", Server("cluster", kind="swarm"), [], engines=refuse)
    assert (state.reachable, state.kind) == (False, "swarm")


def test_start_interval_reaches_the_service_and_an_engine_that_would_drop_it_is_named() -> None:
    """Swarm's HealthConfig carries StartInterval from API 1.44 (Docker 25); an older engine
    ignores it, so the plan names each such definition (repofiles makes that a located error)."""
    c = _spec(healthcheck={"test": ["CMD", "true"], "start_period": "9s", "start_interval": "1s"})
    assert S.service_spec(c, {})["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {
        "Test": ["CMD", "true"], "StartPeriod": 9 * 10**9, "StartInterval": 10**9}
    want = Desired("acme", (c,), ("web",))
    for api, refused in (("1.41", True), ("1.43", True), ("1.44", False), ("1.47", False), ("", False)):
        got = swarm_fields.start_interval_unsupported(want, Observed("acme", {"cluster": _state([], api=api)}))
        assert got == ([("cluster", "web", api)] if refused else []), api
    plain = Desired("acme", (_spec(healthcheck={"test": ["CMD", "true"]}),), ("web",))
    assert swarm_fields.start_interval_unsupported(plain, Observed("acme", {"cluster": _state([], api="1.41")})) == []


def test_more_groups_and_resolver_options_reach_the_service_and_cpu_shares_are_refused() -> None:
    """group_add is ContainerSpec.Groups and dns_opt DNSConfig.Options, as `docker service
    create --group --dns-option` set them; a service has no CPU shares (Resources has none)."""
    c = _spec(group_add=["nogroup", "4242"], dns_opt=["ndots:2"], dns=["10.0.0.2"])
    cs = S.service_spec(c, {})["TaskTemplate"]["ContainerSpec"]
    assert cs["Groups"] == ["nogroup", "4242"]
    assert cs["DNSConfig"] == {"Nameservers": ["10.0.0.2"], "Options": ["ndots:2"]}
    assert swarm_fields.not_on_swarm(c.spec) == []
    assert swarm_fields.not_on_swarm({"resources": {"cpu_shares": 512}}) == ["resources.cpu_shares"]


def test_a_port_bound_to_one_address_is_refused_not_published_on_every_one() -> None:
    """Swarm publishes a port on every address of each node: `127.0.0.1:8081:80` (kept local on
    a container server) would be open to the world there, so the plan refuses it."""
    local = _spec(ports=["127.0.0.1:18081:80", "[::1]:18082:80/udp", "0.0.0.0:18083:80", "18084:80"])
    assert swarm_fields.not_on_swarm(local.spec) == [
        "port 18081 bound to 127.0.0.1 (a service publishes on every address)",
        "port 18082 bound to ::1 (a service publishes on every address)"]


def test_drift_is_what_differs_once_the_managers_defaults_ids_pins_and_secret_values_are_set_aside() -> None:
    """The live spec as a manager keeps it (Isolation, Runtime, ForceUpdate filled in; zero
    values left out; networks by ID; the image pinned; a secret's value where the template has
    its reference) is no drift; an env entry, an image or a constraint changed by hand is."""
    import json as _json
    from dataclasses import replace

    from syncer.core.model import LiveNetwork
    from syncer.stages.swarm_drift import drifted, live_template

    ref = "<<secret:DB:" + "a" * 32 + ">>"
    c = _spec(env={"DB": f"pw={ref};", "A": "1"}, volumes=[{"name": "data", "mount_path": "/data"}],
              placement={"constraints": ["node.role==manager"]}, ports=["8080:80"])
    sent = S.service_spec(c, {})
    task = _json.loads(_json.dumps(sent["TaskTemplate"]))
    cs = task["ContainerSpec"]
    cs.update(Isolation="default", Image="busybox:latest@sha256:" + "b" * 64,
              Env=["A=1", "DB=pw=hunter2;"])  # the manager's order, a secret's value
    for m in cs.get("Mounts", []):
        m.pop("ReadOnly", None)  # (false: Go leaves it out)
    task.update(ForceUpdate=3, Runtime="container")
    task["Networks"] = [{**n, "Target": "netid1"} for n in task["Networks"]]
    nets = (LiveNetwork("netid1", "acme", {}),)
    live = LiveContainer("s1", "web", "cluster", "running", None, {}, image=cs["Image"],
                         template=live_template({"TaskTemplate": task, "EndpointSpec": sent["EndpointSpec"]}))
    assert drifted(c, live, nets) == []

    def by_hand(**container: Any) -> LiveContainer:
        changed = {**task, "ContainerSpec": {**cs, **container}}
        return replace(live, image=changed["ContainerSpec"]["Image"],
                       template=live_template({"TaskTemplate": changed, "EndpointSpec": sent["EndpointSpec"]}))

    assert drifted(c, by_hand(Env=[*cs["Env"], "DRIFT=1"]), nets) == ["TaskTemplate.ContainerSpec.Env"]
    assert drifted(c, by_hand(Env=["A=1", "DB=other;"]), nets) == ["TaskTemplate.ContainerSpec.Env"]  # around the secret
    assert drifted(c, by_hand(Image="other:1"), nets) == ["TaskTemplate.ContainerSpec.Image"]
    assert drifted(c, replace(live, template=""), nets) == []  # (nothing of the live spec read: a job)


def test_the_by_server_line_counts_job_runs_and_network_changes_as_the_closing_line_does() -> None:
    from syncer.core.model import Action, Plan

    acts = (Action("create", "cluster", "web", "web", 1, ""), Action("run", "cluster", "mig", "mig", 1, ""),
            Action("network create", "cluster", "", "acme", 0, ""), Action("network remove", "local", "", "acme_old", 0, ""),
            Action("noop", "local", "db", "db", 1, ""))
    text = closing_line(Plan("acme", None, False, "f", "t", acts, {}, frozenset({"cluster"})))
    assert text.endswith("\nBy server: cluster: 1 to create, 1 job(s) to run, 1 network(s) to create;"
                         " local: 1 network(s) to remove, 1 in sync."), text
