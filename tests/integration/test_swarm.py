"""Swarm servers (`kind: swarm`) against a real single-node Swarm: a second dockerd,
`docker swarm init`-ed, started once for this module (tests/swarmd.py) and stopped at the end.

Each test has its own project; what it made on the swarm goes at the end, even on failure.
Update monitor windows are short (1s) so that the whole module stays within a minute or two.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.adapters.store import Store
from syncer.core.model import ContainerSpec, Desired, Server
from syncer.core.labels import secret_ref, spec_hash
from syncer.engine.apply import Applier
from syncer.engine.options import ApplyOptions
from syncer.engine.observe import observe
from syncer.stages.plan import plan
from tests.helpers import (
    HEALTHY_IMAGE, IMAGE, UNHEALTHY_IMAGE, job_template, run_cli, started, unique, wait_until, write_files,
)
from tests.registry import Registry
from tests.swarmd import SwarmDockerd

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOOP = "[sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]"


@pytest.fixture(scope="module")
def swarm(docker_api: Any) -> Iterator[SwarmDockerd]:
    """One Swarm manager for every test of this module."""
    yield from started(SwarmDockerd(), "a Swarm manager")


@pytest.fixture
def sproject(swarm: SwarmDockerd, project: str) -> Iterator[str]:
    """A project name of this test's own, cleaned from the swarm (and the local engine) after."""
    yield project
    swarm.remove_project(project)


def _api(swarm: SwarmDockerd) -> Any:
    import docker

    return docker.APIClient(base_url=swarm.url, timeout=60)


def _repo(root: Path, project: str, swarm: SwarmDockerd, defs: dict[str, str], *, extra: str = "",
          local: bool = True, templates: dict[str, str] | None = None) -> Path:
    """The swarm (the default server) and, with `local`, the local engine beside it; the `box`
    and `job` templates and `templates` (path -> text); `defs` (name -> text)."""
    files = {
        "syncer.yaml": textwrap.dedent(f"""
            project: {project}
            servers:
              cluster: {{docker: "{swarm.url}", kind: swarm}}
            """) + ("  local: {}\n" if local else "") + "defaults: {server: cluster}\n" + textwrap.dedent(extra),
        "templates/job.yaml": job_template(),
        "templates/box.yaml": f"""
            id: box
            version: "1.0"
            inputs:
              type: object
              properties:
                message: {{type: string, default: hello}}
                image: {{type: string, default: "{IMAGE}"}}
            spec:
              image: ${{inputs.image}}
              command: {LOOP}
              env: {{MESSAGE: "${{inputs.message}}"}}
              update: {{monitor: 1s, order: start-first}}
            """,
    }
    files.update(templates or {})
    files.update({f"definitions/{name}.yaml": text for name, text in defs.items()})
    return write_files(root, files)


def _apply(repo: Path, *args: str) -> Any:
    return run_cli("--repo", str(repo), "apply", "--auto-approve", *args)


def _service(api: Any, name: str) -> dict[str, Any] | None:
    found = [s for s in api.services(filters={"name": name}) if s["Spec"]["Name"] == name]
    return found[0] if found else None


def _running(api: Any, name: str) -> list[dict[str, Any]]:
    return [t for t in api.tasks(filters={"service": name, "desired-state": "running"})
            if t["Status"]["State"] == "running"]


def _last_deployment(repo: Path, definition: str) -> dict[str, Any]:
    store = Store(repo / ".syncer")
    try:
        return dict(store.deployment(store.deployments(definition=definition, limit=1)[0]["id"]))
    finally:
        store.close()


