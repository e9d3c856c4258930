"""`external: true` named volumes on the real engine (QA round 1, scenario s5): a missing one
is refused with its located line and nothing is made (Docker would make it empty on create,
Compose refuses: `external volume "x" not found`); an existing one is mounted and never
removed, not even by `apply --prune-volumes`; the Compose import carries the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import IMAGE, run_cli, wait_until, write_files
from tests.integration.test_swarm import LOOP, _api, _apply, _repo as _swarm_repo, _running, sproject, swarm

__all__ = ["sproject", "swarm"]  # (the Swarm manager's fixtures, shared with test_swarm.py)

TEMPLATE = """\
id: app
version: "1.0"
spec:
  image: IMAGE
  command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
  volumes:
    - {name: PROJECT-ext, mount_path: /ext, external: true}
    - {name: PROJECT-own, mount_path: /own}
"""


def _repo(root: Path, project: str) -> Path:
    return write_files(root, {
        "syncer.yaml": f"project: {project}\n",
        "templates/app.yaml": TEMPLATE.replace("IMAGE", IMAGE).replace("PROJECT", project),
        "definitions/d.yaml": f"name: {project}-app\ntemplate: app\n",
    })


def _cli(repo: Path, *args: str) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(repo / ".state"), *args)
    assert "Traceback" not in out.stdout + out.stderr
    return out


def _volumes(api: Any, project: str) -> set[str]:
    return {v["Name"] for v in api.volumes(filters={"name": project}).get("Volumes") or []}


@pytest.mark.parametrize("project", ["h8"], indirect=True)
def test_a_missing_external_volume_is_refused_located_and_nothing_is_made(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path / "r", project)
    line = (f"templates/app.yaml:7:7: volume '{project}-ext' is external and does not exist on server 'local'"
            " (create it, or drop `external: true`)")
    for command in (["plan"], ["apply", "--auto-approve"]):
        out = _cli(repo, *command)
        assert (out.returncode, out.stderr.strip()) == (1, line), out.stdout + out.stderr
    assert _volumes(docker_api, project) == set()
    assert docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]}) == []


@pytest.mark.parametrize("project", ["h8"], indirect=True)
def test_an_existing_external_volume_is_mounted_and_never_pruned(tmp_path: Path, project: str,
                                                                 docker_api: Any) -> None:
    docker_api.create_volume(f"{project}-ext")  # (the project fixture removes it at the end)
    repo = _repo(tmp_path / "r", project)
    out = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    [row] = docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    mounts = {m["Destination"]: (m["Type"], m["Name"]) for m in docker_api.inspect_container(row["Id"])["Mounts"]}
    assert mounts == {"/ext": ("volume", f"{project}-ext"), "/own": ("volume", f"{project}-own")}
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    assert [a["action"] for a in plan["actions"]] == ["noop"]
    (repo / "definitions/d.yaml").unlink()  # prune removes the container, and with its own volume only
    out = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1", "--prune-volumes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]}) == []
    assert _volumes(docker_api, project) == {f"{project}-ext"}


@pytest.mark.parametrize("project", ["h8"], indirect=True)
def test_the_import_carries_external_and_its_plan_refuses_a_missing_one(tmp_path: Path, project: str,
                                                                        docker_api: Any) -> None:
    write_files(tmp_path, {"compose.yaml": f"""\
name: {project}
services:
  app:
    image: {IMAGE}
    command: sleep 3600
    volumes: [ext:/ext]
volumes:
  ext: {{external: true, name: {project}-ext}}
"""})
    out = run_cli("import", str(tmp_path / "compose.yaml"), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout + out.stderr
    repo = tmp_path / "out"
    assert _cli(repo, "validate").returncode == 0
    out = _cli(repo, "plan")
    assert out.returncode == 1 and f"volume '{project}-ext' is external and does not exist" in out.stderr, out.stderr
    assert _volumes(docker_api, project) == set()


@pytest.mark.parametrize("project", ["h8"], indirect=True)
def test_on_swarm_the_managers_node_is_checked(tmp_path: Path, swarm: Any, sproject: str) -> None:
    """A service mounting an external volume: refused while the manager's node lacks it, then
    deployed with it (a task on another node is not checked: docs/repository.md)."""
    api, name, volume = _api(swarm), f"x-{sproject[3:]}", f"{sproject}-ext"
    ext = f"""
        id: ext
        version: "1.0"
        spec:
          image: {IMAGE}
          command: {LOOP}
          volumes: [{{name: {volume}, mount_path: /ext, external: true}}]
        """
    repo = _swarm_repo(tmp_path, sproject, swarm, {name: f"name: {name}\ntemplate: ext\n"}, local=False,
                 templates={"templates/ext.yaml": ext})
    out = run_cli("--repo", str(repo), "plan")
    assert (out.returncode, out.stderr.strip()) == (1, f"templates/ext.yaml:6:13: volume '{volume}' is external and"
                                                       " does not exist on server 'cluster' (create it, or drop"
                                                       " `external: true`)"), out.stdout + out.stderr
    assert api.volumes(filters={"name": volume}).get("Volumes") in (None, [])
    api.create_volume(volume)
    try:
        out = _apply(repo)
        assert out.returncode == 0, out.stdout + out.stderr
        [task] = _running(api, name)
        [mount] = task["Spec"]["ContainerSpec"]["Mounts"]
        assert (mount["Type"], mount["Source"], mount["Target"]) == ("volume", volume, "/ext")
    finally:
        swarm.remove_project(sproject)
        wait_until(lambda: not api.containers(all=True, filters={"label": f"com.docker.swarm.service.name={name}"}),
                   timeout=60, message="the service's tasks gone")
        api.remove_volume(volume, force=True)
