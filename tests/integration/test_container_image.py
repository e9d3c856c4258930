"""The container image (issue 13): the project's Dockerfile, built here FROM the local
Debian base (scripts/build-base-image) with wheels built on the host, runs `syncer plan` and
`syncer watch` against the host's engine socket and a mounted repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO_ROOT, simple_repo, unique, wait_until

BASE = "syncer-local/debian-python:bookworm"
SOCKET = "/var/run/docker.sock"


def _sh(*cmd: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _sh("bash", str(REPO_ROOT / "scripts" / "build-base-image"))
    context = tmp_path_factory.mktemp("image-context")
    for name in ("Dockerfile", "pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, context / name)
    shutil.copytree(REPO_ROOT / "syncer", context / "syncer", ignore=shutil.ignore_patterns("__pycache__"))
    # wheels of syncer and its dependencies, built on the host (pip inside a container here
    # cannot use the registries: their certificate is not trusted there)
    _sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(context / "wheels"), str(context))
    tag = f"syncer-test-image:{unique('i')}"
    # the wheels stage tagged too, so that it goes with the image (untagged, each run left
    # a dangling 400 MB stage behind); the second build takes it from the build cache
    build = ["docker", "build", "--quiet", "--build-arg", f"BASE={BASE}"]
    _sh(*build, "--target", "wheels", "-t", f"{tag}-wheels", str(context))
    _sh(*build, "-t", tag, str(context))
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag, f"{tag}-wheels"], capture_output=True)


def _run(image: str, repo: Path, *args: str, detach: bool = False, name: str | None = None) -> str:
    cmd = ["docker", "run", "--rm", "-v", f"{SOCKET}:{SOCKET}", "-v", f"{repo}:/repo"]
    if detach:
        cmd += ["-d", "--name", str(name)]
    return _sh(*cmd, image, *args).stdout


def test_the_image_has_syncer_as_entrypoint_and_git_and_ssh(image: str) -> None:
    assert "Usage: syncer" in _sh("docker", "run", "--rm", image).stdout
    tools = _sh("docker", "run", "--rm", "--entrypoint", "sh", image, "-c", "git --version && ssh -V 2>&1").stdout
    assert "git version" in tools and "OpenSSH" in tools


def test_plan_and_watch_in_the_image_drive_the_hosts_engine(image: str, tmp_path: Path, project: str,
                                                          docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "repo", project,
                       definitions={"web": f"name: {project}-web\ntemplate: box\nparams: {{message: hi}}\n"})
    assert f"create   {project}-web" in _run(image, repo, "plan")
    watcher = f"{project}-watcher"
    _run(image, repo, "watch", "--resync", "1h", detach=True, name=watcher)
    try:
        wait_until(lambda: docker_api.containers(filters={"label": [f"syncer.project={project}"],
                                                          "status": "running"}),
                   timeout=120, message="the watch in the image to create the container")
    finally:
        subprocess.run(["docker", "rm", "-f", watcher], capture_output=True)
    assert "No changes." in _run(image, repo, "plan")