def _plan(repo: Path) -> dict[str, Any]:
    out = run_cli("--repo", str(repo), "plan", "--json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_services_are_created_scaled_updated_and_removed_beside_containers(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str, docker_api: Any) -> None:
    api = _api(swarm)
    repo = _repo(tmp_path, sproject, swarm, {
        "web": "name: web\ntemplate: box\nreplicas: 2\n",
        "side": "name: side\ntemplate: box\nserver: local\n",
    })
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None
    labels = svc["Spec"]["Labels"]
    assert labels["syncer.project"] == sproject and labels["syncer.definition"] == "web"
    assert labels["syncer.revision"] == "1" and labels["syncer.spec-hash"].startswith("sha256:")
    assert json.loads(labels["syncer.spec"])["replicas"] == 2
    assert svc["Spec"]["UpdateConfig"]["FailureAction"] == "rollback"
    assert svc["Spec"]["UpdateConfig"]["Order"] == "start-first"
    assert len(_running(api, "web")) == 2
    # the project network: an attachable overlay, the definition's name its alias
    net = api.inspect_network(sproject)
    assert net["Driver"] == "overlay" and net["Attachable"] and net["Labels"]["syncer.project"] == sproject
    assert svc["Spec"]["TaskTemplate"]["Networks"][0]["Aliases"] == ["web"]
    # ... and a plain container on the other server, in the same project
    assert [c["Names"] for c in docker_api.containers(filters={"label": f"syncer.project={sproject}"})] \
        == [["/side"]]
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}

    # scale: an update of the service that restarts none of the running tasks
    before = {t["ID"] for t in _running(api, "web")}
    (repo / "definitions/web.yaml").write_text("name: web\ntemplate: box\nreplicas: 3\n")
    actions = [a for a in _plan(repo)["actions"] if a["definition"] == "web"]
    assert actions[0]["action"] == "update"
    assert actions[0]["reasons"] == [{"field": "replicas", "before": 2, "after": 3}]
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    running = {t["ID"] for t in _running(api, "web")}
    assert len(running) == 3 and before <= running

    # a changed env: Swarm rolls every task, and the service's labels follow
    (repo / "definitions/web.yaml").write_text("name: web\ntemplate: box\nreplicas: 3\nparams: {message: bye}\n")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None
    assert "MESSAGE=bye" in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert svc["UpdateStatus"]["State"] == "completed"
    assert svc["Spec"]["Labels"]["syncer.revision"] == "3"
    assert len(_running(api, "web")) == 3 and not before & {t["ID"] for t in _running(api, "web")}

    # `instances list` shows the tasks (and the container on the other server)
    out = run_cli("--repo", str(repo), "instances", "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    tasks = sorted(r["name"] for r in rows if r["server"] == "cluster")
    assert tasks == ["web.1", "web.2", "web.3"] and all(r["state"] == "running" for r in rows)
    assert [r["name"] for r in rows if r["server"] == "local"] == ["side"]

    # rollback deploys the earlier revision's spec as an update of the service
    out = run_cli("--repo", str(repo), "rollback", "web", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None and "MESSAGE=hello" in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert svc["Spec"]["Labels"]["syncer.revision"] == "4" and svc["UpdateStatus"]["State"] == "completed"

    # removed from the repository: the service goes (prune), and with the last one the overlay
    (repo / "definitions/web.yaml").unlink()
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _service(api, "web") is None
    # (Swarm deletes an overlay once the last task left it: a moment after the apply)
    wait_until(lambda: not [n for n in api.networks(names=[sproject]) if n["Name"] == sproject], timeout=30,
               message="the project's overlay removed")


def test_a_failing_healthcheck_is_rolled_back_by_swarm(tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    conf = "overrides: {{files: [{{path: /etc/app.conf, content: {0}}}]}}\n"
    repo = _repo(tmp_path, sproject, swarm, {"app": "name: app\ntemplate: box\nreplicas: 2\n" + conf.format("v1")})
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    mine = {"label": [f"syncer.project={sproject}", "syncer.definition=app"]}
    [before] = [c["Spec"]["Name"] for c in api.configs(filters=mine)]
    (repo / "definitions/app.yaml").write_text(
        f"name: app\ntemplate: box\nreplicas: 2\nparams: {{image: \"{UNHEALTHY_IMAGE}\"}}\n" + conf.format("v2"))
    out = _apply(repo)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "app: FAILED, Swarm rolled it back (deploy_" in out.stdout, out.stdout  # (no "old container")
    svc = _service(api, "app")
    assert svc is not None
    assert svc["UpdateStatus"]["State"] == "rollback_completed"
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == IMAGE
    # the rolled-back spec's config only: the new one (for a secret, the value refused) was left
    # behind, and no later plan would name it (an apply with no change prunes nothing)
    assert [c["Spec"]["Name"] for c in api.configs(filters=mine)] == [before]
    wait_until(lambda: len(_running(api, "app")) == 2, timeout=30, message="the old tasks running")
    dep = _last_deployment(repo, "app")
    assert dep["status"] == "failed" and dep["rolled_back"] is True
    lines = [r["line"] for r in dep["logs"]]
    assert any("update rollback_completed" in line for line in lines), lines
    assert any(line.startswith("task ") and "failed" in line for line in lines), lines

    # a new service whose tasks never turn healthy: given up after a few failed tasks, removed.
    # (Three replicas fail at once: one replica would fail three times, each after Swarm's 5 s
    # restart delay.)
    (repo / "definitions/bad.yaml").write_text(
        f"name: bad\ntemplate: box\nreplicas: 3\nparams: {{image: \"{UNHEALTHY_IMAGE}\"}}\n"
        "overrides: {files: [{path: /etc/bad.conf, content: \"x\"}]}\n")
    out = _apply(repo)
    assert out.returncode == 1, out.stdout + out.stderr
    assert _service(api, "bad") is None, out.stdout
    # its config went with it: no plan names it again, and a secret's data would outlive its use
    assert api.configs(filters={"label": [f"syncer.project={sproject}", "syncer.definition=bad"]}) == []
    dep = _last_deployment(repo, "bad")
    assert dep["status"] == "failed" and "did not come up" in dep["error"]
    assert sum(1 for r in dep["logs"] if r["line"].startswith("task ")) >= 3, dep["logs"]


def _spec(project: str, files: list[dict[str, Any]]) -> ContainerSpec:
    # (the project network as render puts it in every spec: without it, the plan would remove the
    # overlay the service still joins, and the apply wait 30 s for it to be let go)
    spec = {"image": IMAGE, "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
            "replicas": 1, "update": {"monitor": "1s"}, "files": files, "networks": {project: {"aliases": ["conf"]}}}
    return ContainerSpec(project, "cluster", "conf", 1, "conf", "box@1.0", spec, spec_hash(spec))


class _Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.outcomes: list[tuple[bool, bool]] = []

    def begin(self, definition: str, server: str, revision: int, actions: list[str]) -> str:
        return "d"

    def log(self, deployment: str, line: str) -> None:
        self.lines.append(line)

    def finish(self, deployment: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        self.outcomes.append((ok, rolled_back))


def _deploy(project: str, server: Server, c: ContainerSpec, secrets: dict[str, str]) -> _Recorder:
    from syncer.adapters.docker import Engine

    desired = Desired(project, (c,), ("conf",))
    observed = observe(project, {"cluster": server}, desired)
    p = plan(desired, observed, prune=True, created_at="now")
    rec = _Recorder()
    engine = Engine(server)
    try:
        Applier(p, desired, {"cluster": engine}, secrets, rec, ApplyOptions(health_timeout=60)).run()
    finally:
        engine.close()
    assert rec.outcomes == [(True, False)], rec.lines
    return rec


def _read(swarm: SwarmDockerd, path: str) -> str:
    ids = swarm.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=conf").split()
    return swarm.docker("exec", ids[0], "cat", path) if len(ids) == 1 else ""


def test_files_become_configs_and_secrets_named_by_content_and_rotate(swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    server = Server("cluster", swarm.url, kind="swarm")
    key = b"k" * 32

    def files(conf: str, token: str) -> list[dict[str, Any]]:
        return [{"path": "/etc/app.conf", "content": conf},
                {"path": "/run/secrets/token", "secret": secret_ref("TOKEN", token, key)}]

    _deploy(sproject, server, _spec(sproject, files("level=info\n", "s3cret-1")), {"TOKEN": "s3cret-1"})
    configs = [c["Spec"]["Name"] for c in api.configs(filters={"label": f"syncer.project={sproject}"})]
    secrets = [s["Spec"]["Name"] for s in api.secrets(filters={"label": f"syncer.project={sproject}"})]
    assert len(configs) == 1 and configs[0].startswith(f"{sproject}_conf_") and len(configs[0].split("_")[-1]) == 12
    assert len(secrets) == 1 and secrets[0].startswith(f"{sproject}_conf_")
    assert wait_until(lambda: _read(swarm, "/etc/app.conf") == "level=info\n", timeout=30)
    assert _read(swarm, "/run/secrets/token") == "s3cret-1"

    # a changed file: a new config, a rolling update, the old config removed once unused
    rec = _deploy(sproject, server, _spec(sproject, files("level=debug\n", "s3cret-1")), {"TOKEN": "s3cret-1"})
    assert any("update completed" in line for line in rec.lines), rec.lines
    now = [c["Spec"]["Name"] for c in api.configs(filters={"label": f"syncer.project={sproject}"})]
    assert len(now) == 1 and now != configs
    assert wait_until(lambda: _read(swarm, "/etc/app.conf") == "level=debug\n", timeout=30)

    # a rotated secret: a new Swarm secret (its name from the keyed hash, never the value)
    _deploy(sproject, server, _spec(sproject, files("level=debug\n", "s3cret-2")), {"TOKEN": "s3cret-2"})
    rotated = [s["Spec"]["Name"] for s in api.secrets(filters={"label": f"syncer.project={sproject}"})]
    assert len(rotated) == 1 and rotated != secrets
    assert wait_until(lambda: _read(swarm, "/run/secrets/token") == "s3cret-2", timeout=30)
    assert not any("s3cret" in line for line in rec.lines)


def test_watch_brings_back_a_service_removed_or_changed_behind_its_back(tmp_path: Path, swarm: SwarmDockerd,
                                                             sproject: str) -> None:
    import signal
    import subprocess
    import sys

    api = _api(swarm)
    repo = _repo(tmp_path / "repo", sproject, swarm, {"svc": "name: svc\ntemplate: box\nreplicas: 1\n"})
    log = open(tmp_path / "watch.log", "wb")
    # a long resync: only the Swarm event stream can bring the service back in time
    w = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "watch", "--resync", "1h",
                          "--debounce", "300ms"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "done: ok" in (tmp_path / "watch.log").read_text(), timeout=90, message="first apply")
        first = _service(api, "svc")
        assert first is not None and len(_running(api, "svc")) == 1
        # another project's service removed: not this watch's business (issue 14: service
        # events name only their service, and every project's used to trigger a sync)
        stranger = f"other-{sproject[2:]}"
        other = api.create_service({"ContainerSpec": {"Image": IMAGE, "Args": ["sleep", "600"]}}, name=stranger,
                                   labels={"syncer.project": f"{sproject}-other", "syncer.definition": stranger})
        api.remove_service(other["ID"])
        api.remove_service(first["ID"])
        back = wait_until(lambda: (s := _service(api, "svc")) and s["ID"] != first["ID"] and s, timeout=90,
                          message="the service back (watch log: " + str(tmp_path / "watch.log") + ")")
        assert back["Spec"]["Labels"]["syncer.project"] == sproject
        text = (tmp_path / "watch.log").read_text()
        assert "remove svc" in text and stranger not in text, text

        # changed by hand (`docker service update`, `scale`): rolled back from the event, not at
        # the next resync an hour away; Swarm's own update events (its roll, syncer's update) are not drift
        def env() -> list[str]:
            return list(_service(api, "svc")["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or [])

        # (a change made while syncer deploys the service is that deployment's to overwrite or
        # fail on: each change by hand waits for the watch's deployment before it to end)
        def deployed(count: int) -> None:
            wait_until(lambda: (tmp_path / "watch.log").read_text().count("done: ok") == count, timeout=90,
                       message=f"deployment {count} done ({tmp_path}/watch.log)")
            time.sleep(1)  # (a hand change within half a second of syncer's write reads as the write's)

        deployed(2)
        swarm.docker("service", "update", "--detach", "--env-add", "HAND=1", "svc")
        assert "HAND=1" in env()
        deployed(3)
        assert "HAND=1" not in env()
        swarm.docker("service", "scale", "--detach", "svc=3")
        wait_until(lambda: _service(api, "svc")["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, timeout=90,
                   message=f"the hand scale undone ({tmp_path}/watch.log)")
        wait_until(lambda: len(_running(api, "svc")) == 1, timeout=60, message="one task again")
        # `docker service rollback`: the spec before syncer's last write (3 replicas) comes back
        deployed(4)
        swarm.docker("service", "rollback", "--detach", "svc")
        deployed(5)
        wait_until(lambda: _service(api, "svc")["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, timeout=30,
                   message=f"the rollback undone ({tmp_path}/watch.log)")
        time.sleep(3)  # (the heals' own update events have come by now)
        text = (tmp_path / "watch.log").read_text()
        triggers = [ln for ln in text.splitlines() if "trigger:" in ln]
        assert [ln for ln in triggers if "changed outside syncer" in ln] == triggers[-3:], triggers
        assert "scaled to 3 outside syncer" in text, text
    finally:
        w.send_signal(signal.SIGTERM)
        try:
            w.wait(timeout=60)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def test_a_change_made_by_hand_while_syncer_rolls_a_service_fails_that_deployment_at_once(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`docker service scale` while syncer's update rolls (Swarm drops the roll's UpdateStatus
    when the spec is written again): the deployment waited for a `completed` that never came,
    until its timeout (120 s), and said it timed out."""
    import subprocess
    import sys

    api = _api(swarm)
    name = f"mid-{sproject[2:]}"
    slow = (f"id: slow\nversion: \"1.0\"\ninputs: {{type: object, properties: {{message: {{type: string}}}}}}\n"
            f"spec: {{image: {IMAGE}, command: {LOOP}, env: {{MESSAGE: \"${{inputs.message}}\"}},"
            " update: {monitor: 20s, order: start-first}}\n")
    defs = {name: f"name: {name}\ntemplate: slow\nparams: {{message: one}}\n"}
    repo = _repo(tmp_path / "r", sproject, swarm, defs, local=False, templates={"templates/slow.yaml": slow})
    assert _apply(repo).returncode == 0
    (repo / "definitions" / f"{name}.yaml").write_text(f"name: {name}\ntemplate: slow\nparams: {{message: two}}\n")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "apply", "--auto-approve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # until the apply has seen its roll under way
            lines.append(line)
            if "update updating" in line:
                break
        assert _service(api, name)["UpdateStatus"]["State"] == "updating", "".join(lines)  # type: ignore[index]
        swarm.docker("service", "scale", "--detach", f"{name}=2")
        out = "".join(lines) + proc.communicate(timeout=100)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out
    assert "the service was changed outside syncer while Swarm rolled it" in out, out
    assert time.monotonic() - start < 60, out  # (not the roll's timeout)


def test_instances_stop_holds_a_service_at_zero_and_start_and_restart_bring_it_back(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    name = f"held-{sproject[2:]}"
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: box\nreplicas: 2\n"})
    assert _apply(repo).returncode == 0
    # a task `instances list` shows, by id or name: the answer names the service to act on
    rows = json.loads(run_cli("--repo", str(repo), "instances", "list", "--json").stdout)
    for task in (rows[0]["id"], f"{name}.1"):
        out = run_cli("--repo", str(repo), "instances", "stop", task)
        assert out.returncode == 1 and out.stderr == (
            f"'{task}' is a task of Swarm service '{name}' on server 'cluster': there an instance is the service,"
            f" which Swarm runs its tasks for (name it: '{name}')\n"), out.stderr
    out = run_cli("--repo", str(repo), "instances", "stop", name)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 0 and not _running(api, name)
    # `instances list` still shows it: one row for the service, stopped at 0 of its 2 replicas
    out = run_cli("--repo", str(repo), "instances", "list", "--json")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["name"], row["id"], row["state"], row["held_stopped"]) == (name, f"inst_{svc['ID'][:12]}", "stopped",
                                                                          True)
    assert "0/2 replicas" in row["status"], row
    # the hold: a plan leaves it at 0, and so does an apply
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("noop", "held at 0 replicas by an operator (start it through syncer)")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 0 and not _running(api, name)

    out = run_cli("--repo", str(repo), "instances", "start", name)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 2 and len(_running(api, name)) == 2
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}  # the hold is gone, nothing to do

    before = {t["ID"] for t in _running(api, name)}
    out = run_cli("--repo", str(repo), "instances", "restart", name)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["Spec"]["TaskTemplate"]["ForceUpdate"] == 1
    assert svc["UpdateStatus"]["State"] == "completed"
    after = {t["ID"] for t in _running(api, name)}
    assert len(after) == 2 and not before & after  # every task replaced

    # scaled outside syncer (not held): the plan puts the definition's replicas back
    api.update_service(svc["ID"], svc["Version"]["Index"], task_template=svc["Spec"]["TaskTemplate"],
                       name=name, labels=svc["Spec"]["Labels"], mode={"Replicated": {"Replicas": 1}},
                       update_config=svc["Spec"]["UpdateConfig"], endpoint_spec=svc["Spec"]["EndpointSpec"])
    [a] = _plan(repo)["actions"]
    assert a["action"] == "update" and a["reasons"] == [{"field": "replicas", "before": 1, "after": 2}]


def test_declared_networks_are_overlays_the_services_join_and_external_ones_must_exist(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    name, ext = f"net-{sproject[2:]}", f"{sproject}-ext"
    extra = f"networks:\n  backend: {{}}\n  {ext}: {{external: true}}\n"
    repo = _repo(tmp_path, sproject, swarm,
                 {name: f"name: {name}\ntemplate: box\noverrides: {{networks: [backend, {ext}]}}\n"}, extra=extra)
    out = run_cli("--repo", str(repo), "plan")
    assert out.returncode != 0 and _service(api, name) is None
    assert f"syncer.yaml:8:19: network '{ext}' is external and does not exist on server 'cluster'" in out.stderr, \
        out.stdout + out.stderr
    api.create_network(ext, driver="overlay", attachable=True)
    try:
        out = _apply(repo)
        assert out.returncode == 0, out.stdout + out.stderr
        backend = api.inspect_network(f"{sproject}_backend")
        assert backend["Driver"] == "overlay" and backend["Attachable"]
        assert backend["Labels"] == {"syncer.project": sproject, "syncer.network": "backend"}
        svc = _service(api, name)
        assert svc is not None
        ids = {api.inspect_network(n)["Id"]: n for n in (sproject, f"{sproject}_backend", ext)}
        joined = {ids[n["Target"]]: n["Aliases"] for n in svc["Spec"]["TaskTemplate"]["Networks"]}
        assert joined == {sproject: [name], f"{sproject}_backend": [name], ext: [name]}
        # no longer used: the project's overlay goes, the external one stays
        (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: box\n")
        out = _apply(repo)
        assert out.returncode == 0, out.stdout + out.stderr
        # (Swarm deletes an overlay once the last task left it: a moment after the apply)
        wait_until(lambda: not [n for n in api.networks(names=[f"{sproject}_backend"])
                                if n["Name"] == f"{sproject}_backend"], timeout=30, message="backend removed")
        assert [n for n in api.networks(names=[ext]) if n["Name"] == ext]
    finally:
        swarm.remove_project(sproject)
        api.remove_network(ext)


def test_an_internal_network_is_an_internal_overlay_and_a_flag_flipped_later_a_planned_conflict(
        tmp_path: Path, swarm: SwarmDockerd) -> None:
    api, project = _api(swarm), unique("inet")
    name, back = f"in-{project[5:]}", f"{project}_back"
    repo = _repo(tmp_path, project, swarm, {name: f"name: {name}\ntemplate: box\noverrides: {{networks: [back]}}\n"},
                 extra="networks:\n  back: {internal: true}\n", local=False)
    try:
        out = _apply(repo)
        assert out.returncode == 0, out.stdout + out.stderr
        made = api.inspect_network(back)
        assert made["Driver"] == "overlay" and made["Attachable"] and made["Internal"] is True
        svc = _service(api, name)
        # on internal networks only, as a container: not on the project's overlay (which has a
        # route out), which no service then joins, so none is made
        assert svc is not None and {n["Target"] for n in svc["Spec"]["TaskTemplate"]["Networks"]} == {made["Id"]}
        assert not [n for n in api.networks(names=[project]) if n["Name"] == project]
        (repo / "syncer.yaml").write_text((repo / "syncer.yaml").read_text().replace("{internal: true}", "{}"))
        [conflict] = [a for a in _plan(repo)["actions"] if a["action"] == "conflict"]
        assert (conflict["server"], conflict["container"], conflict["definition"]) == ("cluster", back, "")
        assert conflict["reasons"] == [{"field": "internal", "before": True, "after": False}]
    finally:
        swarm.remove_project(project)


def test_a_job_runs_once_as_a_replicated_job_and_a_failure_carries_the_tasks_error(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    ok, bad = f"job-{sproject[2:]}", f"bad-{sproject[2:]}"
    repo = _repo(tmp_path, sproject, swarm, {ok: f"name: {ok}\ntemplate: job\nparams: {{script: 'echo done'}}\n"})
    if tuple(int(p) for p in api.version()["ApiVersion"].split(".")) < (1, 41):  # Docker < 20.10
        out = run_cli("--repo", str(repo), "plan")
        assert out.returncode != 0 and "has no jobs: Swarm runs jobs from Docker 20.10" in out.stderr
        return
    assert [a["action"] for a in _plan(repo)["actions"]] == ["run"]
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, ok)
    assert svc is not None and svc["Spec"]["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    tasks = api.tasks(filters={"service": svc["ID"]})
    assert [t["Status"]["State"] for t in tasks] == ["complete"]
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("noop", "job completed (exit 0)")
    assert _apply(repo).returncode == 0
    again = _service(api, ok)
    assert again is not None and again["ID"] == svc["ID"] and len(api.tasks(filters={"service": svc["ID"]})) == 1

    (repo / f"definitions/{bad}.yaml").write_text(f"name: {bad}\ntemplate: job\nparams: {{script: 'exit 3'}}\n")
    out = _apply(repo)
    assert out.returncode == 1, out.stdout + out.stderr
    dep = _last_deployment(repo, bad)
    assert dep["status"] == "failed" and "non-zero exit (3)" in dep["error"], dep
    [a] = [a for a in _plan(repo)["actions"] if a["definition"] == bad]
    assert a["action"] == "run" and "exit 3" in a["cause"]
    # a removed job leaves no ended task containers on the node (Swarm would: moby/moby#42789)
    assert api.containers(all=True, filters={"label": f"com.docker.swarm.service.id={svc['ID']}"})
    (repo / f"definitions/{ok}.yaml").unlink()
    assert _apply(repo).returncode == 1  # (bad still fails)
    assert _service(api, ok) is None
    assert api.containers(all=True, filters={"label": f"com.docker.swarm.service.id={svc['ID']}"}) == []


def test_a_job_swarm_retries_on_failure_succeeds_when_a_retry_does(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`restart: on-failure:N` on a job: Swarm runs a failed task again; the apply waits for
    that (it used to call the job failed at the first failed task, while Swarm went on to
    complete it), and fails once a slot's attempts are spent."""
    api = _api(swarm)
    name, volume = f"retry-{sproject[2:]}", f"retry-{sproject[2:]}"
    once = "test -f /data/$$HOSTNAME || { touch /data/$$HOSTNAME; exit 3; }"  # fails the first time only

    def job(script: str, attempts: int) -> str:
        return (f"name: {name}\ntemplate: job\nreplicas: 2\nparams: {{script: '{script}'}}\noverrides: {{restart:"
                f" 'on-failure:{attempts}', restart_policy: {{delay: 1s}}, volumes: ['{volume}:/data']}}\n")

    repo = _repo(tmp_path, sproject, swarm, {name: job(once, 2)}, local=False)
    try:
        out = _apply(repo)
        assert out.returncode == 0, out.stdout + out.stderr
        states = sorted(t["Status"]["State"] for t in api.tasks(filters={"service": name}))
        assert states.count("complete") == 2 and "failed" in states, states
        assert [a["action"] for a in _plan(repo)["actions"]] == ["noop"]
        # its service removed by hand (a clean-up): it ran at this revision, once per spec (it ran again)
        [svc] = api.services(filters={"name": name})
        api.remove_service(svc["ID"])
        [a] = _plan(repo)["actions"]
        assert (a["action"], a["cause"]) == ("noop", "job completed (exit 0) at this revision; its service was"
                                                      " removed since (it runs again when its spec changes)"), a
        # always failing: after 1 + 1 attempts in a slot, the job failed
        (repo / f"definitions/{name}.yaml").write_text(job("exit 4", 1))
        out = _apply(repo)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "non-zero exit (4)" in _last_deployment(repo, name)["error"]
        assert len(api.services(filters={"name": name})) == 1
    finally:  # (a removed job's containers stay: moby/moby#42789; this node is the manager)
        for svc in api.services(filters={"name": name}):
            api.remove_service(svc["ID"])
        for left in api.containers(all=True, filters={"volume": volume}):
            api.remove_container(left["Id"], force=True)
        api.remove_volume(volume, force=True)


def test_a_service_name_held_outside_the_project_is_a_planned_conflict(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    name = f"taken-{sproject[2:]}"
    held = api.create_service({"ContainerSpec": {"Image": IMAGE, "Args": ["sleep", "600"]}}, name=name)
    try:
        repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: box\n"})
        [a] = _plan(repo)["actions"]
        assert a["action"] == "conflict" and a["container_id"] == held["ID"]
        assert a["cause"] == (f"the name is held by a service syncer does not manage ({held['ID'][:12]});"
                              " nothing will be done")
        out = _apply(repo)
        assert out.returncode != 0 and "Traceback" not in out.stderr
        svc = _service(api, name)
        assert svc is not None and svc["ID"] == held["ID"] and not svc["Spec"].get("Labels")
    finally:
        api.remove_service(held["ID"])


def test_a_job_turned_into_a_service_and_back_is_replaced_not_updated(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    name = f"mode-{sproject[2:]}"
    as_job = f"name: {name}\ntemplate: job\nparams: {{script: 'echo done'}}\n"
    repo = _repo(tmp_path, sproject, swarm, {name: as_job})
    assert _apply(repo).returncode == 0
    job = _service(api, name)
    assert job is not None and "ReplicatedJob" in job["Spec"]["Mode"]
    # Swarm refuses a mode change on update: the plan says so and the apply replaces the service
    (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: box\nreplicas: 2\n")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["ID"] != job["ID"] and svc["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    assert len(_running(api, name)) == 2
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}
    # ... and back to a job
    (repo / f"definitions/{name}.yaml").write_text(as_job)
    [a] = _plan(repo)["actions"]
    assert a["action"] == "run" and a["reasons"][0] == {"field": "mode", "before": "replicated",
                                                        "after": "replicated-job"}, a
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    again = _service(api, name)
    assert again is not None and again["ID"] != svc["ID"] and "ReplicatedJob" in again["Spec"]["Mode"]
    assert [t["Status"]["State"] for t in api.tasks(filters={"service": again["ID"]})] == ["complete"]
    # the plan that turned it back into a service said why it replaces it
    (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: box\n")
    [a] = _plan(repo)["actions"]
    assert a["action"] == "recreate" and a["reasons"][0] == {"field": "mode", "before": "replicated-job",
                                                             "after": "replicated"}, a


def test_a_global_job_runs_once_on_each_node_and_a_failure_carries_the_tasks_error(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """Compose's `deploy.mode: global-job` (a migration or a clean-up on every node): Swarm's
    `Mode: GlobalJob`; the apply waits for each node's task to complete."""
    api = _api(swarm)
    name = f"each-{sproject[2:]}"
    each = f"""
        id: each
        version: "1.0"
        kind: job
        inputs: {{type: object, properties: {{script: {{type: string}}}}}}
        spec: {{image: "{IMAGE}", command: [sh, -c, "${{inputs.script}}"], mode: global}}
        """
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: each\nparams: {{script: 'echo ok'}}\n"},
                 local=False, templates={"templates/each.yaml": each})
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("run", "job has not run yet")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, name)
    assert svc is not None and svc["Spec"]["Mode"] == {"GlobalJob": {}}
    nodes = api.nodes()
    tasks = api.tasks(filters={"service": svc["ID"]})
    assert sorted(t["NodeID"] for t in tasks) == sorted(n["ID"] for n in nodes)  # one on each node
    assert {t["Status"]["State"] for t in tasks} == {"complete"}
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("noop", "job completed (exit 0)")
    # Swarm stops no job (scaling it would be a mode change); start and restart run it again
    out = run_cli("--repo", str(repo), "instances", "stop", name)
    assert out.returncode == 1 and "rpc error" not in out.stderr, out.stderr
    assert f"service {name} is a job (it runs to completion), which Swarm cannot stop" in out.stderr
    out = run_cli("--repo", str(repo), "instances", "restart", name)  # (returns as `docker start` does)
    assert out.returncode == 0, out.stdout + out.stderr

    def second_run() -> list[tuple[str, str]]:
        return sorted((t["NodeID"], t["Status"]["State"]) for t in api.tasks(filters={"service": svc["ID"]})
                      if (t.get("JobIteration") or {}).get("Index") == 1)

    wait_until(lambda: second_run() == sorted((n["ID"], "complete") for n in nodes), timeout=60,
               message="the second run complete on each node")
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("noop", "job completed (exit 0)")
    # a replicated job now: Swarm changes no mode, the job is made again
    (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: job\nparams: {{script: 'echo ok'}}\n")
    [a] = _plan(repo)["actions"]
    assert a["action"] == "run" and {"field": "mode", "before": "global-job", "after": "replicated-job"} in a["reasons"]
    # a global job that fails: the deployment fails with its task's error
    (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: each\nparams: {{script: 'exit 4'}}\n")
    out = _apply(repo)
    assert out.returncode == 1, out.stdout + out.stderr
    # (run again in its service, an update: a removed job's tasks would stay behind, moby/moby#42789)
    again = _service(api, name)
    assert again is not None and again["ID"] == svc["ID"] and again["Spec"]["Mode"] == {"GlobalJob": {}}
    assert again["JobStatus"]["JobIteration"]["Index"] == 2, again["JobStatus"]
    dep = _last_deployment(repo, name)
    assert dep["status"] == "failed" and "non-zero exit (4)" in dep["error"], dep
    [a] = _plan(repo)["actions"]  # a failed run is run again by the next apply
    assert (a["action"], a["cause"]) == ("run", "the job's last run failed (exit 4)")


def test_a_service_swarm_cannot_place_fails_with_swarms_reason_and_a_bad_constraint_is_located(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """A constraint no node meets leaves the tasks `pending` (Swarm does not refuse it): the
    wait that runs out says why, for a new service and for an update. A constraint Swarm would
    refuse ("constraint expected one operator from ==, !=") is a located error before anything."""
    api = _api(swarm)
    name = f"place-{sproject[2:]}"
    nowhere = "overrides: {placement: {constraints: ['node.labels.zone == nowhere']}}\n"
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: box\n{nowhere}"}, local=False)
    out = _apply(repo, "--health-timeout", "3")
    assert out.returncode == 1, out.stdout + out.stderr
    dep = _last_deployment(repo, name)
    assert "1 task(s) not placed (0/1 task(s) running); pending: no suitable node (scheduling constraints" \
        in dep["error"], dep["error"]
    assert any("pending: no suitable node" in r["line"] for r in dep["logs"]), dep["logs"]
    assert _service(api, name) is None
    # running, then moved where no node is: the update runs out with the same reason
    (repo / f"definitions/{name}.yaml").write_text(f"name: {name}\ntemplate: box\n")
    assert _apply(repo).returncode == 0
    (repo / f"definitions/{name}.yaml").write_text(
        f"name: {name}\ntemplate: box\nparams: {{message: moved}}\n{nowhere}")
    out = _apply(repo, "--health-timeout", "3")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "pending: no suitable node" in _last_deployment(repo, name)["error"]
    # stop-first: the old task went, the new one waits: no task runs, and status says so
    (repo / f"definitions/{name}.yaml").write_text(
        f"name: {name}\ntemplate: box\nparams: {{message: stopped-first}}\n"
        "overrides: {update: {order: stop-first}, placement: {constraints: ['node.labels.zone == nowhere']}}\n")
    assert _apply(repo, "--health-timeout", "3").returncode == 1
    status = json.loads(run_cli("--repo", str(repo), "status", "--json").stdout)
    [row] = [r for r in status["definitions"] if r["definition"] == name]
    assert [(c["state"], c["health"]) for c in row["containers"]] == [("pending", None)], row
    # a constraint Swarm would refuse: nothing happens
    (repo / f"definitions/{name}.yaml").write_text(
        f"name: {name}\ntemplate: box\noverrides: {{placement: {{constraints: ['node.role = worker']}}}}\n")
    before = _service(api, name)
    out = _apply(repo)
    assert out.returncode == 1 and out.stderr.strip() == (
        f"definitions/{name}.yaml:3:39: overrides.placement.constraints[0]: 'node.role = worker': a constraint"
        " is ATTRIBUTE == VALUE or ATTRIBUTE != VALUE (node.role == manager)"), out.stderr
    after = _service(api, name)
    assert before is not None and after is not None and after["Version"] == before["Version"]


def test_servers_shows_a_swarms_nodes_and_its_tasks_and_a_node_swarm_cannot_use(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`syncer servers` (and `GET /servers`, the dashboard's table): on a Swarm server the
    project's tasks (not the containers that happen to be on the manager) and its nodes."""
    api = _api(swarm)
    name = f"nodes-{sproject[2:]}"
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: box\nreplicas: 2\n"})
    assert _apply(repo).returncode == 0
    out = run_cli("--repo", str(repo), "servers", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    cluster = rows["cluster"]
    assert cluster["swarm"] == {"nodes": 1, "ready": 1, "managers": 1, "not_ready": []}, cluster
    assert cluster["containers"]["total"] == 2 and cluster["containers"]["running"] == 2
    assert "swarm" not in rows["local"]
    [node] = api.nodes()
    host = node["Description"]["Hostname"]
    spec = dict(node["Spec"], Availability="pause")  # (pause, not drain: the tasks stay where they are)
    api.update_node(node["ID"], node["Version"]["Index"], spec)
    try:
        out = run_cli("--repo", str(repo), "servers")
        line = next(line for line in out.stdout.splitlines() if line.startswith("cluster"))
        assert f"1 (0 ready; {host}: ready, pause)" in line, out.stdout
    finally:
        node = api.inspect_node(node["ID"])
        api.update_node(node["ID"], node["Version"]["Index"], dict(node["Spec"], Availability="active"))


def test_an_unused_overlay_is_removed_by_the_next_apply_even_when_no_service_changes(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    name, old = f"keep-{sproject[2:]}", f"{sproject}_old"
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: box\n"})
    assert _apply(repo).returncode == 0
    # an overlay syncer made for a network syncer.yaml no longer declares (and no service joins)
    api.create_network(old, driver="overlay", attachable=True,
                       labels={"syncer.project": sproject, "syncer.network": "old"})
    actions = {(a["action"], a["server"], a["container"]) for a in _plan(repo)["actions"]}
    assert actions == {("noop", "cluster", name), ("network remove", "cluster", old)}, actions
    assert [n for n in api.networks(names=[old]) if n["Name"] == old]  # a plan alone removes nothing
    before = _service(api, name)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not [n for n in api.networks(names=[old]) if n["Name"] == old]
    after = _service(api, name)
    assert before is not None and after is not None and after["Version"] == before["Version"]  # untouched
    assert [n for n in api.networks(names=[sproject]) if n["Name"] == sproject]  # the project's, still joined
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}



def test_the_api_lists_a_held_service_and_answers_its_stop_and_start(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    from tests.apiserver import Served

    api = _api(swarm)
    name = f"api-{sproject[2:]}"
    each = f"each-{sproject[2:]}"
    repo = _repo(tmp_path / "repo", sproject, swarm, {name: f"name: {name}\ntemplate: box\nreplicas: 2\n",
                                                      each: f"name: {each}\ntemplate: box\noverrides: {{mode: global}}\n"})
    assert _apply(repo).returncode == 0
    served = Served(repo, repo / ".syncer", {}, sproject)
    served.start()
    try:
        # a global service has no replicas to scale to 0: a conflict, not the server's error
        refused = served.error("POST", f"/instances/{each}/stop", 409, "conflict")
        assert "which Swarm cannot scale to 0" in refused["error"]["message"]
        stopped = served.ok("POST", f"/instances/{name}/stop")["data"]
        assert (stopped["container_name"], stopped["status"], stopped["held_stopped"]) == (name, "stopped", True)
        svc = _service(api, name)
        assert svc is not None and svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 0
        [item] = [i for i in served.ok("GET", "/instances")["data"] if i["definition"] == name]
        assert (item["id"], item["status"], item["held_stopped"]) == (stopped["id"], "stopped", True)
        served.ok("POST", f"/instances/{stopped['id']}/start")
        items = [i for i in served.ok("GET", "/instances")["data"] if i["definition"] == name]
        assert sorted((i["container_name"], i["status"]) for i in items) == [(f"{name}.1", "running"),
                                                                             (f"{name}.2", "running")]
    finally:
        assert served.stop() == 0, served.server_log()[-3000:]


def test_an_apply_on_a_swarm_locks_with_a_config_and_never_imports_the_sdk(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """On a Swarm server the apply lock is a Swarm config (unique in the whole swarm, not one
    node's container), and every write goes as the Engine API's JSON over the unix socket:
    the ~0.1 s import of the docker SDK is never paid (no `docker login` here)."""
    api = _api(swarm)
    repo = _repo(tmp_path / "repo", sproject, swarm, {"web": "name: web\ntemplate: conf\nreplicas: 1\n"},
                 local=False, templates={"templates/conf.yaml": f"""
            id: conf
            version: "1.0"
            inputs: {{type: object, properties: {{level: {{type: string, default: info}}}}}}
            spec:
              image: {IMAGE}
              command: {LOOP}
              files: [{{path: /etc/app.conf, content: "level=${{inputs.level}}"}}]
              update: {{monitor: 1s}}
            """})
    lock = f"{sproject}.syncer-lock"
    env = {"DOCKER_CONFIG": str(tmp_path / "no-login")}  # whatever this machine's docker login holds

    def apply() -> Any:
        return _importtime(repo, env)

    out = apply()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "docker" not in _imported(out.stderr) and "requests" not in _imported(out.stderr)
    svc = _service(api, "web")
    assert svc is not None and len(_running(api, "web")) == 1
    assert [c["Spec"]["Name"] for c in api.configs(filters={"label": f"syncer.project={sproject}"})] != []
    assert not [c for c in api.configs(filters={"name": lock}) if c["Spec"]["Name"] == lock]  # released
    assert not swarm.docker("ps", "-aq", "--filter", f"name={lock}").strip()  # no marker container

    # another apply (on another host, alive) holds the lock: this one waits for nobody and changes nothing
    api.create_config(lock, b"syncer apply lock\n", labels={
        "syncer.marker": "lock", "syncer.marker-of": sproject, "syncer.lock.host": "elsewhere",
        "syncer.lock.pid": "1", "syncer.lock.since": "2020-01-01T00:00:00Z", "syncer.lock.purpose": "syncer apply"})
    (repo / "definitions/web.yaml").write_text("name: web\ntemplate: conf\nreplicas: 1\nparams: {level: debug}\n")
    out = apply()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "another apply holds the project's lock on server 'cluster': pid 1 on elsewhere" in out.stderr
    assert f"`docker config rm {lock}` on server 'cluster'" in out.stderr
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["Labels"]["syncer.revision"] == "1"  # unchanged

    swarm.docker("config", "rm", lock)  # broken as the message says: the change goes through
    out = apply()
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["Labels"]["syncer.revision"] == "2"
    assert "docker" not in _imported(out.stderr)


def _importtime(repo: Path, env: dict[str, str]) -> Any:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-X", "importtime", "-m", "syncer", "--repo", str(repo), "apply",
                           "--auto-approve"], capture_output=True, text=True, env={**os.environ, **env}, timeout=300, check=False)


def _imported(stderr: str) -> set[str]:
    """The modules `-X importtime` reports."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_instances_logs_of_a_service_are_every_tasks_lines_in_time_order(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    repo = _repo(tmp_path / "repo", sproject, swarm, {"talk": "name: talk\ntemplate: talk\nreplicas: 2\n"},
                 local=False, templates={"templates/talk.yaml": f"""
            id: talk
            version: "1.0"
            inputs: {{type: object, properties: {{}}}}
            spec:
              image: {IMAGE}
              command: [sh, -c, "echo hello from $(hostname); echo bye from $(hostname); trap 'exit 0' TERM; while true; do sleep 1; done"]
              update: {{monitor: 1s}}
            """})
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr

    def lines() -> list[str]:
        got = run_cli("--repo", str(repo), "instances", "logs", "talk", "--json")
        assert got.returncode == 0, got.stdout + got.stderr
        return list(json.loads(got.stdout)["lines"])

    assert wait_until(lambda: len(lines()) == 4, timeout=30, message="both tasks' lines")
    got = lines()
    hosts = {line.split()[-1] for line in got}
    assert len(hosts) == 2 and all(line[:4].isdigit() for line in got)  # each task's, each with its time
    assert [line.split()[1] for line in got].count("hello") == 2
    assert got == sorted(got)  # in time order
    for host in hosts:  # one task's lines in its own order
        mine = [line.split()[1] for line in got if line.endswith(host)]
        assert mine == ["hello", "bye"]
    tail = run_cli("--repo", str(repo), "instances", "logs", "talk", "--tail", "1", "--json")
    assert tail.returncode == 0 and len(json.loads(tail.stdout)["lines"]) == 1


def test_with_a_docker_login_the_nodes_pull_a_private_image_which_the_sdk_passes_the_login_on_for(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str, private_registry: Registry) -> None:
    """A `docker login` in the client's config: a service's create and update go through the
    SDK's client, which sends the login along as X-Registry-Auth, and the node pulls the
    image from a real registry that asks for it."""
    api = _api(swarm)
    ref = private_registry.push(IMAGE, f"{sproject}/app:1")
    env = {"DOCKER_CONFIG": str(private_registry.login)}
    repo = _repo(tmp_path / "repo", sproject, swarm, {"web": f"name: web\ntemplate: box\nparams: {{image: '{ref}'}}\n"},
                 local=False)
    out = _importtime(repo, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "docker" in _imported(out.stderr)
    assert api.inspect_image(ref)["Id"] == api.inspect_image(IMAGE)["Id"]  # the node pulled it, with the login
    (repo / "definitions/web.yaml").write_text(f"name: web\ntemplate: box\nparams: {{image: '{ref}', message: bye}}\n")
    out = _importtime(repo, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert private_registry.password not in out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None and "MESSAGE=bye" in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert svc["UpdateStatus"]["State"] == "completed" and len(_running(api, "web")) == 1


def test_pull_policy_always_pins_a_service_to_its_tags_digest_and_rolls_it_when_the_tag_moves(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str, registry: Registry) -> None:
    """As `docker service create` resolves a tag, so every node runs one image; a tag the
    registry moves to another image is a plan `update`, and the tasks roll to it."""
    api = _api(swarm)
    ref = registry.push(IMAGE, f"{sproject}/app:1")
    follow = {"templates/follow.yaml": f'id: follow\nversion: "1.0"\nspec: {{image: "{ref}", pull_policy: always, '
                                       f'command: {LOOP}, update: {{monitor: 1s}}}}\n'}
    repo = _repo(tmp_path / "repo", sproject, swarm, {"web": "name: web\ntemplate: follow\n"}, local=False,
                 templates=follow)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    first = registry.digest(ref)
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"{ref}@{first}"
    assert _plan(repo)["actions"][0]["action"] == "noop"

    registry.push(HEALTHY_IMAGE, f"{sproject}/app:1")
    moved = registry.digest(ref)
    [web] = [a for a in _plan(repo)["actions"] if a["container"] == "web"]
    assert web["action"] == "update" and web["reasons"][0]["after"] == moved[:19]
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"{ref}@{moved}"
    assert svc["UpdateStatus"]["State"] == "completed"
    [task] = _running(api, "web")
    assert task["Spec"]["ContainerSpec"]["Image"] == f"{ref}@{moved}"

    # a rollback undoes the roll: the service goes back to the digest the tag named before,
    # as an update, and stays there (pinned) while the tag names the other image
    out = run_cli("--repo", str(repo), "rollback", "web", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    repository = ref.rsplit(":", 1)[0]
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"{repository}@{first}"
    assert svc["UpdateStatus"]["State"] == "completed"
    assert _plan(repo)["actions"][0]["action"] == "noop"


def test_the_managers_events_wake_a_rolls_wait_when_it_moves(swarm: SwarmDockerd, sproject: str) -> None:
    """engine/swarm_wake.py against a real manager: its service events, read without the SDK,
    say each state a roll reaches (`updatestate.new`); a wait they end returns long before its
    clock would, Swarm's UpdateStatus already says that state, and close() ends the reading."""
    import time

    from syncer.adapters.docker import Engine
    from syncer.engine.swarm_wake import Waker, since

    api = _api(swarm)
    engine = Engine(Server("cluster", swarm.url, kind="swarm"))
    light = engine.light
    assert light is not None
    start = since()
    waker = Waker(lambda: light.events({"type": ["service"]}, since=start))
    try:
        spec = {"Name": f"{sproject}-woken", "Labels": {"syncer.project": sproject},
                "TaskTemplate": {"ContainerSpec": {"Image": IMAGE,
                                                   "Command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}},
                "Mode": {"Replicated": {"Replicas": 1}},
                "UpdateConfig": {"Monitor": 10**9, "Order": "start-first", "FailureAction": "rollback"}}
        ident = light.post("/services/create", spec)["ID"]
        assert wait_until(lambda: len(_running(api, f"{sproject}-woken")) == 1, timeout=60)
        info = api.inspect_service(ident)
        changed = {**info["Spec"], "TaskTemplate": {**info["Spec"]["TaskTemplate"], "ForceUpdate": 1}}
        light.post(f"/services/{ident}/update", changed, {"version": info["Version"]["Index"]})
        t0, seq, states = time.monotonic(), 0, []
        while "completed" not in states and time.monotonic() - t0 < 60:
            seq, woken = waker.wait(ident, after=seq, timeout=120)
            assert woken, "the stream ended or said nothing"
            states.append((api.inspect_service(ident).get("UpdateStatus") or {}).get("State"))
        assert states[0] == "updating" and states[-1] == "completed", states
        assert time.monotonic() - t0 < 60
    finally:
        waker.close()
        engine.close()
    assert wait_until(lambda: not waker.alive, timeout=10)


def test_a_service_with_restart_true_rolls_its_tasks_after_its_dependency_updates(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`depends_on: {db: {restart: true}}` on Swarm: once db's update completed, app's tasks
    are rolled (ForceUpdate + 1, its spec otherwise unchanged) and the apply waits for it."""
    api = _api(swarm)
    repo = _repo(tmp_path, sproject, swarm, {
        "db": "name: db\ntemplate: box\n",
        "app": "name: app\ntemplate: box\ndepends_on: {db: {restart: true}}\n"}, local=False)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    app = _service(api, "app")
    assert app is not None
    force = app["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
    (repo / "definitions/db.yaml").write_text("name: db\ntemplate: box\nparams: {message: changed}\n")
    assert {a["container"]: a["action"] for a in _plan(repo)["actions"]} == {"db": "update", "app": "restart"}
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    app = _service(api, "app")
    db = _service(api, "db")
    assert app is not None and db is not None
    assert app["Spec"]["TaskTemplate"]["ForceUpdate"] == force + 1
    assert app["UpdateStatus"]["State"] == "completed"
    assert app["UpdateStatus"]["StartedAt"] > db["UpdateStatus"]["CompletedAt"]
    lines = [r["line"] for r in _last_deployment(repo, "app")["logs"]]
    assert any(line.startswith("restarting service app") for line in lines), lines
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}


def test_the_manager_tells_an_images_own_healthcheck(swarm: SwarmDockerd) -> None:
    """What a create asks to know whether its tasks are health-checked when the spec names no
    test (and so confirms them running a moment later): the image's test as the manager holds
    it, None without one, and None for an image the manager does not hold."""
    from syncer.adapters.docker import Engine
    from syncer.adapters.swarm import Swarm

    engine = Engine(Server("cluster", swarm.url, kind="swarm"))
    try:
        s = Swarm(engine)
        test = s.image_healthcheck(UNHEALTHY_IMAGE)
        assert test == ["CMD", "false"], test
        assert s.image_healthcheck(HEALTHY_IMAGE) is not None
        assert s.image_healthcheck(IMAGE) is None
        assert s.image_healthcheck("syncer-local/not-here:1") is None
        # once per image: twenty services of one image ask the busy manager once, not twenty times
        asked: list[str] = []
        s.reads = type("Counting", (), {"inspect_image": lambda self, image: asked.append(image) or {}})()
        for _ in range(3):
            assert s.image_healthcheck(UNHEALTHY_IMAGE) == ["CMD", "false"]
            assert s.image_healthcheck("syncer-local/other:1") is None
        assert asked == ["syncer-local/other:1"]
    finally:
        engine.close()


def test_process_settings_reach_the_tasks_containers_and_what_swarm_lacks_is_refused(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """A service's task container, inspected on the node, has what the spec asked for as a
    container would (before, Swarm services silently went without them); a field no service
    has is a located plan error, and nothing is made."""
    tight = f"""
        id: tight
        version: "1.0"
        inputs: {{type: object, properties: {{}}}}
        spec:
          image: {IMAGE}
          command: {LOOP}
          read_only: true
          init: true
          cap_drop: [NET_RAW]
          stop_signal: SIGINT
          ulimits: {{nofile: {{soft: 1024, hard: 2048}}}}
          dns: [10.0.0.2]
          dns_search: corp.example
          dns_opt: ["ndots:2"]
          group_add: [nogroup, "4242"]
          extra_hosts: ["db.internal:10.0.0.5"]
          tmpfs: ["/scratch:size=8m"]
          logging: {{driver: json-file, options: {{max-size: 1m}}}}
          update: {{monitor: 1s}}
        """
    repo = _repo(tmp_path / "r", sproject, swarm, {"tight": "name: tight\ntemplate: tight\n"}, local=False,
                 templates={"templates/tight.yaml": tight})
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    api = _api(swarm)
    [task] = _running(api, "tight")
    c = api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
    host = c["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["Init"] is True, host
    assert host["CapDrop"] in (["CAP_NET_RAW"], ["NET_RAW"]), host
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Dns"] == ["10.0.0.2"] and host["DnsSearch"] == ["corp.example"] and host["DnsOptions"] == ["ndots:2"]
    assert host["GroupAdd"] == ["nogroup", "4242"]
    assert "db.internal:10.0.0.5" in host["ExtraHosts"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert c["Config"]["StopSignal"] == "SIGINT"
    assert [(m["Type"], m["Destination"]) for m in c["Mounts"] if m["Type"] == "tmpfs"] == [("tmpfs", "/scratch")]
    # the process sees it: a read-only root, and the tmpfs writable
    probe = api.exec_create(c["Id"], ["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo ok"])
    assert api.exec_start(probe).decode().split() == ["ro", "ok"]

    # a service an earlier syncer made of this spec, which left `read_only` out of its tasks
    # (and labelled it with the hash of what it made): rolled to a read-only root again
    swarm.docker("service", "update", "--read-only=false", "--label-add", "syncer.task-hash=sha256:earlier", "tight")
    [action] = _plan(repo)["actions"]
    assert action["action"] == "update" and [r["field"] for r in action["reasons"]] == ["task template"], action
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [a["action"] for a in _plan(repo)["actions"]] == ["noop"]
    [task] = _running(api, "tight")
    assert api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])["HostConfig"]["ReadonlyRootfs"]
    # a stale label alone: the update changes nothing the tasks run, Swarm starts no roll and
    # writes no UpdateStatus; the apply sees the tasks already run the template (no timeout)
    swarm.docker("service", "update", "--detach", "--label-add", "syncer.task-hash=sha256:earlier", "tight")
    out = _apply(repo, "--health-timeout", "30")
    assert out.returncode == 0 and "Swarm has nothing to roll" in out.stdout, out.stdout + out.stderr
    assert [t["ID"] for t in _running(api, "tight")] == [task["ID"]]  # the same task runs on
    assert [a["action"] for a in _plan(repo)["actions"]] == ["noop"]

    loose = tight.replace("read_only: true", "domainname: corp.example\n          resources: {shm_size: 256m}\n"
                                             "          ports: ['127.0.0.1:18081:80']")
    repo = _repo(tmp_path / "r2", sproject, swarm, {"loose": "name: loose\ntemplate: tight\n"}, local=False,
                 templates={"templates/tight.yaml": loose})
    out = _apply(repo)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "definitions/loose.yaml:2:11: definition 'loose' runs on Swarm server 'cluster', whose services have no"
        " domainname, resources.shm_size, port 18081 bound to 127.0.0.1 (a service publishes on every address):"
        " take them out of its spec (a profile may), or run it on a Docker server"],\
        out.stderr
    assert _service(api, "loose") is None


def test_service_labels_are_set_on_the_service_and_changed_without_rolling_its_tasks(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """Compose's `deploy.labels` (what Traefik's Swarm provider reads) are the service's own:
    on the service beside syncer's labels, not on its tasks' containers; a change of them is
    an update with the field's reason, and the same tasks run on."""
    api = _api(swarm)
    web = "name: web\ntemplate: box\nreplicas: 2\noverrides:\n  service_labels: {%s}\n"
    port = "traefik.http.services.web.loadbalancer.server.port"
    repo = _repo(tmp_path, sproject, swarm, {"web": web % f"{port}: '8080', traefik.enable: 'true'"}, local=False)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None
    labels = svc["Spec"]["Labels"]
    assert (labels[port], labels["traefik.enable"], labels["syncer.definition"]) == ("8080", "true", "web")
    assert port not in svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"]
    before = {t["ID"] for t in _running(api, "web")}
    assert len(before) == 2

    (repo / "definitions/web.yaml").write_text(web % f"{port}: '9090'")
    actions = [a for a in _plan(repo)["actions"] if a["definition"] == "web"]
    assert actions[0]["action"] == "update"
    assert actions[0]["reasons"] == [{"field": "service_labels.traefik.enable", "before": "true", "after": None},
                                     {"field": f"service_labels.{port}", "before": "8080", "after": "9090"}]
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    labels = _service(api, "web")["Spec"]["Labels"]  # type: ignore[index]
    assert labels[port] == "9090" and "traefik.enable" not in labels
    assert {t["ID"] for t in _running(api, "web")} == before  # no task was rolled
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}


def test_a_global_service_runs_a_task_on_each_node_rolls_restarts_and_turns_replicated_by_being_made_again(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`mode: global` (Compose's deploy.mode): one task per node (one node here); an env change
    rolls it; `instances restart` rolls it and keeps it global; `instances stop` refuses it (Swarm
    scales no global service); turned replicated, it is removed and made again (Swarm refuses a
    mode change on update)."""
    api = _api(swarm)
    agent = "name: agent\ntemplate: box\noverrides: {mode: global}\nparams: {message: %s}\n"
    repo = _repo(tmp_path, sproject, swarm, {"agent": agent % "one"}, local=False)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1/1 task(s) running" in out.stdout
    svc = _service(api, "agent")
    assert svc is not None and svc["Spec"]["Mode"] == {"Global": {}}
    [first] = _running(api, "agent")
    [a] = _plan(repo)["actions"]
    assert (a["action"], a["cause"]) == ("noop", "in sync (1/1 task(s) running)")

    (repo / "definitions/agent.yaml").write_text(agent % "two")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    [second] = _running(api, "agent")
    assert second["ID"] != first["ID"] and "MESSAGE=two" in second["Spec"]["ContainerSpec"]["Env"]

    out = run_cli("--repo", str(repo), "instances", "restart", "agent")
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "agent")
    assert svc is not None and svc["Spec"]["Mode"] == {"Global": {}} and svc["Spec"]["TaskTemplate"]["ForceUpdate"] == 1
    [third] = _running(api, "agent")
    assert third["ID"] != second["ID"]
    out = run_cli("--repo", str(repo), "instances", "stop", "agent")
    assert out.returncode == 1 and "mode: global" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert [t["ID"] for t in _running(api, "agent")] == [third["ID"]]

    (repo / "definitions/agent.yaml").write_text("name: agent\ntemplate: box\nreplicas: 2\nparams: {message: two}\n")
    [a] = _plan(repo)["actions"]
    assert a["action"] == "recreate" and a["reasons"][0] == {"field": "mode", "before": "global", "after": "replicated"}
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "agent")
    assert svc is not None and svc["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}} and len(_running(api, "agent")) == 2
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}


def test_a_published_port_moved_or_put_in_host_mode_is_a_roll_the_apply_waits_for(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """Swarm rolls every task when a service's published ports change (the EndpointSpec, not the
    TaskTemplate): the apply waits for Swarm's verdict on that roll, as for any other; it used to
    say "its tasks are unchanged" and return while Swarm rolled (a failed roll went unreported)."""
    api = _api(swarm)
    port = 20000 + int(sproject[-4:], 16) % 5000
    web = "name: web\ntemplate: edge\noverrides:\n  ports: [%s]\n"
    edge = f"""
        id: edge
        version: "1.0"
        inputs: {{type: object, properties: {{message: {{type: string, default: hello}}}}}}
        spec:
          image: {IMAGE}
          command: {LOOP}
          env: {{MESSAGE: "${{inputs.message}}"}}
          update: {{monitor: 1s}}
        """  # (the update order left to syncer)
    repo = _repo(tmp_path, sproject, swarm, {"web": web % f'"{port}:80"'}, local=False,
                 templates={"templates/edge.yaml": edge})
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    [first] = _running(api, "web")

    (repo / "definitions/web.yaml").write_text(web % f"{{container_port: 80, host_port: {port + 1}, mode: host}}")
    [a] = _plan(repo)["actions"]
    assert a["action"] == "update" and a["reasons"][0]["field"] == "ports"
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Swarm is rolling its tasks" in out.stdout and "update completed" in out.stdout, out.stdout
    svc = _service(api, "web")
    assert svc is not None and svc["UpdateStatus"]["State"] == "completed"
    assert [(p["PublishedPort"], p["PublishMode"]) for p in svc["Spec"]["EndpointSpec"]["Ports"]] == [(port + 1, "host")]
    [second] = _running(api, "web")
    assert second["ID"] != first["ID"]
    assert {a["action"] for a in _plan(repo)["actions"]} == {"noop"}
    assert svc["Spec"]["UpdateConfig"]["Order"] == "stop-first"  # its task holds the node's port

    # a later roll of a task that holds its node's port: stop-first (start-first would leave the
    # new task pending on a port the old one holds, until the timeout)
    (repo / "definitions/web.yaml").write_text(web % f"{{container_port: 80, host_port: {port + 1}, mode: host}}"
                                               + "params: {message: again}\n")
    out = _apply(repo)
    assert out.returncode == 0 and "update completed" in out.stdout, out.stdout + out.stderr
    [third] = _running(api, "web")
    assert third["ID"] != second["ID"] and "MESSAGE=again" in third["Spec"]["ContainerSpec"]["Env"]


def test_a_cpu_reservation_the_restart_pace_and_dnsrr_reach_the_service_and_a_mesh_port_beside_dnsrr_is_refused(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    api = _api(swarm)
    web = ("name: web\ntemplate: box\noverrides:\n  endpoint_mode: dnsrr\n  resources: {cpus_reservation: 0.1}\n"
           "  restart_policy: {delay: 2s, window: 10s, max_attempts: 4}\n"
           "  placement: {preferences: [{spread: node.labels.zone}], max_replicas_per_node: 1}\n"
           "  rollback: {order: stop-first, parallelism: 0}\n%s")
    repo = _repo(tmp_path, sproject, swarm, {"web": web % ""}, local=False)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    svc = _service(api, "web")
    assert svc is not None and svc["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    assert svc["Spec"]["TaskTemplate"]["Resources"]["Reservations"] == {"NanoCPUs": 10**8}
    assert svc["Spec"]["TaskTemplate"]["RestartPolicy"] == {"Condition": "any", "MaxAttempts": 4, "Delay": 2 * 10**9,
                                                            "Window": 10 * 10**9}
    assert svc["Spec"]["TaskTemplate"]["Placement"] == {
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}], "MaxReplicas": 1}
    rollback = svc["Spec"]["RollbackConfig"]
    assert (rollback["Order"], rollback.get("Parallelism", 0), rollback["FailureAction"]) == ("stop-first", 0, "pause")
    assert len(_running(api, "web")) == 1

    (repo / "definitions/web.yaml").write_text(web % '  ports: ["18099:80"]\n')
    out = run_cli("--repo", str(repo), "plan")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "definitions/web.yaml:2:11: definition 'web' runs on Swarm server 'cluster', whose services have no port 18099"
        " through the routing mesh with endpoint_mode: dnsrr (publish it with mode: host): take them out of its spec"
        " (a profile may), or run it on a Docker server")


def test_a_swarm_server_whose_engine_is_no_manager_is_one_line_naming_it_and_kind(
        tmp_path: Path, project: str) -> None:
    """`kind: swarm` on an engine that is no Swarm manager (the main one here): the plan says
    which server and what to do, not the engine's bare 503."""
    repo = write_files(tmp_path / "r", {
        "syncer.yaml": f"project: {project}\nservers:\n  ns: {{kind: swarm}}\n",
        "templates/box.yaml": f"id: box\nversion: \"1.0\"\nspec: {{image: {IMAGE}}}\n",
        "definitions/box.yaml": f"name: {project}-box\ntemplate: box\n"})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "plan")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == ("server 'ns': it is `kind: swarm`, and its engine is not a Swarm manager: run `docker swarm"
                          " init` there, or point its `docker:` at a manager\n"), out.stderr


def test_removing_the_last_service_removes_its_overlay_in_the_same_apply(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """The manager takes the overlay's DELETE while the removed service's task still stops (its
    grace period): the apply waits until the overlay is gone, so the next plan has nothing left."""
    api = _api(swarm)
    name = f"last-{sproject[2:]}"
    slow = f"""
        id: slow
        version: "1.0"
        spec:
          image: {IMAGE}
          command: [sleep, "3600"]
          stop_grace_period: 3s
        """
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: slow\n"}, local=False,
                 templates={"templates/slow.yaml": slow})
    assert _apply(repo).returncode == 0
    assert wait_until(lambda: len(_running(api, name)) == 1, timeout=60)
    (repo / f"definitions/{name}.yaml").unlink()
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _service(api, name) is None
    assert not [n for n in api.networks(names=[sproject]) if n["Name"] == sproject]
    assert [a for a in _plan(repo)["actions"] if a["action"] != "noop"] == []


def test_a_service_changed_outside_syncer_is_drift_the_next_apply_rolls_back(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`docker service update --env-add/--publish-add` by hand: the plan names the drifted
    fields (never their values: one holds a secret) and the apply puts the repository's spec
    back; a service holding a secret's value where syncer's template has its reference, and
    the manager's own defaults, are no drift."""
    api = _api(swarm)
    name = f"drift-{sproject[2:]}"
    sec = f"""
        id: sec
        version: "1.0"
        inputs: {{type: object, properties: {{token: {{type: string, format: password}}}}}}
        spec:
          image: {IMAGE}
          command: {LOOP}
          env: {{TOKEN: "t=${{inputs.token}};", PLAIN: "yes"}}
          ports: ["18096:80"]
          placement: {{constraints: ["node.role==manager"]}}
          volumes: ["/tmp:/host-tmp:ro"]
          update: {{monitor: 1s}}
        """
    repo = _repo(tmp_path / "r", sproject, swarm, {name: f"name: {name}\ntemplate: sec\nparams: {{token: {{secret: DT}}}}\n"},
                 local=False, templates={"templates/sec.yaml": sec}, extra="policy: {bind_mounts: [/tmp]}\n")
    secrets = tmp_path / "secrets.env"
    secrets.write_text("DT=drift-canary-5c1e\n")
    env = {"SYNCER_SECRETS_FILE": str(secrets)}

    def cli(*args: str) -> Any:
        out = run_cli("--repo", str(repo), *args, env=env)
        assert "drift-canary-5c1e" not in out.stdout + out.stderr
        return out

    assert cli("apply", "--auto-approve").returncode == 0
    assert [a["action"] for a in json.loads(cli("plan", "--json").stdout)["actions"]] == ["noop"]
    swarm.docker("service", "update", "-d", "--env-add", "DRIFT=1", "--publish-add", "18095:81", "--replicas", "2",
                 name)
    [action] = json.loads(cli("plan", "--json").stdout)["actions"]
    assert (action["action"], action["cause"]) == (
        "update", "changed outside syncer: Swarm rolls it back to syncer's spec"), action
    assert {(r["field"], r["before"]) for r in action["reasons"]} == {  # (the count too: it said the env alone)
        ("TaskTemplate.ContainerSpec.Env", "changed outside syncer"), ("EndpointSpec.Ports", "changed outside syncer"),
        ("replicas", 2)}
    out = cli("apply", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    spec = _service(api, name)["Spec"]  # type: ignore[index]
    assert not any(e.startswith("DRIFT=") for e in spec["TaskTemplate"]["ContainerSpec"]["Env"])
    assert "t=drift-canary-5c1e;" in " ".join(spec["TaskTemplate"]["ContainerSpec"]["Env"])
    assert [p["PublishedPort"] for p in spec["EndpointSpec"]["Ports"]] == [18096]
    assert [a["action"] for a in json.loads(cli("plan", "--json").stdout)["actions"]] == ["noop"]
    # the env alone: the service's labels still name syncer's tasks, but Swarm rolls them back,
    # and the apply waits for that roll (it said "its tasks are unchanged" and returned at once)
    swarm.docker("service", "update", "-d", "--env-add", "DRIFT=2", name)
    out = cli("apply", "--auto-approve")
    assert out.returncode == 0 and "Swarm is rolling its tasks" in out.stdout, out.stdout + out.stderr
    assert "update completed" in out.stdout, out.stdout


def test_the_secret_key_is_a_swarm_config_every_manager_serves_and_an_older_marker_is_carried_over(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """On a Swarm default server the project's secret key is a Swarm config (one per swarm,
    whichever manager a runner reaches), not a node's marker container; the key an older
    syncer kept in one there is published as the config, so nothing is recreated."""
    api = _api(swarm)
    name = f"key-{sproject[2:]}"
    pw = (f"id: pw\nversion: \"1.0\"\ninputs: {{type: object, properties: {{token: {{type: string, format: password}}}}}}\n"
          f"spec: {{image: {IMAGE}, command: {LOOP}, env: {{TOKEN: \"${{inputs.token}}\"}}}}\n")
    repo = _repo(tmp_path / "r", sproject, swarm, {name: f"name: {name}\ntemplate: pw\nparams: {{token: {{secret: KM}}}}\n"},
                 local=False, templates={"templates/pw.yaml": pw})
    env = {"SYNCER_SECRETS_FILE": str(write_files(tmp_path / "s", {"secrets.env": "KM=key-canary-71d0\n"}) / "secrets.env")}
    old = "ab" * 32  # the key an older syncer kept in a marker container on this manager
    api.create_container("syncer/marker:1" if api.images(name="syncer/marker") else IMAGE, name=f"{sproject}.syncer-key",
                         environment={"SYNCER_KEY": old}, labels={"syncer.marker": "key", "syncer.marker-of": sproject})
    try:
        out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan", "--json", env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        [config] = [c for c in api.configs(filters={"name": f"{sproject}.syncer-key"})
                    if c["Spec"]["Name"] == f"{sproject}.syncer-key"]
        import base64
        assert base64.b64decode(config["Spec"]["Data"]).decode() == old
        assert config["Spec"]["Labels"] == {"syncer.marker": "key", "syncer.marker-of": sproject}
        # a second state dir (another runner) reads the same key: the plans agree
        again = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state2"), "plan", "--json", env=env)
        assert json.loads(again.stdout)["actions"][0]["spec_hash"] == json.loads(out.stdout)["actions"][0]["spec_hash"]
        assert "key-canary-71d0" not in out.stdout + out.stderr + again.stdout + again.stderr
    finally:
        api.remove_container(f"{sproject}.syncer-key", force=True)


def test_a_named_volume_with_driver_options_is_made_by_the_node_with_them(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """Compose's `volumes: {x: {driver_opts: ...}}` (an NFS share in real life; a tmpfs here):
    the service's Mount carries the driver's options, and the node makes the volume with them;
    the plan after the apply has nothing to do (no drift from the manager's copy of the Mount)."""
    api = _api(swarm)
    name, volume = f"vol-{sproject[2:]}", f"{sproject}-tv"
    tv = f"""
        id: tv
        version: "1.0"
        spec:
          image: {IMAGE}
          command: {LOOP}
          volumes: [{{name: {volume}, mount_path: /tv, driver_opts: {{type: tmpfs, device: tmpfs, o: "size=4m"}}}}]
        """
    repo = _repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: tv\n"}, local=False,
                 templates={"templates/tv.yaml": tv})
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert api.inspect_volume(volume)["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}
    [task] = _running(api, name)
    probe = api.exec_create(task["Status"]["ContainerStatus"]["ContainerID"], ["sh", "-c", "df -k /tv | tail -1"])
    assert api.exec_start(probe).decode().split()[1] == "4096"  # a 4 MiB tmpfs
    assert [a["action"] for a in _plan(repo)["actions"]] == ["noop"]
