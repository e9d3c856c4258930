"""`syncer apply` against a real engine: actions, restore, order, errors, history, rollback."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

from tests.helpers import HEALTH_CHECKED, HEALTHY_IMAGE, IMAGE, UNHEALTHY_IMAGE, run_cli, simple_repo, write_files

WEB = "name: web\ntemplate: box\nparams: {message: one}\n"
FAST = ("--stop-timeout", "1")


def _apply(repo: Path, state: Path, *extra: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve", *FAST, *extra, env=env)
    assert "Traceback" not in out.stdout + out.stderr
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def _containers(api: Any, project: str) -> dict[str, dict[str, Any]]:
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/"): r for r in rows}


def _json(repo: Path, state: Path, *args: str) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_create_then_noop_then_recreate_then_remove(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB, "old": "name: old\ntemplate: box\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    live = _containers(docker_api, project)
    assert set(live) == {"web", "old"} and all(c["State"] == "running" for c in live.values())
    assert live["web"]["Labels"]["syncer.revision"] == "1"
    env = docker_api.inspect_container("web" if False else live["web"]["Id"])["Config"]["Env"]
    assert "MESSAGE=one" in env
    noop = _apply(repo, state)
    assert "No changes." in noop.stdout and _containers(docker_api, project)["web"]["Id"] == live["web"]["Id"]
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    (repo / "definitions/old.yaml").unlink()
    _apply(repo, state)
    after = _containers(docker_api, project)
    assert set(after) == {"web"} and after["web"]["Id"] != live["web"]["Id"]
    assert after["web"]["Labels"]["syncer.revision"] == "2"
    assert "MESSAGE=two" in docker_api.inspect_container(after["web"]["Id"])["Config"]["Env"]
    history = _json(repo, state, "history", "web")
    assert [h["revision"] for h in history] == [2, 1]
    deps = _json(repo, state, "deployments", "list")
    assert {d["status"] for d in deps} == {"success"} and len(deps) == 4


def test_start_restores_a_stopped_container(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    state = tmp_path / "s"
    _apply(repo, state)
    ident = _containers(docker_api, project)["web"]["Id"]
    docker_api.stop(ident, timeout=1)
    out = _apply(repo, state)
    assert "start" in out.stdout
    c = _containers(docker_api, project)["web"]
    assert c["Id"] == ident and c["State"] == "running"


def test_scaling_up_and_down(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB + "replicas: 1\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    (repo / "definitions/web.yaml").write_text(WEB + "replicas: 3\n")
    _apply(repo, state)
    assert set(_containers(docker_api, project)) == {"web", "web-2", "web-3"}
    (repo / "definitions/web.yaml").write_text(WEB + "replicas: 2\n")
    _apply(repo, state)
    assert set(_containers(docker_api, project)) == {"web", "web-2"}


def test_failed_recreate_restores_the_old_container(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, templates={"hc": HEALTH_CHECKED},
                       definitions={"svc": f"name: svc\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    old = _containers(docker_api, project)["svc"]
    # the new version's probe fails: `false` instead of `true`
    (repo / "templates/hc.yaml").write_text(HEALTH_CHECKED.replace('"true"', '"false"'))
    (repo / "definitions/svc.yaml").write_text(f"name: svc\ntemplate: hc\nparams: {{image: '{UNHEALTHY_IMAGE}', v: b}}\n")
    out = _apply(repo, state, "--health-timeout", "30", ok=False)
    assert out.returncode == 1 and "old container restored" in out.stdout
    now = _containers(docker_api, project)
    assert set(now) == {"svc"} and now["svc"]["Id"] == old["Id"] and now["svc"]["State"] == "running"
    [dep] = _json(repo, state, "deployments", "list", "--status", "failed")
    assert dep["rolled_back"] is True and dep["status"] == "failed"
    shown = _json(repo, state, "deployments", "show", dep["id"])
    assert any("unhealthy" in row["line"] for row in shown["logs"])


def test_missing_image_fails_before_anything_stops(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, templates={"hc": HEALTH_CHECKED},
                       definitions={"svc": f"name: svc\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    old = _containers(docker_api, project)["svc"]
    (repo / "definitions/svc.yaml").write_text(
        "name: svc\ntemplate: hc\nparams: {image: 'syncer-local/no-such-image:1', v: b}\n")
    out = _apply(repo, state, ok=False)
    assert out.returncode == 1 and "could not be pulled" in out.stdout
    now = _containers(docker_api, project)["svc"]
    assert now["Id"] == old["Id"] and now["State"] == "running"


def test_port_already_allocated_fails_that_deployment_only(tmp_path: Path, project: str, docker_api: Any,
                                                          unmanaged: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocker = f"{project}-blocker"
    unmanaged.append(blocker)
    hc = docker_api.create_host_config(port_bindings={8080: port})
    docker_api.start(docker_api.create_container(IMAGE, name=blocker, command=["sleep", "600"], ports=[8080],
                                                 host_config=hc)["Id"])
    repo = simple_repo(tmp_path / "r", project, definitions={
        "web": WEB + f"  port: {port}\n".replace("params: {message: one}\n", "params:\n  message: one\n"),
        "other": "name: other\ntemplate: box\n"})
    (repo / "definitions/web.yaml").write_text(f"name: web\ntemplate: box\nparams:\n  message: one\n  port: {port}\n")
    out = _apply(tmp_path / "r", tmp_path / "s", ok=False)
    assert out.returncode == 1
    assert "port is already allocated" in out.stdout or "address already in use" in out.stdout
    assert set(_containers(docker_api, project)) == {"other"}


def test_invalid_mount_is_the_engines_message(tmp_path: Path, project: str, docker_api: Any) -> None:
    """A file bind-mounted over a directory of the image: the engine refuses it at start, and
    that refusal is the deployment's error. (A missing host path is no error: Docker makes it.)"""
    tpl = """
id: mnt
version: "1"
spec:
  image: syncer-local/busybox:latest
  command: [sleep, "60"]
  volumes: [{mount_path: /bin, host_path: /etc/hostname, read_only: true}]
"""
    repo = simple_repo(tmp_path / "r", project, templates={"mnt": tpl},
                       definitions={"m": f"name: {project}-m\ntemplate: mnt\n"},
                       extra="policy: {bind_mounts: [/etc/hostname]}\n")
    out = _apply(repo, tmp_path / "s", ok=False)
    assert out.returncode == 1 and "m: FAILED" in out.stdout
    assert re.search(r"(?i)not a directory|mount", out.stdout), out.stdout
    deps = _json(repo, tmp_path / "s", "deployments", "list")
    assert deps[0]["status"] == "failed" and deps[0]["error"]


