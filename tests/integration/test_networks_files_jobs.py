"""The project network, files from the repository and jobs, on the real engine (issue 10,
points 2, 3, 4 and 8): DNS by definition name from inside a container, file content read
back over HTTP inside the project, job order by StartedAt/FinishedAt, a failed job's masked
logs, network removal with prune, a missing external network, and examples/webapp."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _remove_project
from tests.helpers import IMAGE, REPO_ROOT, commit_all, git_init, job_template, run_cli, unique, write_files

HTTPD = f"""
    id: httpd
    version: "1.0"
    spec:
      image: {IMAGE}
      command: [sh, -c, 'trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait']
    """
SLEEPER = f"""
    id: sleeper
    version: "1.0"
    spec:
      image: {IMAGE}
      command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
    """


def _repo(root: Path, project: str, definitions: str, *, extra: str = "",
          files: dict[str, str] | None = None) -> Path:
    return write_files(root, {
        "syncer.yaml": f"project: {project}\n{extra}",
        "templates/httpd.yaml": HTTPD, "templates/sleeper.yaml": SLEEPER,
        "templates/job.yaml": job_template(token=True),
        "definitions/all.yaml": definitions, **(files or {}),
    })


def _cli(repo: Path, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(repo / ".state"), *args, env=env)
    assert "Traceback" not in out.stdout + out.stderr
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def _apply(repo: Path, *, ok: bool = True, env: dict[str, str] | None = None) -> Any:
    return _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1", ok=ok, env=env)


def _exec(api: Any, container: str, *cmd: str) -> tuple[int, str]:
    ex = api.exec_create(container, list(cmd))
    out = api.exec_start(ex["Id"]).decode("utf-8", "replace")
    return int(api.exec_inspect(ex["Id"])["ExitCode"]), out


def _wget(api: Any, container: str, url: str) -> tuple[int, str]:
    return _exec(api, container, "wget", "-qO-", url)  # (this busybox's wget crashes with -T)


@pytest.fixture
def other_project(docker_api: Any) -> Iterator[str]:
    name = unique("t")
    yield name
    _remove_project(docker_api, name)


def test_containers_find_each_other_by_name_and_never_across_projects(
        tmp_path: Path, project: str, other_project: str, docker_api: Any) -> None:
    api_name, client = f"{project}-api", f"{project}-client"
    repo = _repo(tmp_path / "a", project, f"""
        name: {api_name}
        template: httpd
        overrides:
          files: [{{path: /www/index.html, source: files/index.html}}]
        ---
        name: {client}
        template: sleeper
        """, files={"files/index.html": "served from the repository\n"})
    _apply(repo)
    [net] = docker_api.networks(filters={"label": [f"syncer.project={project}"]})
    assert net["Name"] == project and net["Driver"] == "bridge"
    endpoint = docker_api.inspect_container(api_name)["NetworkSettings"]["Networks"][project]
    assert api_name in endpoint["Aliases"]
    code, body = _wget(docker_api, client, f"http://{api_name}:8080/")
    assert (code, body) == (0, "served from the repository\n")
    stranger = f"{other_project}-client"
    other = _repo(tmp_path / "b", other_project, f"name: {stranger}\ntemplate: sleeper\n")
    _apply(other)
    code, _ = _wget(docker_api, stranger, f"http://{api_name}:8080/")
    assert code != 0  # another project's container cannot resolve (or reach) it
    code, _ = _exec(docker_api, stranger, "nslookup", api_name)
    assert code != 0


def test_editing_a_file_recreates_exactly_its_users(tmp_path: Path, project: str, docker_api: Any) -> None:
    user, bystander = f"{project}-user", f"{project}-other"
    repo = _repo(tmp_path / "r", project, f"""
        name: {user}
        template: httpd
        overrides:
          env_file: [files/app.env]
          files: [{{path: /www/index.html, source: files/index.html}}]
        ---
        name: {bystander}
        template: httpd
        """, files={"files/index.html": "one\n", "files/app.env": "# comment\nMODE=first\n"})
    _apply(repo)
    before = {n: docker_api.inspect_container(n)["Id"] for n in (user, bystander)}
    assert "MODE=first" in docker_api.inspect_container(user)["Config"]["Env"]
    (repo / "files/index.html").write_text("two\n")
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    acts = {a["container"]: a for a in plan["actions"]}
    assert acts[user]["action"] == "recreate" and "files/index.html" in acts[user]["cause"]
    assert acts[bystander]["action"] == "noop"
    _apply(repo)
    assert docker_api.inspect_container(bystander)["Id"] == before[bystander]
    assert docker_api.inspect_container(user)["Id"] != before[user]
    assert _wget(docker_api, bystander, f"http://{user}:8080/") == (0, "two\n")
    (repo / "files/app.env").write_text("MODE=second\n")
    _apply(repo)
    assert "MODE=second" in docker_api.inspect_container(user)["Config"]["Env"]


def test_plan_at_a_ref_reads_the_files_of_that_commit(tmp_path: Path, project: str, docker_api: Any) -> None:
    name = f"{project}-web"
    repo = _repo(tmp_path / "r", project, f"""
        name: {name}
        template: httpd
        overrides:
          files: [{{path: /www/index.html, source: files/index.html}}]
        """, files={"files/index.html": "one\n", ".gitignore": ".state/\n"})
    git_init(repo)
    _apply(repo)
    (repo / "files/index.html").write_text("two\n")
    commit_all(repo, "edit the page")

    def action(*ref: str) -> str:
        data = json.loads(_cli(repo, "plan", "--json", *ref).stdout)
        return str({a["container"]: a["action"] for a in data["actions"]}[name])

    assert action() == "recreate"
    assert action("--ref", "HEAD~1") == "noop"  # the old commit's bytes, not the work tree's


def test_a_secret_file_reaches_docker_only(tmp_path: Path, project: str, docker_api: Any) -> None:
    name = f"{project}-vault"
    repo = _repo(tmp_path / "r", project, f"""
        name: {name}
        template: httpd
        overrides:
          files: [{{path: /www/key.txt, secret: APP_KEY}}]
        """, extra="secrets: {env: [APP_KEY]}\n")
    env = {"APP_KEY": "s3cr3t-value-42"}
    out = _apply(repo, env=env)
    assert "s3cr3t-value-42" not in out.stdout + out.stderr
    assert _exec(docker_api, name, "cat", "/www/key.txt") == (0, "s3cr3t-value-42")
    assert _exec(docker_api, name, "stat", "-c", "%a", "/www/key.txt") == (0, "400\n")
    assert "s3cr3t-value-42" not in json.dumps(docker_api.inspect_container(name)["Config"]["Labels"])
    assert "s3cr3t-value-42" not in (repo / ".state" / "state.db").read_bytes().decode("latin-1")


def _times(api: Any, name: str) -> tuple[str, str]:
    state = api.inspect_container(name)["State"]
    return state["StartedAt"], state["FinishedAt"]


def test_a_job_runs_once_before_its_dependent(tmp_path: Path, project: str, docker_api: Any) -> None:
    job, app = f"{project}-migrate", f"{project}-app"
    repo = _repo(tmp_path / "r", project, f"""
        name: {job}
        template: job
        params: {{script: "sleep 1; echo migrated"}}
        ---
        name: {app}
        template: sleeper
        depends_on: {{{job}: {{condition: completed}}}}
        """)
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    assert {a["container"]: a["action"] for a in plan["actions"]}[job] == "run"
    _apply(repo)
    state = docker_api.inspect_container(job)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert _times(docker_api, app)[0] > _times(docker_api, job)[1]  # ISO times in UTC compare as text
    again = json.loads(_cli(repo, "plan", "--json").stdout)
    assert {a["container"]: a["action"] for a in again["actions"]} == {job: "noop", app: "noop"}
    status = json.loads(_cli(repo, "status", "--json").stdout)
    [row] = [c for s in status["definitions"] for c in s["containers"] if c["name"] == job]
    assert row["exit_code"] == 0 and row["status"].startswith("Exited (0)")
    ident = docker_api.inspect_container(job)["Id"]
    _apply(repo)  # a finished job is in sync: not run again, not restarted
    assert docker_api.inspect_container(job)["Id"] == ident
    assert docker_api.inspect_container(job)["State"]["Status"] == "exited"
    # its container removed by hand (a clean-up): it ran at this revision, once per spec (it ran again)
    docker_api.remove_container(ident)
    [a] = [a for a in json.loads(_cli(repo, "plan", "--json").stdout)["actions"] if a["container"] == job]
    assert (a["action"], a["cause"]) == ("noop", "job completed (exit 0) at this revision; its container was"
                                                  " removed since (it runs again when its spec changes)"), a
    _apply(repo)
    assert not docker_api.containers(all=True, filters={"name": f"^/{job}$"})
    (repo / "definitions/all.yaml").write_text(f"name: {app}\ntemplate: sleeper\n")
    _apply(repo)  # prune removes the job once its definition is gone
    assert not docker_api.containers(all=True, filters={"name": f"^/{job}$"})


def test_a_failed_job_fails_its_deployment_with_masked_logs(tmp_path: Path, project: str,
                                                            docker_api: Any) -> None:
    job, app = f"{project}-bad", f"{project}-app"
    repo = _repo(tmp_path / "r", project, f"""
        name: {job}
        template: job
        params: {{script: 'echo "token is $TOKEN"; exit 3', token: {{secret: JOB_TOKEN}}}}
        ---
        name: {app}
        template: sleeper
        depends_on: {{{job}: {{condition: completed}}}}
        """, extra="secrets: {env: [JOB_TOKEN]}\n")
    env = {"JOB_TOKEN": "hunter2-very-secret"}
    out = _apply(repo, ok=False, env=env)
    assert out.returncode == 1
    assert "hunter2-very-secret" not in out.stdout + out.stderr
    assert "exited with code 3" in out.stdout
    assert not docker_api.containers(all=True, filters={"name": f"^/{app}$"})  # the dependent never started
    deployments = json.loads(_cli(repo, "deployments", "list", "--json", env=env).stdout)
    bad = next(d for d in deployments if d["definition"] == job)
    assert bad["status"] == "failed"
    detail = _cli(repo, "deployments", "show", bad["id"], "--json", env=env).stdout
    assert "token is" in detail and "hunter2-very-secret" not in detail
    plan = json.loads(_cli(repo, "plan", "--json", env=env).stdout)
    assert {a["container"]: a["action"] for a in plan["actions"]}[job] == "run"  # runs again next time


def test_networks_of_syncer_yaml_and_their_removal_with_prune(tmp_path: Path, project: str,
                                                                docker_api: Any) -> None:
    a, b = f"{project}-a", f"{project}-b"
    defs = f"""
        name: {a}
        template: sleeper
        overrides: {{networks: {{back: {{aliases: [db-alias]}}}}}}
        ---
        name: {b}
        template: sleeper
        overrides: {{networks: [back]}}
        """
    repo = _repo(tmp_path / "r", project, defs, extra="networks:\n  back: {}\n")
    _apply(repo)
    nets = {n["Name"]: n for n in docker_api.networks(filters={"label": [f"syncer.project={project}"]})}
    assert set(nets) == {project, f"{project}_back"}
    assert nets[f"{project}_back"]["Labels"]["syncer.network"] == "back"
    assert _exec(docker_api, b, "nslookup", "db-alias")[0] == 0
    (repo / "definitions/all.yaml").write_text(f"name: {a}\ntemplate: sleeper\n")
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    assert [x["container"] for x in plan["actions"] if x["action"] == "network remove"] == [f"{project}_back"]
    _apply(repo)
    left = {n["Name"] for n in docker_api.networks(filters={"label": [f"syncer.project={project}"]})}
    assert left == {project}


def test_a_missing_external_network_is_a_located_error(tmp_path: Path, project: str) -> None:
    edge = f"{project}-edge"  # a name no engine here has
    repo = _repo(tmp_path / "r", project, f"name: {project}-w\ntemplate: sleeper\noverrides: {{networks: [{edge}]}}\n",
                 extra=f"networks:\n  {edge}: {{external: true}}\n")
    out = _cli(repo, "plan", ok=False)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"syncer.yaml:3:{len(edge) + 5}: network '{edge}' is external and does not exist"
                                  " on server 'local' (create it, or drop `external: true`)"), out.stderr


def test_the_webapp_example_applies(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = tmp_path / "webapp"
    shutil.copytree(REPO_ROOT / "examples/webapp", repo, ignore=shutil.ignore_patterns(".syncer"))
    for path in [repo / "syncer.yaml", *repo.glob("*/*.yaml")]:
        text = path.read_text().replace("project: webapp", f"project: {project}")
        text = text.replace("webapp-data", f"{project}-data").replace("webapp-", f"{project}-")
        path.write_text(text.replace("params: {port: 18081}\n", ""))
    cgi = repo / "files/api.cgi"
    cgi.write_text(cgi.read_text().replace("webapp-api", f"{project}-api"))
    assert _cli(repo, "validate").returncode == 0
    # validate reads what the specs read: a `files:` source missing (a typo) was found by plan alone
    cgi.rename(repo / "files/api.cgi.moved")
    out = _cli(repo, "validate", ok=False)
    assert out.returncode == 1 and out.stdout == "", out.stdout
    [line] = out.stderr.strip().splitlines()
    assert re.fullmatch(r"definitions/webapp\.yaml:\d+:\d+: 'files/api\.cgi' file not found in the repository", line), line
    (repo / "files/api.cgi.moved").rename(cgi)
    _apply(repo)
    code, body = _wget(docker_api, f"{project}-front", "http://127.0.0.1:8080/cgi-bin/api")
    assert code == 0 and body == "hello from webapp-api\nschema 3\n"
    api = docker_api.inspect_container(f"{project}-api")
    assert api["State"]["StartedAt"] > docker_api.inspect_container(f"{project}-migrate")["State"]["FinishedAt"]
    assert "GREETING=hello" in api["Config"]["Env"]
    assert "No changes." in _cli(repo, "plan").stdout


def test_a_container_sharing_anothers_network_is_made_again_with_it(tmp_path: Path, project: str,
                                                                   docker_api: Any) -> None:
    """`network_mode: container:X` joins the namespace of the X container of the moment: an
    apply that made X again left the sharer in the namespace of one that was gone (planned in
    sync), so it no longer reached X on localhost."""
    web, side = f"{project}-web", f"{project}-side"
    definitions = f"""
        name: {web}
        template: httpd
        overrides:
          files: [{{path: /www/index.html, source: files/index.html}}]
          env: {{V: "1"}}
        ---
        name: {side}
        template: sleeper
        overrides: {{network_mode: "container:{web}"}}
        """
    repo = _repo(tmp_path / "r", project, definitions, files={"files/index.html": "one\n"})
    _apply(repo)
    assert _wget(docker_api, side, "http://127.0.0.1:8080/") == (0, "one\n")
    (repo / "definitions/all.yaml").write_text(textwrap.dedent(definitions).replace('V: "1"', 'V: "2"'))
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    assert {a["container"]: (a["action"], a["cause"]) for a in plan["actions"]}[side] == (
        "recreate", f"it shares the network of {web}, which is made again")
    _apply(repo)
    web_id = docker_api.inspect_container(web)["Id"]
    assert docker_api.inspect_container(side)["HostConfig"]["NetworkMode"] == f"container:{web_id}"
    assert _wget(docker_api, side, "http://127.0.0.1:8080/") == (0, "one\n")
    assert all(a["action"] == "noop" for a in json.loads(_cli(repo, "plan", "--json").stdout)["actions"])
