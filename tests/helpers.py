"""Test helpers shared by unit and integration tests: repos, git, the CLI, waiting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, TypeVar

import textwrap

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE = "syncer-local/busybox:latest"
HEALTHY_IMAGE = "syncer-local/busybox-healthy:latest"
UNHEALTHY_IMAGE = "syncer-local/busybox-unhealthy:latest"
# a template whose probe passes (`"true"`); `.replace('"true"', '"false"')` makes it fail
HEALTH_CHECKED = """
id: hc
version: "1.0"
inputs: {type: object, properties: {image: {type: string}, v: {type: string}}}
spec:
  image: ${inputs.image}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  env: {V: "${inputs.v}"}
  healthcheck: {test: [CMD, "true"], interval: 1s, timeout: 2s, retries: 1}
"""


def job_template(*, token: bool = False) -> str:
    """A `kind: job` template `job` running `inputs.script` in sh; with `token`, a password
    input `token` in its env as TOKEN."""
    secret = "\n        token: {type: string, format: password, writeOnly: true}" if token else ""
    env = '\n      env: {TOKEN: "${inputs.token}"}' if token else ""
    return f"""
    id: job
    version: "1.0"
    kind: job
    inputs:
      type: object
      properties:
        script: {{type: string}}{secret}
    spec:
      image: {IMAGE}
      command: [sh, -c, "${{inputs.script}}"]{env}
    """


def unique(prefix: str = "t") -> str:
    """A project or object name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now (the kernel's pick: two test sessions
    side by side, as scripts/test runs them, are never handed the same one at once)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (path → text, dedented) under `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def simple_repo(root: Path, project: str, *, definitions: Mapping[str, str] | None = None,
                templates: Mapping[str, str] | None = None, extra: str = "") -> Path:
    """A repository with one busybox template `box` and the given definitions."""
    files = {
        "syncer.yaml": f"project: {project}\n{extra}",
        "templates/box.yaml": f"""
            id: box
            version: "1.0"
            inputs:
              type: object
              properties:
                message: {{type: string, default: hello}}
                token: {{type: string, format: password, writeOnly: true}}
                port: {{type: integer}}
            spec:
              image: {IMAGE}
              command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
              env:
                MESSAGE: ${{inputs.message}}
                TOKEN: ${{inputs.token}}
              ports: [{{container_port: 8080, host_port: "${{inputs.port}}"}}]
            profiles:
              development: {{resources: {{memory: 64m}}}}
            """,
    }
    for name, text in (templates or {}).items():
        files[f"templates/{name}.yaml"] = text
    for name, text in (definitions or {}).items():
        files[f"definitions/{name}.yaml"] = text
    return write_files(root, files)


def run_cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m syncer ARGS` as a real process."""
    full_env = dict(os.environ)
    full_env.pop("SYNCER_REPO", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "syncer", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, input=input, timeout=timeout)


def git(repo: Path, *args: str) -> str:
    """Run real git in `repo` with a fixed identity; returns stdout."""
    env = dict(os.environ, GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="t@example.com")
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip()


def git_init(repo: Path) -> None:
    """A real repository with everything in `repo` committed."""
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "initial")


def commit_all(repo: Path, message: str) -> str:
    """Commit every change; returns the new HEAD sha."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
               message: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def remove_project(api: Any, project: str) -> None:
    """Everything a test project made: containers (and their volumes), syncer's key and lock
    markers, its networks and named volumes. Best effort, never raising."""
    for label in (f"syncer.project={project}", f"syncer.marker-of={project}"):
        for c in _quiet(lambda: api.containers(all=True, filters={"label": [label]})) or []:
            _quiet(lambda: api.remove_container(c["Id"], force=True, v=True))
    for n in _quiet(lambda: api.networks(filters={"label": [f"syncer.project={project}"]})) or []:
        _quiet(lambda: api.remove_network(n["Id"]))
    for v in (_quiet(lambda: api.volumes(filters={"name": project})) or {}).get("Volumes") or []:
        _quiet(lambda: api.remove_volume(v["Name"], force=True))


