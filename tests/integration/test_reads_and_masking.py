"""House bugs, on a real engine: reading never changes the store, and deployment logs mask
exactly the secrets a project references (not every environment variable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import commit_all, git, git_init, run_cli, simple_repo

WEB = "name: web\ntemplate: box\nparams: {message: one}\n"
FAST = ("--stop-timeout", "1")


def _cli(repo: Path, state: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, env=env)
    assert "Traceback" not in out.stdout + out.stderr
    return out


def _pinned(repo: Path, state: Path) -> bool:
    [row] = json.loads(_cli(repo, state, "status", "--json").stdout)["definitions"]
    return bool(row["pinned"])


def test_plan_of_an_old_ref_and_status_keep_a_rollback_pin(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions={"web": WEB})
    state = tmp_path / "s"
    git_init(repo)
    first = git(repo, "rev-parse", "HEAD")
    assert _cli(repo, state, "apply", "--auto-approve", *FAST).returncode == 0
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    commit_all(repo, "two")
    assert _cli(repo, state, "apply", "--auto-approve", *FAST).returncode == 0
    assert _cli(repo, state, "rollback", "web", "--auto-approve", *FAST).returncode == 0
    assert _pinned(repo, state)
    # a plan of the old commit sees a definition that differs from the pin's source: a read
    # must not drop the pin (it used to, so the next apply undid the rollback)
    assert _cli(repo, state, "plan", "--ref", first).returncode == 0
    assert _cli(repo, state, "plan").returncode == 0
    assert _pinned(repo, state)
    assert "No changes." in _cli(repo, state, "apply", "--auto-approve", *FAST).stdout


def test_deployment_logs_mask_only_referenced_secrets(tmp_path: Path, project: str, docker_api: Any) -> None:
    definition = "name: web\ntemplate: box\nparams: {message: hi, token: {secret: HOUSE_TOKEN}}\n"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": definition},
                       extra="secrets: {env: [HOUSE_*]}\n")
    state = tmp_path / "s"
    env = {"HOUSE_TOKEN": "tok-3f9a1c77e2", "UNRELATED_SETTING": "local", "ANOTHER": "created"}
    assert _cli(repo, state, "apply", "--auto-approve", *FAST, env=env).returncode == 0
    [dep] = json.loads(_cli(repo, state, "deployments", "list", "--json", env=env).stdout)
    shown = _cli(repo, state, "deployments", "show", dep["id"], "--json", env=env).stdout
    logs = "\n".join(row["line"] for row in json.loads(shown)["logs"])
    assert "on local" in logs and "created web" in logs, logs  # unrelated env values are not masked
    assert "tok-3f9a1c77e2" not in shown
