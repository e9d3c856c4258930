"""Issue 12, point 2 (last sentence): one apply at a time per project across state dirs.

Two CI runners share no state dir, so an apply that changes something also takes the lock on
the servers: a marker container `<project>.syncer-lock`, created (atomically) by the holder,
removed at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import IMAGE, REPO_ROOT, run_cli, simple_repo, wait_until

SLOW = """
id: slow
version: "1"
spec:
  image: syncer-local/busybox:latest
  command: [sh, -c, "sleep 4; touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 1; done"]
  healthcheck: {test: [CMD-SHELL, "test -f /tmp/ready"], interval: 1s, retries: 60}
"""


def _lock(api: Any, project: str) -> list[dict[str, Any]]:
    return list(api.containers(all=True, filters={"name": f"^/{project}.syncer-lock$"}))


def _apply(repo: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve", "--stop-timeout", "1")


def test_a_second_state_dir_cannot_apply_while_the_first_does(tmp_path: Path, project: str,
                                                              docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, templates={"slow": SLOW},
                       definitions={"slow": f"name: {project}-slow\ntemplate: slow\n",
                                    # the second wave waits for slow's health: the first apply is
                                    # still running, with changes left, when the second plans
                                    "after": f"name: {project}-after\ntemplate: box\n"
                                             f"depends_on: [{project}-slow]\n"})
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_REPO"}
    first = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "--state-dir", str(tmp_path / "a"),
                              "apply", "--auto-approve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=env, cwd=REPO_ROOT)
    try:
        wait_until(lambda: docker_api.containers(all=True, filters={"name": f"^/{project}-slow"}), 60,
                   message="the first apply to create its container")
        [held] = _lock(docker_api, project)
        second = _apply(repo, tmp_path / "b")
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr and "since" in second.stderr
        assert "Traceback" not in second.stderr
        out, _ = first.communicate(timeout=120)
        assert first.returncode == 0, out
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert _lock(docker_api, project) == []  # released
    again = _apply(repo, tmp_path / "b")
    assert again.returncode == 0 and "No changes." in again.stdout, again.stdout + again.stderr
    assert held["Labels"]["syncer.marker-of"] == project and "syncer.project" not in held["Labels"]


def _fake_holder(api: Any, project: str, **labels: str) -> None:
    api.create_container(IMAGE, ["true"], name=f"{project}.syncer-lock",
                         labels={"syncer.marker": "lock", "syncer.marker-of": project, **labels})


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path: Path, project: str, docker_api: Any) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now
    _fake_holder(docker_api, project, **{"syncer.lock.host": socket.gethostname(),
                                         "syncer.lock.pid": str(dead.pid), "syncer.lock.since": "2026-01-01T00:00:00Z"})
    repo = simple_repo(tmp_path / "r", project, definitions={"web": f"name: {project}-web\ntemplate: box\n"})
    out = _apply(repo, tmp_path / "s")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _lock(docker_api, project) == [] and docker_api.containers(filters={"name": f"^/{project}-web$"})


def test_a_holder_past_its_lease_is_reported_with_how_to_break_it(tmp_path: Path, project: str,
                                                                  docker_api: Any) -> None:
    _fake_holder(docker_api, project, **{"syncer.lock.host": "ci-runner-7", "syncer.lock.pid": "4242",
                                         "syncer.lock.since": "2026-01-01T00:00:00Z",
                                         "syncer.lock.purpose": "syncer apply (cli)"})
    repo = simple_repo(tmp_path / "r", project, definitions={"web": f"name: {project}-web\ntemplate: box\n"})
    out = _apply(repo, tmp_path / "s")
    assert out.returncode == 1
    assert "pid 4242 on ci-runner-7 (syncer apply (cli)) since 2026-01-01T00:00:00Z" in out.stderr
    assert f"docker rm {project}.syncer-lock" in out.stderr
    assert len(_lock(docker_api, project)) == 1  # a live-looking holder elsewhere is never removed
    assert not docker_api.containers(all=True, filters={"label": f"syncer.project={project}"})  # nothing done


def test_a_lock_this_process_failed_to_release_is_taken_over_by_it(tmp_path: Path, project: str,
                                                                  docker_api: Any) -> None:
    """`syncer watch` is one long-lived process: when a server goes away mid-apply, the release
    fails and the lock stays behind with the watch's own (live) pid. Once the server is back,
    the watch must take it over, not lock itself out for good; a lock still held by this process
    keeps excluding a second apply of it."""
    import pytest

    from syncer.core.errors import LockHeld
    from syncer.engine.project import Context, load
    from syncer.engine.serverlock import ServerLock

    repo = simple_repo(tmp_path / "r", project, definitions={"web": f"name: {project}-web\ntemplate: box\n"})
    loaded = load(Context(repo=repo, state_dir=tmp_path / "s"))
    _fake_holder(docker_api, project, **{"syncer.lock.host": socket.gethostname(), "syncer.lock.pid": str(os.getpid()),
                                         "syncer.lock.since": "2026-01-01T00:00:00Z",
                                         "syncer.lock.token": "released-by-nobody"})
    with ServerLock(loaded, "syncer watch"):
        [held] = _lock(docker_api, project)
        assert held["Labels"]["syncer.lock.token"] != "released-by-nobody"
        with pytest.raises(LockHeld) as info:
            ServerLock(loaded, "syncer watch").__enter__()
        assert f"pid {os.getpid()}" in str(info.value)
        assert len(_lock(docker_api, project)) == 1
    assert _lock(docker_api, project) == []


def test_a_self_heal_takes_no_lock_unless_another_apply_holds_it(tmp_path: Path, project: str,
                                                                 docker_api: Any) -> None:
    """Restarting a killed container of the deployed revision is a self-heal: no lock is
    created (a create and a remove would double the time it stays down), but a lock another
    apply holds still stops it."""
    import time

    name = f"{project}-web"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": f"name: {name}\ntemplate: box\n"})
    assert _apply(repo, tmp_path / "s").returncode == 0
    docker_api.kill(name)
    t0 = time.time_ns()
    healed = _apply(repo, tmp_path / "s")
    assert healed.returncode == 0 and "start" in healed.stdout, healed.stdout + healed.stderr
    assert docker_api.inspect_container(name)["State"]["Running"]
    made = docker_api.events(since=t0 // 10**9 - 1, until=int(time.time()) + 1, decode=True,
                             filters={"type": ["container"], "event": ["create"]})
    locks = [e for e in made if e["Actor"]["Attributes"].get("name") == f"{project}.syncer-lock"]
    assert not [e for e in locks if e["timeNano"] > t0]
    _fake_holder(docker_api, project, **{"syncer.lock.host": "ci-runner-7", "syncer.lock.pid": "4242",
                                         "syncer.lock.since": "2026-01-01T00:00:00Z"})
    docker_api.kill(name)
    refused = _apply(repo, tmp_path / "s")
    assert refused.returncode == 1 and "pid 4242 on ci-runner-7" in refused.stderr, refused.stdout + refused.stderr
    assert not docker_api.inspect_container(name)["State"]["Running"]


def test_a_plan_the_live_state_moved_under_is_planned_again_and_confirmed(tmp_path: Path, project: str,
                                                                         docker_api: Any) -> None:
    """Between the plan and the lock the live state moved (another apply finished, or Docker
    was still carrying out what a killed apply asked): the plan made under the lock is shown
    and confirmed again, and applied — not refused as stale (a saved plan still is)."""
    from syncer.engine import facade as engine
    from syncer.engine.options import ApplyOptions

    web, api = f"{project}-web", f"{project}-api"
    defs = {"web": f"name: {web}\ntemplate: box\n", "api": f"name: {api}\ntemplate: box\n"}
    repo = simple_repo(tmp_path / "r", project, definitions=defs)
    assert _apply(repo, tmp_path / "s").returncode == 0
    (repo / "definitions/web.yaml").write_text(f"name: {web}\ntemplate: box\nparams: {{message: moved}}\n")
    seen: list[list[tuple[str, str]]] = []

    def confirm(p: Any) -> bool:
        seen.append(sorted((a.action, a.container) for a in p.actions if a.action != "noop"))
        if len(seen) == 1:
            docker_api.stop(api, timeout=1)  # the live state moves before the lock is taken
        return True

    ctx = engine.Context(repo=repo, state_dir=tmp_path / "s")
    report = engine.apply(ctx, options=ApplyOptions(stop_timeout=1), confirm=confirm)
    assert seen == [[("recreate", web)], [("recreate", web), ("start", api)]]
    assert report.ok and docker_api.inspect_container(api)["State"]["Running"]
    assert docker_api.inspect_container(web)["Config"]["Env"].count("MESSAGE=moved") == 1


def test_a_definition_in_sync_is_active_in_a_new_state_dir_once_an_apply_records_it(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """A second CI runner (its own state dir) whose apply starts one definition records the
    revision of the others, in sync already: they are `active` at it, not `pending` until
    some later apply settles them."""
    import json

    web, worker = f"{project}-web", f"{project}-worker"
    repo = simple_repo(tmp_path / "r", project, definitions={
        "web": f"name: {web}\ntemplate: box\n", "worker": f"name: {worker}\ntemplate: box\n"})
    assert _apply(repo, tmp_path / "first").returncode == 0
    docker_api.stop(web, timeout=1)
    assert _apply(repo, tmp_path / "second").returncode == 0
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "second"), "status", "--json")
    rows = {d["definition"]: d for d in json.loads(out.stdout)["definitions"]}
    assert (rows[worker]["status"], rows[worker]["revision"]) == ("active", 1), rows[worker]
    assert rows[web]["status"] == "active"
    # a third runner whose apply has nothing to do learns them too
    assert _apply(repo, tmp_path / "third").returncode == 0
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "third"), "status", "--json")
    rows = {d["definition"]: d for d in json.loads(out.stdout)["definitions"]}
    assert {(r["status"], r["revision"]) for r in rows.values()} == {("active", 1)}, rows


def test_two_server_entries_for_one_engine_are_named_not_reported_as_another_apply(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """Two entries reaching one engine: the apply met its own lock there and said "another
    apply holds the project's lock" with its own pid. It says what is wrong; nothing is made,
    and the lock it took is released."""
    repo = simple_repo(tmp_path / "r", project, definitions={"web": f"name: {project}-web\ntemplate: box\n"},
                       extra="servers:\n  local: {}\n  again: {docker: 'unix:///var/run/docker.sock'}\n")
    out = _apply(repo, tmp_path / "s")
    assert out.returncode == 1
    assert out.stderr.strip() == ("server 'local' reaches a Docker engine this apply already locked through"
                                  " server 'again': two server entries name one engine (keep one)"), out.stderr
    assert _lock(docker_api, project) == []
    assert not docker_api.containers(all=True, filters={"label": f"syncer.project={project}"})
