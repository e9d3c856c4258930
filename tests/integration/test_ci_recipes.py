"""The CI recipes in examples/ci/ (issue 13): each job's shell steps, extracted from the
recipe and run in order, as the CI would, against a real repository and engine."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.helpers import REPO_ROOT, simple_repo

RECIPES = REPO_ROOT / "examples" / "ci"
ALLOW = "secrets: {env: [DB_PASSWORD]}\n"  # the recipes' secret, allowed as their comments say
DEFINITION = "name: {name}\ntemplate: box\nparams: {{message: hi, token: {{secret: DB_PASSWORD}}}}\n"


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(io.StringIO(path.read_text()))


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    # `python3` and `syncer` are this checkout's (as `pip install syncer` would give), so the
    # install step is satisfied without the network
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env.update(SYNCER_PIP_SPEC="syncer", DB_PASSWORD="ci-canary-3c7e1", **extra)
    return env


def _run(script: str, repo: Path, env: dict[str, str], shell: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*shell, script], cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def _github_job(job: dict[str, Any], repo: Path, env: dict[str, str]) -> str:
    """Every `run:` step of a job, in order, as GitHub runs them (bash -eo pipefail)."""
    out = ""
    job_env = {k: v for k, v in (job.get("env") or {}).items() if "${{" not in str(v)}
    for step in job["steps"]:
        if "run" in step:
            done = _run(step["run"], repo, {**env, **job_env}, ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"])
            assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
            out += done.stdout
    return out


def _gitlab_job(recipe: dict[str, Any], job: str, repo: Path, env: dict[str, str]) -> str:
    """before_script then script, each line in a shell that stops at the first failure."""
    spec = recipe[job]
    variables = {**recipe.get("variables", {}), **spec.get("variables", {})}
    lines = [*(spec.get("before_script") or recipe["default"]["before_script"]), *spec["script"]]
    done = _run("\n".join(lines), repo, {**env, **variables}, ["bash", "-e", "-c"])
    assert done.returncode == 0, f"{job} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_github_actions_plans_a_pull_request_then_applies_main(tmp_path: Path, project: str,
                                                               docker_api: Any) -> None:
    recipe = _yaml(RECIPES / "github-actions.yml")
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": DEFINITION.format(name=f"{project}-web")},
                       extra=ALLOW)
    summary = tmp_path / "summary.md"
    env = _env(tmp_path, {"GITHUB_STEP_SUMMARY": str(summary)})
    _github_job(recipe["jobs"]["plan"], repo, env)  # changes (exit 2) do not fail the check
    assert f"create   {project}-web" in summary.read_text()
    assert not docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    _github_job(recipe["jobs"]["apply"], repo, env)
    [c] = docker_api.containers(filters={"label": [f"syncer.project={project}"]})
    assert c["Names"] == [f"/{project}-web"]
    summary.write_text("")
    (repo / ".syncer-ci").rename(tmp_path / "old-state")  # the next run: a fresh checkout
    _github_job(recipe["jobs"]["plan"], repo, env)
    assert "No changes." in summary.read_text()
    assert "ci-canary-3c7e1" not in summary.read_text()


def test_gitlab_ci_plans_a_merge_request_then_applies(tmp_path: Path, project: str, docker_api: Any) -> None:
    recipe = _yaml(RECIPES / "gitlab-ci.yml")
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": DEFINITION.format(name=f"{project}-web")},
                       extra=ALLOW)
    env = _env(tmp_path, {})
    assert f"create   {project}-web" in _gitlab_job(recipe, "syncer-plan", repo, env)
    assert (repo / "plan.json").is_file()
    _gitlab_job(recipe, "syncer-apply", repo, env)
    assert docker_api.containers(filters={"label": [f"syncer.project={project}"]})
    assert "No changes." in _gitlab_job(recipe, "syncer-plan", repo, env)