TEST_PROJECT = re.compile(r"^[a-z]+-[0-9a-f]{8}(?:[-_.]|$)")  # what `unique()` makes


STALE_S = 30 * 60  # a test's objects older than this belong to a run that was interrupted


def sweep_leftovers(api: Any) -> None:
    """What interrupted test runs left on the engine (their networks exhaust Docker's address
    pools): containers and networks whose project is a test's `unique()` name, older than
    STALE_S — a test session running beside this one (another terminal) keeps its own."""
    import time

    cutoff = time.time() - STALE_S
    for c in _quiet(lambda: api.containers(all=True)) or []:
        labels = c.get("Labels") or {}
        owner = labels.get("syncer.project") or labels.get("syncer.marker-of") \
            or labels.get("com.docker.compose.project") or ""
        names = [n.lstrip("/") for n in c.get("Names") or []]
        if (TEST_PROJECT.match(owner) or any(TEST_PROJECT.match(n) for n in names)) \
                and int(c.get("Created") or 0) < cutoff:
            _quiet(lambda: api.remove_container(c["Id"], force=True, v=True))
    for n in _quiet(lambda: api.networks()) or []:
        labels = n.get("Labels") or {}
        owner = labels.get("syncer.project") or labels.get("com.docker.compose.project") or ""
        if TEST_PROJECT.match(owner) and _epoch(n.get("Created", "")) < cutoff:
            _quiet(lambda: api.remove_network(n["Id"]))
    _sweep_bridges(api)


def _epoch(created: str) -> float:
    """A network's `Created` (RFC 3339 with nanoseconds) in seconds; 0 when unreadable."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00" if "." in created[:26]
                                      else created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _sweep_bridges(api: Any) -> None:
    """Bridges of second dockerds that were killed with networks on them stay in the host's
    network namespace and keep their subnets from every engine: remove the `br-*` links no
    network of the main engine owns, unless a second dockerd is running now (they may be its)."""
    import subprocess

    if subprocess.run(["pgrep", "-f", "dockerd --host unix:///tmp/syncer-d2-"], capture_output=True).returncode == 0:
        return
    # a second dockerd makes its bridge before its process starts: a fresh root means one may be
    # starting in another session now (the test shards of scripts/test run side by side)
    if any(time.time() - d.stat().st_mtime < STALE_S for d in Path("/tmp").glob("syncer-d2-*")):
        return
    # links first, networks second: a network another session creates in between is then in
    # `ours` (listed the other way round, its new bridge would look like nobody's) — and listed
    # again a moment later: the engine makes a network's bridge before the network is listed,
    # so a bridge of a network being created now (the other test shard) looks like nobody's once
    links = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    orphans = [n for n in names if n.startswith(("br-", "sd2", "gw2")) or n == "docker_gwbridge"]
    for again in (False, True):
        if again and orphans:
            time.sleep(2.0)
        networks = _quiet(lambda: api.networks())
        if networks is None or not orphans:
            return
        ours = {f"br-{n['Id'][:12]}" for n in networks} | {n["Name"] for n in networks}
        orphans = [n for n in orphans if n.startswith(("sd2", "gw2")) or n not in ours]
    for name in orphans:
        subprocess.run(["ip", "link", "delete", name], capture_output=True)


def _quiet(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:  # noqa: BLE001 - cleanup is best effort
        return None


def unavailable(message: str) -> None:
    """A part a test needs is missing: with CI set the test fails, never skips."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


class _Part(Protocol):
    def start(self) -> None: ...
    def destroy(self) -> None: ...


P = TypeVar("P", bound=_Part)


def started(part: P, what: str) -> Iterator[P]:
    """A fixture's real part (a swarm, a registry), started, and destroyed at the end; one
    that cannot start fails the test when CI is set, never skips there."""
    try:
        part.start()
    except Exception as exc:  # noqa: BLE001 - whatever stops it from starting
        part.destroy()
        unavailable(f"cannot start {what}: {exc}")
    try:
        yield part
    finally:
        part.destroy()
