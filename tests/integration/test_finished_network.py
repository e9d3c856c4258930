"""A one-shot that ran to completion (exit 0 under `restart: "no"`: finished, left exited) whose
project network was removed by hand, on a real engine. The plan said noop (so did watch's, on
the network's `destroy`), and it could never start (`network … not found`). It is made again on
its spec's networks and left unstarted (a completed one-shot does not run again because a
network went), and starting it through syncer works. A completed job is not run again for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import HEALTHY_IMAGE, IMAGE, git_init, run_cli, simple_repo, wait_until
from tests.integration.test_apply_docker import QUICK
from tests.watching import Watch, start

pytestmark = pytest.mark.parametrize("project", ["hbn"], indirect=True)  # (projects named hbn-…)

ONESHOT = QUICK.replace(HEALTHY_IMAGE, IMAGE).replace("echo migrated", "echo ran once")  # restart: "no"
JOB = f"""
id: job
version: "1.0"
kind: job
spec:
  image: {IMAGE}
  command: [sh, -c, "echo job ran"]
"""


def _repo(tmp_path: Path, project: str) -> tuple[Path, Path]:
    """`<project>-once`, a one-shot under `restart: "no"`, and `<project>-job`, a job: both on the project network."""
    repo = simple_repo(tmp_path / "repo", project, templates={"quick": ONESHOT, "job": JOB}, definitions={
        "once": f"name: {project}-once\ntemplate: quick\n", "job": f"name: {project}-job\ntemplate: job\n"})
    git_init(repo)
    return repo, tmp_path / "state"


def _cli(repo: Path, state: Path, *args: str) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def _apply(repo: Path, state: Path) -> None:
    out = _cli(repo, state, "apply", "--auto-approve", "--stop-timeout", "1")
    assert out.returncode == 0, out.stdout + out.stderr


def _changes(repo: Path, state: Path) -> dict[str, tuple[str, str, bool]]:
    out = _cli(repo, state, "plan", "--json")
    assert out.returncode == 0, out.stderr
    return {a["container"]: (a["action"], a["cause"], a.get("stay_stopped", False))
            for a in json.loads(out.stdout)["actions"] if a["action"] != "noop"}


def _state(api: Any, name: str) -> tuple[str, str, int]:
    s = api.inspect_container(name)
    return s["Id"], s["State"]["Status"], s["State"]["ExitCode"]


def test_a_finished_one_shot_on_a_removed_network_is_made_again_left_stopped_and_starts_through_syncer(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    once, job = f"{project}-once", f"{project}-job"
    repo, state = _repo(tmp_path, project)
    _apply(repo, state)
    first, status, code = _state(docker_api, once)
    assert (status, code) == ("exited", 0) and _changes(repo, state) == {}  # finished: left exited
    job_id = _state(docker_api, job)[0]
    docker_api.remove_network(project)  # nothing runs on it: Docker lets anyone remove it

    assert _changes(repo, state) == {
        project: ("network create", "network absent", False),
        once: ("recreate", (f"not connected to network {project} (changed outside syncer): made again on its spec's"
                            " networks, left stopped: it ran to completion (exit 0) as its restart policy allows"
                            " (start it through syncer to run it again)"), True)}  # (the completed job: no run)
    _apply(repo, state)
    made, status, _ = _state(docker_api, once)
    assert made != first and status == "created"  # made again, not run again
    assert docker_api.logs(once) == b"" and _changes(repo, state) == {}  # (and the next apply leaves it so)
    _apply(repo, state)
    assert _state(docker_api, once) == (made, "created", 0) and _state(docker_api, job)[0] == job_id

    assert _cli(repo, state, "instances", "start", once).returncode == 0  # on purpose: it runs, on the new network
    wait_until(lambda: docker_api.inspect_container(once)["State"]["Status"] == "exited", 30, message="its run")
    assert docker_api.logs(once).decode().count("ran once") == 1
    joined = docker_api.inspect_container(once)["NetworkSettings"]["Networks"]
    assert joined[project]["NetworkID"] == docker_api.inspect_network(project)["Id"]


def test_watch_makes_a_finished_one_shot_on_a_removed_network_again_without_running_it(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    once = f"{project}-once"
    repo, state = _repo(tmp_path, project)
    w = start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1h")
    wait_until(lambda: "plan: " in w.text() and _exited_0(docker_api, once), 60, message=f"the first apply ({w.log})")
    first = docker_api.inspect_container(once)["Id"]
    net = docker_api.inspect_network(project)["Id"]
    docker_api.remove_network(project)  # (only the network's `destroy` event tells watch: no resync for an hour)

    def made_again() -> bool:
        try:
            made = docker_api.inspect_container(once)
            return bool(made["Id"] != first and made["State"]["Status"] == "created"
                        and docker_api.inspect_network(project)["Id"] != net)
        except Exception:  # noqa: BLE001 - the network not made yet, or the container between remove and rename
            return False

    wait_until(made_again, 60, message=f"{once} made again on the new network, not started ({w.log})")
    assert docker_api.logs(once) == b"" and _changes(repo, state) == {}
    assert w.stop() == 0
    assert docker_api.inspect_container(once)["State"]["Status"] == "created"  # (nothing in watch started it)


def _exited_0(api: Any, name: str) -> bool:
    try:
        s = api.inspect_container(name)["State"]
    except Exception:  # noqa: BLE001 - not made yet
        return False
    return bool(s["Status"] == "exited" and s["ExitCode"] == 0)
