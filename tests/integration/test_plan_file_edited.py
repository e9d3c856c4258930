"""`syncer apply PLAN_FILE` applies exactly the saved plan: a file edited by hand, or not a
syncer plan at all, is refused in one line naming it, and nothing changes (QA round 2, S3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli, simple_repo

FAST = ("--stop-timeout", "1")


def _ids(api: Any, project: str) -> dict[str, tuple[str, str]]:
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/"): (r["Id"], r["State"]) for r in rows}


@pytest.mark.parametrize("project", ["h10"], indirect=True)
def test_an_edited_plan_file_is_refused_and_the_one_syncer_wrote_applies(tmp_path: Path, project: str,
                                                                        docker_api: Any) -> None:
    web, old, new = f"{project}-web", f"{project}-old", f"{project}-new"
    box = "name: {}\ntemplate: box\nparams: {{message: {}, token: {{secret: H10_TOKEN}}}}\n"
    repo = simple_repo(tmp_path / "r", project, extra="secrets: {env: [H10_TOKEN]}\n",
                       definitions={"web": box.format(web, "one"), "old": box.format(old, "one")})
    cli = ("--repo", str(repo), "--state-dir", str(tmp_path / "s"))
    env = {"H10_TOKEN": "first-token"}
    assert run_cli(*cli, "apply", "--auto-approve", *FAST, env=env).returncode == 0
    # a recreate with a secret's reason (masked in the file), a remove and a create
    (repo / "definitions/web.yaml").write_text(box.format(web, "two"))
    (repo / "definitions/old.yaml").unlink()
    (repo / "definitions/new.yaml").write_text(box.format(new, "one"))
    env = {"H10_TOKEN": "second-token"}
    saved = tmp_path / "plan.json"
    assert run_cli(*cli, "plan", "--out", str(saved), env=env).returncode == 0
    data = json.loads(saved.read_text())
    assert {a["container"]: a["action"] for a in data["actions"]} == {web: "recreate", old: "remove", new: "create"}
    before = _ids(docker_api, project)

    noop = json.loads(saved.read_text())
    for a in noop["actions"]:
        a["action"] = "noop"
    noop["summary"] = {k: (3 if k == "noop" else 0) for k in noop["summary"]}
    noop["servers"]["local"]["summary"] = noop["summary"]
    edited, first = tmp_path / "edited.json", noop["actions"][0]["container"]
    edited.write_text(json.dumps(noop))
    out = run_cli(*cli, "apply", str(edited), *FAST, env=env)
    refused = (f"{edited}: its actions are not the plan of its commit and live state (edited? the file has noop"
               f" {first} that is not planned); run `syncer plan --out FILE` again")
    assert out.returncode == 1 and out.stderr.splitlines() == [refused], out.stderr
    assert _ids(docker_api, project) == before

    wrong = json.loads(saved.read_text())
    wrong["actions"][0]["stay_stopped"] = "false"
    edited.write_text(json.dumps(wrong))
    out = run_cli(*cli, "apply", str(edited), *FAST, env=env)
    assert out.returncode == 1 and out.stderr.splitlines() == [
        f"{edited}: not a syncer plan: actions[0].stay_stopped: expected boolean, got \"false\""], out.stderr
    assert _ids(docker_api, project) == before

    good = run_cli(*cli, "apply", str(saved), *FAST, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    after = _ids(docker_api, project)
    assert set(after) == {web, new} and after[web][0] != before[web][0]
    assert {state for _, state in after.values()} == {"running"}
