"""Issue 12, point 2: the keyed hash of a secret is the same for every state dir that points
at the same servers, so a CI job on a fresh checkout plans no change; an older state dir's
key is adopted without a recreate; SYNCER_SECRET_KEY, when set, wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_cli, simple_repo

CANARY = "CANARY-key-5b0e-s3cr3t"
ENV = {"KEYED_TOKEN": CANARY}
DEFINITION = "name: {project}-web\ntemplate: box\nparams:\n  token: {{secret: KEYED_TOKEN}}\n"


def _cli(repo: Path, state: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, env={**ENV, **(env or {})})
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _plan(repo: Path, state: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    doc = json.loads(_cli(repo, state, "plan", "--json", env=env).stdout)
    return {a["definition"].rsplit("-", 1)[-1]: a["action"] for a in doc["actions"]}


def _repo(tmp_path: Path, project: str) -> Path:
    return simple_repo(tmp_path / "r", project, definitions={"web": DEFINITION.format(project=project)},
                       extra="secrets: {env: [KEYED_TOKEN]}\n")


def _key_marker(api: Any, project: str) -> dict[str, Any] | None:
    rows = api.containers(all=True, filters={"name": f"^/{project}.syncer-key$"})
    return api.inspect_container(rows[0]["Id"]) if rows else None


def test_fresh_state_dirs_plan_no_change(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path, project)
    _cli(repo, tmp_path / "a", "apply", "--auto-approve", "--stop-timeout", "1")
    for fresh in ("b", "c"):  # two CI jobs on fresh checkouts
        assert _plan(repo, tmp_path / fresh) == {"web": "noop"}
        assert not (tmp_path / fresh / "secret.key").exists()
    marker = _key_marker(docker_api, project)
    assert marker is not None and not marker["State"]["Running"]
    assert "syncer.project" not in (marker["Config"]["Labels"] or {})  # observe, plan, prune never see it
    for f in (p for p in tmp_path.rglob("*") if p.is_file() and p.name != "secret.key"):  # nor any file
        key = next(e for e in marker["Config"]["Env"] if e.startswith("SYNCER_KEY=")).split("=", 1)[1]
        assert key.encode() not in f.read_bytes() and bytes.fromhex(key) not in f.read_bytes(), f


def test_an_old_state_dirs_key_is_adopted_without_a_recreate(tmp_path: Path, project: str,
                                                             docker_api: Any) -> None:
    repo = _repo(tmp_path, project)
    old = tmp_path / "old"
    _cli(repo, old, "apply", "--auto-approve", "--stop-timeout", "1")
    # what an older syncer left: the key only in its state dir, none on the server
    marker = _key_marker(docker_api, project)
    assert marker is not None
    key = next(e for e in marker["Config"]["Env"] if e.startswith("SYNCER_KEY=")).split("=", 1)[1]
    docker_api.remove_container(marker["Id"], force=True)
    (old / "secret.key").write_bytes(bytes.fromhex(key))
    [before] = docker_api.containers(all=True, filters={"label": f"syncer.project={project}"})
    assert _plan(repo, old) == {"web": "noop"}  # adopted: published to the server
    assert _plan(repo, tmp_path / "fresh") == {"web": "noop"}
    assert "No changes." in _cli(repo, tmp_path / "fresh", "apply", "--auto-approve").stdout
    [after] = docker_api.containers(all=True, filters={"label": f"syncer.project={project}"})
    assert after["Id"] == before["Id"] and after["State"] == "running"  # never recreated


def test_a_configured_key_wins(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path, project)
    _cli(repo, tmp_path / "a", "apply", "--auto-approve", "--stop-timeout", "1")
    configured = {"SYNCER_SECRET_KEY": "an-operator-chosen-key-0123456789"}
    assert _plan(repo, tmp_path / "b", configured) == {"web": "recreate"}
    _cli(repo, tmp_path / "b", "apply", "--auto-approve", "--stop-timeout", "1", env=configured)
    assert _plan(repo, tmp_path / "c", configured) == {"web": "noop"}
