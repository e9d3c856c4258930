"""Fixtures: a real Docker engine (fail in CI when absent, never skip there), per-test
project names with cleanup, and the local images."""

from __future__ import annotations

import os
import subprocess
from typing import Any, Iterator

import pytest

from tests.helpers import IMAGE, REPO_ROOT, remove_project, started, sweep_leftovers, unavailable, unique

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def docker_api() -> Any:
    """A low-level client of the real engine."""
    import docker

    try:
        api = docker.APIClient(**docker.utils.kwargs_from_env(), timeout=120)
        api.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        unavailable(f"no Docker engine answers ({exc}); run scripts/setup")
    try:
        api.inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run(["bash", str(REPO_ROOT / "scripts/build-images")], check=True)
    sweep_leftovers(api)  # an interrupted earlier run's networks would exhaust the address pools
    return api


_remove_project = remove_project  # the one cleanup, in tests/helpers.py


@pytest.fixture
def project(request: pytest.FixtureRequest, docker_api: Any) -> Iterator[str]:
    """A project name of this test's own (`t-…`, or a prefix of the test's own given as the
    fixture's indirect parameter); its containers and volumes go at the end."""
    name = unique(getattr(request, "param", "t"))
    _remove_project(docker_api, name)
    yield name
    _remove_project(docker_api, name)


@pytest.fixture
def unmanaged(docker_api: Any) -> Iterator[list[str]]:
    """Names of containers a test makes outside syncer; removed at the end."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            docker_api.remove_container(n, force=True)
        except Exception:  # noqa: BLE001
            pass



def _registry(password: str = "") -> Iterator[Any]:
    from tests.registry import BINARY, Registry

    if not os.path.exists(BINARY):
        unavailable(f"{BINARY} is missing; run scripts/setup (apt-get install docker-registry)")
    yield from started(Registry(password=password), "docker-registry")


@pytest.fixture(scope="session")
def registry(docker_api: Any) -> Iterator[Any]:
    """A real image registry (Debian's docker-registry) on a loopback port, for this session."""
    yield from _registry()


@pytest.fixture(scope="session")
def private_registry(docker_api: Any) -> Iterator[Any]:
    """A real registry that asks for a login (basic auth); its `login` is a DOCKER_CONFIG
    directory holding it, and its password a canary that must never reach output."""
    yield from _registry(password=f"canary-{unique('pw')}")


@pytest.fixture
def watches() -> Iterator[list[Any]]:
    """The `syncer watch` processes a test starts (tests/watching.py); killed at its end."""
    started: list[Any] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
