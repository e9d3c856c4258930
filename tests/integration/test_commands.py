"""The operator commands of issue 13: init, templates, instances, servers, logs, completion —
each as a real process against a real engine and store."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from syncer.core.redact import Redactor
from syncer.engine import facade as engine
from syncer.engine import logbook
from tests.helpers import run_cli, simple_repo, write_files

WEB = "name: {p}-web\ntemplate: box\nparams: {{message: one}}\nreplicas: 2\n"


def _ok(*args: str, env: dict[str, str] | None = None) -> Any:
    out = run_cli(*args, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    return out


def _json(*args: str) -> Any:
    return json.loads(_ok(*args, "--json").stdout)


def test_init_writes_a_repository_that_validates_and_never_overwrites(tmp_path: Path) -> None:
    repo = tmp_path / "My Infra"
    _ok("init", str(repo))
    assert (repo / "syncer.yaml").read_text().count("project: my-infra") == 1
    assert "Valid: 1 template(s), 1 definition(s)." in _ok("--repo", str(repo), "validate").stdout
    again = run_cli("init", str(repo))
    assert again.returncode == 1 and "never overwrites" in again.stderr


def test_templates_list_filters_on_taxonomy_and_show_picks_the_definitions_version(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "r", "t-templates", templates={"db": """
        id: db
        version: "8.4"
        taxonomy: {kingdom: assets, family: database, species: mysql}
        spec: {image: "syncer-local/busybox:latest"}
        ---
        id: db
        version: latest
        taxonomy: {kingdom: assets, family: database, species: mysql}
        spec: {image: "syncer-local/busybox:latest"}
        """})
    rows = _json("--repo", str(repo), "templates", "list", "--family", "database")
    assert [r["ref"] for r in rows] == ["db@8.4", "db@latest"]
    assert _json("--repo", str(repo), "templates", "list", "--family", "nothing") == []
    shown = _json("--repo", str(repo), "templates", "show", "db")
    assert shown["ref"] == "db@latest" and shown["spec"]["image"] == "syncer-local/busybox:latest"
    missing = run_cli("--repo", str(repo), "templates", "show", "nope")
    assert missing.returncode == 1 and "no template 'nope'" in missing.stderr


def test_instances_stop_holds_start_releases_and_logs_mask_secrets(tmp_path: Path, project: str,
                                                                    docker_api: Any) -> None:
    printing = """
        id: talker
        version: "1"
        inputs: {type: object, properties: {token: {type: string, format: password, writeOnly: true}}}
        spec:
          image: syncer-local/busybox:latest
          command: [sh, -c, "echo token=$TOKEN; trap 'exit 0' TERM; while true; do sleep 1; done"]
          env: {TOKEN: "${inputs.token}"}
        """
    repo = simple_repo(tmp_path / "r", project, templates={"talker": printing}, extra="secrets: {env: [CMD_TOK]}\n",
                       definitions={"web": WEB.format(p=project),
                                    "t": f"name: {project}-t\ntemplate: talker\nparams: {{token: {{secret: CMD_TOK}}}}\n"})
    env = {"CMD_TOK": "tok-canary-5521"}
    base = ("--repo", str(repo), "--state-dir", str(tmp_path / "s"))
    _ok(*base, "apply", "--auto-approve", "--stop-timeout", "1", env=env)
    rows = json.loads(_ok(*base, "instances", "list", "--json", env=env).stdout)
    assert sorted(r["name"] for r in rows) == sorted([f"{project}-web", f"{project}-web-2", f"{project}-t"])
    _ok(*base, "instances", "stop", f"{project}-web-2", "--timeout", "1", env=env)
    held = {r["name"]: r for r in json.loads(_ok(*base, "instances", "list", "--json", env=env).stdout)}
    assert held[f"{project}-web-2"]["held_stopped"] and held[f"{project}-web-2"]["state"] == "exited"
    assert "No changes." in _ok(*base, "apply", "--auto-approve", env=env).stdout  # the hold is kept
    _ok(*base, "instances", "start", f"{project}-web-2", env=env)
    state = docker_api.inspect_container(f"{project}-web-2")["State"]
    assert state["Running"]
    logs = _ok(*base, "instances", "logs", f"{project}-t", "--json", env=env).stdout
    assert "token=***" in logs and "tok-canary-5521" not in logs


def test_servers_reports_reachability_and_engine_version(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = simple_repo(tmp_path / "r", project, extra="servers:\n  local: {}\n  gone: {docker: 'tcp://127.0.0.1:1'}\n"
                       "defaults: {server: local}\n")
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "servers", "--json")
    assert out.returncode == 1, out.stderr  # a server does not answer
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["local"]["reachable"] and rows["local"]["engine_version"] == docker_api.version()["Version"]
    assert not rows["gone"]["reachable"] and rows["gone"]["error"]


def test_logs_show_the_daemons_records_filtered_and_masked(tmp_path: Path) -> None:
    repo = write_files(tmp_path / "r", {"syncer.yaml": "project: t-logs\n"})
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "s")
    book = logbook.keep_logs(ctx, Redactor.of(["hunter2-canary"]))
    try:
        logging.getLogger("syncer.watch").warning("applied web with hunter2-canary in it")
        logging.getLogger("syncer.api").info("served a request")
    finally:
        book.stop()
    base = ("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "logs")
    rows = _json(*base)
    assert [(r["level"], r["component"]) for r in rows] == [("info", "api"), ("warn", "watch")]
    assert rows[1]["message"] == "applied web with *** in it"
    assert [r["component"] for r in _json(*base, "--level", "warn")] == ["watch"]
    assert _json(*base, "--component", "api")[0]["message"] == "served a request"
    assert _json(*base, "--since", "2999-01-01T00:00:00Z") == []
    assert len(_json(*base, "--since", "1h")) == 2
    bad = run_cli(*base, "--since", "yesterday")
    assert bad.returncode == 1 and "not an ISO 8601 time" in bad.stderr


def test_completion_scripts(tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "#compdef syncer"), ("fish", "complete")):
        assert marker in _ok("completion", shell).stdout