DEP_TEMPLATE = """
id: slow
version: "1"
inputs: {type: object, properties: {wait: {type: integer, default: 0}}}
spec:
  image: syncer-local/busybox:latest
  command: [sh, -c, "trap 'exit 0' TERM; sleep ${inputs.wait}; touch /tmp/ready; while true; do sleep 1; done"]
  healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 2s, retries: 30}
"""


def test_dependents_start_after_dependencies_are_healthy(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, templates={"slow": DEP_TEMPLATE}, definitions={
        "db": "name: db\ntemplate: slow\nparams: {wait: 3}\n",
        "app": "name: app\ntemplate: slow\ndepends_on: [db]\n",
        "front": "name: front\ntemplate: box\ndepends_on: [app]\n",
    })
    _apply(repo, tmp_path / "s")
    live = _containers(docker_api, project)
    info = {n: docker_api.inspect_container(c["Id"]) for n, c in live.items()}
    started = {n: i["State"]["StartedAt"] for n, i in info.items()}
    db_healthy = [h["End"] for h in info["db"]["State"]["Health"]["Log"] if h["ExitCode"] == 0][0]
    assert started["app"] > db_healthy, (started, db_healthy)
    assert started["front"] > started["app"]
    assert info["app"]["State"]["Health"]["Status"] == "healthy"


