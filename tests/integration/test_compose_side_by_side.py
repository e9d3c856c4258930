"""Two Compose applications, each with its `web` and `db`, imported into two syncer
repositories with `--name-prefix` and applied on one engine: four containers run, as under
Compose (`shop-db-1`, `blog-db-1`), and each `web` reaches its own application's `db` by
the service's name. (Without a prefix the second plan is a `conflict`: `db` is the other
project's container.) `${COMPOSE_PROJECT_NAME}` reads as the project's name, as the real
`docker compose config` reads it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import IMAGE, git_init, remove_project, run_cli, unique

LOOP = "command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]"
APP = f"""services:
  web:
    image: {IMAGE}
    {LOOP}
    depends_on: [db]
    environment:
      APP: ${{COMPOSE_PROJECT_NAME}}
  db:
    image: {IMAGE}
    {LOOP}
"""


def _compose_binary() -> Path:
    import compose  # type: ignore[import-untyped]

    return Path(compose.__file__).parent / "docker-compose"


def _resolved(api: Any, container: str, name: str) -> str:
    """The address `name` resolves to inside `container` (the libc resolver, as an
    application's: busybox's ping prints it before any reply)."""
    run = api.exec_create(container, ["ping", "-c", "1", "-W", "1", name])
    out = api.exec_start(run["Id"]).decode()
    found = re.search(r"PING \S+ \(([0-9.]+)\)", out)
    assert found, out
    return found.group(1)


def _address(api: Any, container: str) -> str:
    networks = api.inspect_container(container)["NetworkSettings"]["Networks"]
    assert len(networks) == 1, networks  # (the project's network only)
    return str(next(iter(networks.values()))["IPAddress"])


@pytest.fixture
def apps(tmp_path: Path, docker_api: Any) -> Any:
    tag = unique("hpx")  # `hpx-<hex>`: this run's own Docker objects
    projects = {app: f"{tag}-{app}" for app in ("shop", "blog")}
    yield tag, projects
    for project in projects.values():
        remove_project(docker_api, project)


def test_two_compose_apps_with_a_db_each_run_side_by_side_and_each_web_reaches_its_own_db(
        tmp_path: Path, docker_api: Any, apps: Any) -> None:
    tag, projects = apps
    for app, project in projects.items():
        folder = tmp_path / f"hpx-{app}"
        folder.mkdir()
        (folder / "compose.yaml").write_text(APP)
        out = tmp_path / f"{app}-repo"
        imported = run_cli("import", str(folder / "compose.yaml"), "--out", str(out), "--project", project,
                           "--name-prefix", f"{project}-")
        assert imported.returncode == 0, imported.stdout + imported.stderr
        git_init(out)
        applied = run_cli("--repo", str(out), "--state-dir", str(tmp_path / f"{app}-state"), "apply",
                          "--auto-approve", "--stop-timeout", "1")
        assert applied.returncode == 0, applied.stdout + applied.stderr

    running = {c["Names"][0].lstrip("/") for c in docker_api.containers(filters={"name": tag, "status": "running"})}
    assert running == {f"{p}-{s}" for p in projects.values() for s in ("web", "db")}
    for project in projects.values():
        assert _resolved(docker_api, f"{project}-web", "db") == _address(docker_api, f"{project}-db")
    assert _address(docker_api, f"{projects['shop']}-db") != _address(docker_api, f"{projects['blog']}-db")


def test_compose_project_name_is_the_project_name_compose_gives_it(
        tmp_path: Path, docker_api: Any, apps: Any) -> None:
    _, projects = apps
    project = projects["shop"]
    folder = tmp_path / "hpx-shop"
    folder.mkdir()
    (folder / "compose.yaml").write_text(APP)
    oracle = subprocess.run([str(_compose_binary()), "-p", project, "config", "--format", "json"], cwd=folder,
                            capture_output=True, text=True, timeout=120, check=True)
    want = json.loads(oracle.stdout)["services"]["web"]["environment"]["APP"]
    assert want == project
    out = tmp_path / "repo"
    imported = run_cli("import", str(folder / "compose.yaml"), "--out", str(out), "--project", project,
                       "--name-prefix", f"{project}-")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    git_init(out)
    applied = run_cli("--repo", str(out), "--state-dir", str(tmp_path / "state"), "apply", "--auto-approve",
                      "--stop-timeout", "1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    env = docker_api.inspect_container(f"{project}-web")["Config"]["Env"]
    assert f"APP={want}" in env
