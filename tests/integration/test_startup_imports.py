"""Issue 9, point 5: a command imports only what it uses. A no-op `plan` or `apply` of a git
work tree, on a cache hit against a local engine, imports no docker SDK (requests), no
GitPython, no YAML parser or JSON Schema validator and nothing of the HTTP server or the
terminal UI: each is tens of milliseconds of every scheduled CI run and every self-heal.
Nor `logging` or `concurrent.futures` (it imports logging), a few milliseconds a no-op has
no use for. (`http.client`, which the engine's reads use, imports `email`, `ssl` and
`random`: about 20 ms, left to the standard library rather than an HTTP client of our own.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, git_init, simple_repo

HEAVY = ("docker", "requests", "urllib3", "git", "ruamel", "jsonschema", "fastapi", "starlette", "uvicorn",
         "pydantic", "rich", "httpx", "paramiko", "logging", "concurrent")


def _imported(*args: str) -> tuple[set[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_REPO"}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "syncer", *args], capture_output=True,
                         text=True, env=env, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    names = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return names, out.stdout


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"]])
def test_a_no_op_imports_nothing_heavy(tmp_path: Path, project: str, command: list[str]) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": f"name: {project}-web\ntemplate: box\n"})
    git_init(repo)
    base = ["--repo", str(repo), "--state-dir", str(tmp_path / "state")]
    first = subprocess.run([sys.executable, "-m", "syncer", *base, "apply", "--auto-approve"], capture_output=True,
                           text=True, cwd=REPO_ROOT, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    names, stdout = _imported(*base, *command)
    tops = {name.split(".")[0] for name in names}
    assert "No changes" in stdout
    assert "syncer" in tops and "http" in tops  # the measurement sees imports at all
    assert sorted(tops & set(HEAVY)) == []
    # nor the Applier and what only it uses: a command's options are not the code that acts on them
    assert sorted(names & {"syncer.engine.apply", "syncer.engine.heal", "syncer.engine.swarms"}) == []