def test_a_dependent_with_restart_true_is_restarted_once_its_dependency_is_recreated(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """Compose's `depends_on: {db: {restart: true}}`: after the apply recreates db, it restarts
    app (the same container, started again after db is up); a second apply leaves both alone,
    and a dependent without `restart` is not touched."""
    repo = simple_repo(tmp_path / "r", project, definitions={
        "db": "name: db\ntemplate: box\nparams: {message: one}\n",
        "app": "name: app\ntemplate: box\ndepends_on: {db: {condition: started, restart: true}}\n",
        "other": "name: other\ntemplate: box\ndepends_on: [db]\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    before = {n: docker_api.inspect_container(c["Id"]) for n, c in _containers(docker_api, project).items()}
    (repo / "definitions/db.yaml").write_text("name: db\ntemplate: box\nparams: {message: two}\n")
    planned = _json(repo, state, "plan")
    assert {a["container"]: a["action"] for a in planned["actions"]} == {
        "db": "recreate", "app": "restart", "other": "noop"}
    out = _apply(repo, state)
    assert "restarted app" in out.stdout, out.stdout
    after = {n: docker_api.inspect_container(c["Id"]) for n, c in _containers(docker_api, project).items()}
    assert after["app"]["Id"] == before["app"]["Id"] and after["app"]["State"]["Running"]
    assert after["app"]["State"]["StartedAt"] > after["db"]["State"]["StartedAt"] > before["app"]["State"]["StartedAt"]
    assert after["other"]["State"]["StartedAt"] == before["other"]["State"]["StartedAt"]
    again = _json(repo, state, "plan")
    assert {a["action"] for a in again["actions"]} == {"noop"}


def test_a_restart_left_undone_is_done_by_the_next_apply_and_a_rollback_restarts_dependents(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """A restart skipped (another dependency failed) is not lost: the dependency was made after
    the dependent started, so the next plan restarts it. `rollback db` (a plan of db alone)
    restarts db's dependents in the same apply."""
    box = "name: {0}\ntemplate: box\nparams: {{message: {1}}}\n"
    repo = simple_repo(tmp_path / "r", project, definitions={
        "db": box.format("db", "one"), "other": box.format("other", "one"),
        "app": "name: app\ntemplate: box\ndepends_on: {db: {restart: true}, other: {}}\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    (repo / "definitions/db.yaml").write_text(box.format("db", "two"))
    (repo / "definitions/other.yaml").write_text(box.format("other", "one")
                                                 + "overrides: {image: 'syncer-local/no-such-image:2'}\n")
    out = _apply(repo, state, ok=False)
    assert out.returncode == 1 and "skipped: dependency other failed" in out.stdout, out.stdout
    (repo / "definitions/other.yaml").write_text(box.format("other", "one"))
    planned = {a["container"]: (a["action"], a["cause"]) for a in _json(repo, state, "plan")["actions"]}
    assert planned["app"] == ("restart", "restarted after its dependency db (made after it started):"
                                         " depends_on restart: true"), planned
    _apply(repo, state)

    def started(name: str) -> str:
        return str(docker_api.inspect_container(_containers(docker_api, project)[name]["Id"])["State"]["StartedAt"])

    assert started("app") > started("db")
    assert {a["action"] for a in _json(repo, state, "plan")["actions"]} == {"noop"}

    rolled = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "db", "--auto-approve", *FAST)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "restarted app" in rolled.stdout, rolled.stdout
    assert started("app") > started("db")
    assert {a["action"] for a in _json(repo, state, "plan")["actions"]} == {"noop"}


def test_failure_skips_dependents_and_lets_independent_work_finish(tmp_path: Path, project: str,
                                                                   docker_api: Any) -> None:
    bad = "name: db\ntemplate: box\noverrides: {image: 'syncer-local/no-such-image:2'}\n"
    repo = simple_repo(tmp_path / "r", project, definitions={
        "db": bad, "app": "name: app\ntemplate: box\ndepends_on: [db]\n", "solo": "name: solo\ntemplate: box\n"})
    out = _apply(repo, tmp_path / "s", ok=False)
    assert out.returncode == 1 and "skipped: dependency db failed" in out.stdout
    assert set(_containers(docker_api, project)) == {"solo"}


def test_saved_plan_applies_and_a_stale_one_is_refused(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    state = tmp_path / "s"
    plan_file = tmp_path / "plan.json"
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--out", str(plan_file))
    assert out.returncode == 0
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    stale = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", str(plan_file))
    assert stale.returncode == 1 and "repository changed" in stale.stderr
    assert _containers(docker_api, project) == {}
    run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--out", str(plan_file))
    docker_api.create_container(IMAGE, name=f"{project}-x", command=["true"],
                                labels={"syncer.project": project, "syncer.definition": "x"})
    moved = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", str(plan_file))
    assert moved.returncode == 1 and "live containers changed" in moved.stderr
    run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--out", str(plan_file))
    good = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", str(plan_file), *FAST)
    assert good.returncode == 0, good.stdout + good.stderr
    assert set(_containers(docker_api, project)) == {"web"}


def test_no_terminal_and_no_auto_approve_refuses(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "apply")
    assert out.returncode == 1 and "--auto-approve" in out.stderr
    assert _containers(docker_api, project) == {}


def test_rollback_deploys_the_previous_revision_and_pins_it(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    state = tmp_path / "s"
    _apply(repo, state)
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    _apply(repo, state)
    # declined (no terminal to confirm on): nothing of it stays, so no later apply carries it out
    declined = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", *FAST)
    assert declined.returncode == 1 and "revision 3 not applied: dropped" in declined.stdout, declined.stdout
    assert [r["revision"] for r in _json(repo, state, "history", "web")] == [2, 1]
    assert "No changes." in _apply(repo, state).stdout
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", "--auto-approve", *FAST)
    assert out.returncode == 0, out.stdout + out.stderr
    c = _containers(docker_api, project)["web"]
    assert "MESSAGE=one" in docker_api.inspect_container(c["Id"])["Config"]["Env"]
    assert c["Labels"]["syncer.revision"] == "3"
    history = _json(repo, state, "history", "web")
    assert history[0]["revision"] == 3 and history[0]["rollback_of"] == 1
    assert "No changes." in _apply(repo, state).stdout  # pinned: git still says "two"
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "three"))  # git changes it: unpinned
    _apply(repo, state)
    c = _containers(docker_api, project)["web"]
    assert "MESSAGE=three" in docker_api.inspect_container(c["Id"])["Config"]["Env"]
    assert c["Labels"]["syncer.revision"] == "4"
    bad = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", "--to", "99", "--auto-approve")
    assert bad.returncode == 1 and "no revision 99" in bad.stderr


def test_a_rollback_across_a_rotated_secret_is_refused_not_run_with_todays_value(tmp_path: Path, project: str,
                                                                                  docker_api: Any) -> None:
    """syncer keeps no secret's old value: the revision that ran with the old one cannot run
    again with today's under its name (on Swarm, a secret named after the old value would
    hold the new one); it says so and changes nothing."""
    repo = simple_repo(tmp_path / "r", project,
                       definitions={"web": "name: web\ntemplate: box\nparams: {token: {secret: API_TOKEN}}\n"},
                       extra="secrets: {env: [API_TOKEN]}\n")
    state = tmp_path / "s"
    _apply(repo, state, env={"API_TOKEN": "r-canary-old"})
    _apply(repo, state, env={"API_TOKEN": "r-canary-new"})
    before = _containers(docker_api, project)["web"]
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", "--to", "1", "--auto-approve",
                  *FAST, env={"API_TOKEN": "r-canary-new"})
    assert out.returncode == 1 and "canary" not in out.stdout + out.stderr
    assert out.stderr.strip() == ("rollback of 'web' to revision 1: secret API_TOKEN changed since, and syncer never"
                                  " keeps a secret's old value: set it back to that value to roll back, or apply the"
                                  " current one")
    assert _containers(docker_api, project)["web"]["Id"] == before["Id"]
    assert [r["revision"] for r in _json(repo, state, "history", "web")] == [2, 1]
    back = run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", "--to", "1", "--auto-approve",
                   *FAST, env={"API_TOKEN": "r-canary-old"})
    assert back.returncode == 0, back.stdout + back.stderr
    env = docker_api.inspect_container(_containers(docker_api, project)["web"]["Id"])["Config"]["Env"]
    assert "TOKEN=r-canary-old" in env


def test_status_reports_drift(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB + "replicas: 2\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    status = _json(repo, state, "status")
    [row] = status["definitions"]
    assert row["in_sync"] and row["revision"] == 1 and len(row["containers"]) == 2
    [server] = status["servers"]
    assert server["name"] == "local" and server["reachable"] and server["engine_version"]
    docker_api.remove_container(_containers(docker_api, project)["web-2"]["Id"], force=True)
    [row] = _json(repo, state, "status")["definitions"]
    assert not row["in_sync"] and row["drift"] == ["create web-2"]


def test_secret_canary_never_leaves(tmp_path: Path, project: str, docker_api: Any) -> None:
    canary = "CANARY-9d2f-apply-s3cr3t"
    definition = "name: web\ntemplate: box\nparams:\n  token: {secret: CANARY_TOKEN}\n"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": definition},
                       extra="secrets: {env: [CANARY_TOKEN]}\n")
    state = tmp_path / "s"
    env = {"CANARY_TOKEN": canary}
    outputs = [_apply(repo, state, env=env)]
    ident = _containers(docker_api, project)["web"]["Id"]
    assert f"TOKEN={canary}" in docker_api.inspect_container(ident)["Config"]["Env"]  # reached Docker
    outputs.append(_apply(repo, state, env={"CANARY_TOKEN": canary + "-2"}))  # rotated: recreate
    for args in (("status",), ("status", "--json"), ("history",), ("history", "--json"), ("plan", "--json"),
                 ("deployments", "list", "--json")):
        outputs.append(run_cli("--repo", str(repo), "--state-dir", str(state), *args, env=env))
    outputs.append(run_cli("--repo", str(repo), "--state-dir", str(state), "rollback", "web", "--auto-approve",
                           *FAST, env=env))
    for dep in _json(repo, state, "deployments", "list"):
        outputs.append(run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "show", dep["id"]))
    for o in outputs:
        assert o.returncode == 0, o.stdout + o.stderr
        assert canary not in o.stdout + o.stderr
    for f in state.rglob("*"):
        if f.is_file():
            assert canary.encode() not in f.read_bytes(), f


VOL = """
id: vol
version: "1"
spec:
  image: syncer-local/busybox:latest
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  volumes: [{mount_path: /data}]
"""


def test_volumes_are_kept_unless_prune_volumes(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, templates={"vol": VOL}, definitions={
        "a": f"name: {project}-a\ntemplate: vol\n", "b": f"name: {project}-b\ntemplate: vol\n"})
    state = tmp_path / "s"
    _apply(repo, state)
    names = {v["Name"] for v in docker_api.volumes()["Volumes"] or []}
    assert {f"{project}-a_1", f"{project}-b_1"} <= names
    (repo / "definitions/a.yaml").unlink()
    _apply(repo, state)
    assert f"{project}-a_1" in {v["Name"] for v in docker_api.volumes()["Volumes"] or []}
    (repo / "definitions/b.yaml").unlink()
    _apply(repo, state, "--prune-volumes")
    left = {v["Name"] for v in docker_api.volumes()["Volumes"] or []}
    assert f"{project}-b_1" not in left and f"{project}-a_1" in left
    docker_api.remove_volume(f"{project}-a_1")


def test_progress_on_a_terminal_is_live(tmp_path: Path, project: str, docker_api: Any) -> None:
    import shlex
    import subprocess
    import sys

    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    cmd = shlex.join([sys.executable, "-m", "syncer", "--repo", str(repo), "--state-dir", str(tmp_path / "s"),
                      "apply", "--auto-approve", *FAST])
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    assert "\x1b[" in out.stdout and "definition" in out.stdout  # rich redraws a table
    assert set(_containers(docker_api, project)) == {"web"}



# an app's image (with a HEALTHCHECK for its server) running a one-shot command: the apply
# waits for "healthy", and the container ends first
QUICK = f"""
id: quick
version: "1.0"
spec:
  image: {HEALTHY_IMAGE}
  command: [sh, -c, "echo migrated"]
  restart: "no"
"""


def test_a_one_shot_that_ends_before_it_is_healthy_under_restart_no_ran_and_stays_exited(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """A Compose one-shot (`restart: "no"`) run with an image whose HEALTHCHECK is for its
    server: the apply waited for "healthy", saw the container exit 0, and failed the
    deployment ("the container exited (code 0)"); every later apply ran it again. It ran to
    completion, and plans leave it exited until its spec changes (no watch needed)."""
    name = f"{project}-migrate"
    repo = simple_repo(tmp_path / "r", project, templates={"quick": QUICK},
                       definitions={"migrate": f"name: {name}\ntemplate: quick\n"})
    out = _apply(repo, tmp_path / "s")
    assert "ran to completion (exit 0; restart: no)" in out.stdout, out.stdout
    [seed] = _containers(docker_api, project).values()
    assert seed["State"] == "exited" and docker_api.inspect_container(seed["Id"])["State"]["ExitCode"] == 0
    plan = json.loads(run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "plan", "--json").stdout)
    assert [(a["action"], a["cause"]) for a in plan["actions"] if a["container"] == name] == [
        ("noop", "exited 0 on its own, as its restart policy allows (start it through syncer to run it again)")]
    # without a restart policy that lets it end, a container that exits is a failed deployment
    (repo / "templates/quick.yaml").write_text(QUICK.replace('  restart: "no"\n', ""))
    failed = _apply(repo, tmp_path / "s", ok=False)
    assert failed.returncode == 1 and "the container exited (code 0)" in failed.stdout


CRASHING = f"""
id: crashing
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "echo 'FATAL: config invalid' >&2; exit 1"]
  restart: unless-stopped
  healthcheck: {{test: [CMD, "true"], interval: 1s, retries: 1}}
"""


def test_a_container_its_restart_policy_keeps_restarting_fails_with_its_exit_and_output(
        tmp_path: Path, project: str) -> None:
    """Under a restart policy Docker lists a crashing container running and unhealthy with an
    empty probe log: the failure said "the container is unhealthy: no probe output", and the
    container (removed by the failed create) could no longer be asked why."""
    repo = simple_repo(tmp_path / "r", project, templates={"crashing": CRASHING},
                       definitions={"c": f"name: {project}-c\ntemplate: crashing\n"})
    failed = _apply(repo, tmp_path / "s", ok=False)
    assert "the container keeps exiting (code 1; restarted" in failed.stdout, failed.stdout
    assert "by its restart policy): FATAL: config invalid" in failed.stdout, failed.stdout
    assert "no probe output" not in failed.stdout


def test_a_one_shot_without_a_healthcheck_that_ends_during_the_apply_is_seen_by_it(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """`restart: "no"`, no healthcheck: the apply's wait ends as soon as the container runs, and
    the seed exits a moment later, while the apply still waits for another container to be
    healthy. The next plan started it again (not in sync after an apply) and the apply after
    that ran it a second time; watch alone could tell. The apply asks again at its end."""
    name = f"{project}-seed"
    quick = QUICK.replace(HEALTHY_IMAGE, IMAGE).replace("echo migrated", "sleep 0.3; echo seeded once")
    repo = simple_repo(tmp_path / "r", project, templates={"quick": quick, "hc": HEALTH_CHECKED}, definitions={
        "seed": f"name: {name}\ntemplate: quick\n",
        "web": f"name: {project}-web\ntemplate: hc\nparams: {{image: '{IMAGE}', v: a}}\n"})
    _apply(repo, tmp_path / "s")
    plan = json.loads(run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "plan", "--json").stdout)
    assert [(a["action"], a["cause"]) for a in plan["actions"] if a["container"] == name] == [
        ("noop", "exited 0 on its own, as its restart policy allows (start it through syncer to run it again)")]
    _apply(repo, tmp_path / "s")
    assert docker_api.logs(name).decode().count("seeded once") == 1


def test_a_container_without_a_healthcheck_that_keeps_crashing_within_the_settle_time_fails(
        tmp_path: Path, project: str) -> None:
    """`--settle` (a container without a healthcheck must stay running that long): Docker lists
    one its restart policy keeps restarting as running, so it counted as up (QA)."""
    crashing = CRASHING.replace("  healthcheck: {test: [CMD, \"true\"], interval: 1s, retries: 1}\n", "") \
        .replace("echo 'FATAL: config invalid' >&2; exit 1", "sleep 0.3; echo 'panic: boom' >&2; exit 11")
    assert "healthcheck" not in crashing
    repo = simple_repo(tmp_path / "r", project, templates={"crashing": crashing},
                       definitions={"c": f"name: {project}-c\ntemplate: crashing\n"})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "apply", "--auto-approve",
                  "--settle", "3", "--health-timeout", "12")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the container keeps exiting (code 11; restarted" in out.stdout and "panic: boom" in out.stdout, out.stdout
