"""`syncer plan` against a real engine: every action, conflicts, secrets, git refs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from syncer.engine import facade as engine
from syncer.adapters.docker import Engine
from syncer.core.labels import container_labels
from syncer.core.model import Server
from tests.helpers import IMAGE, commit_all, git, git_init, run_cli, simple_repo, write_files

WEB = """
name: web
template: box
params: {message: one}
"""


def _prepare(repo: Path, state: Path, *, start: bool = True, env: dict[str, str] | None = None,
             revision: int = 1) -> list[str]:
    """Create (and start) the containers the repo wants, as an earlier apply would have."""
    ctx = engine.Context(repo=repo, state_dir=state)
    project = engine.load(ctx)
    desired = engine.desired_state(ctx, project)
    eng = Engine(Server("local"))
    ids = []
    present = {n.name for n in eng.list_networks()}
    for net in sorted({n for c in desired.containers for n in c.spec.get("networks") or {}} - present):
        eng.create_network(net, {"syncer.project": project.config.name, "syncer.network": "default"})
    for c in desired.containers:
        labels = container_labels(project=c.project, definition=c.definition, replica=c.replica,
                                  revision=revision, spec_hash_=c.spec_hash, template_ref=c.template_ref,
                                  commit=None, spec=c.spec)
        ident = eng.create(c.name, c.spec, labels, env or {})
        if start:
            eng.start(ident)
        ids.append(ident)
    return ids


def _plan(repo: Path, state: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--json", *extra, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _actions(data: dict[str, Any]) -> dict[str, str]:
    """Container actions (the project network's own are tested in test_networks_files_jobs)."""
    return {a["container"]: a["action"] for a in data["actions"] if not a["action"].startswith("network ")}


def test_empty_engine_plans_creates(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB + "replicas: 2\n"})
    data = _plan(repo, tmp_path / "state")
    assert _actions(data) == {"web": "create", "web-2": "create"}
    assert data["summary"]["create"] == 2 and data["project"] == project


def test_in_sync_containers_are_noop(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    _prepare(repo, tmp_path / "state")
    data = _plan(repo, tmp_path / "state")
    assert _actions(data) == {"web": "noop"}
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan", "--detailed-exitcode")
    assert out.returncode == 0 and "No changes." in out.stdout


def test_changed_env_is_a_recreate_with_field_reasons(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    _prepare(repo, tmp_path / "state", revision=4)
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    data = _plan(repo, tmp_path / "state")
    [action] = data["actions"]
    assert action["action"] == "recreate" and action["revision"] == 5
    assert {"field": "env.MESSAGE", "before": "one", "after": "two"} in action["reasons"]
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan", "--detailed-exitcode")
    assert out.returncode == 2
    assert 'env.MESSAGE: "one" -> "two"' in out.stdout
    assert out.stdout.strip().endswith("Plan: 0 to create, 1 to recreate, 0 to start, 0 to remove.")


def test_stopped_container_is_started(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    _prepare(repo, tmp_path / "state", start=False)
    assert _actions(_plan(repo, tmp_path / "state")) == {"web": "start"}


def test_removed_definition_and_surplus_replica_are_removed(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={
        "web": WEB + "replicas: 3\n", "old": "name: old\ntemplate: box\n"})
    _prepare(repo, tmp_path / "state")
    (repo / "definitions/old.yaml").unlink()
    (repo / "definitions/web.yaml").write_text(WEB + "replicas: 2\n")
    data = _plan(repo, tmp_path / "state")
    assert _actions(data) == {"web": "noop", "web-2": "noop", "web-3": "remove", "old": "remove"}
    causes = {a["container"]: a["cause"] for a in data["actions"]}
    assert "beyond replicas=2" in causes["web-3"] and "prune" in causes["old"]


def test_prune_false_keeps_containers_of_removed_definitions(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB, "old": "name: old\ntemplate: box\n"},
                       extra="prune: false\n")
    _prepare(repo, tmp_path / "state")
    (repo / "definitions/old.yaml").unlink()
    assert _actions(_plan(repo, tmp_path / "state")) == {"web": "noop"}


def test_unmanaged_container_holding_the_name_is_a_conflict(tmp_path: Path, project: str, docker_api: Any,
                                                            unmanaged: list[str]) -> None:
    name = f"{project}-web"
    unmanaged.append(name)
    ident = docker_api.create_container(IMAGE, name=name, command=["sleep", "3600"])["Id"]
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB.replace("name: web", f"name: {name}")})
    data = _plan(repo, tmp_path / "state")
    [action] = [a for a in data["actions"] if not a["action"].startswith("network ")]
    assert action["action"] == "conflict" and action["container_id"] == ident
    assert data["summary"]["conflict"] == 1
    assert docker_api.inspect_container(ident)["State"]["Status"] == "created"  # untouched


def test_secret_change_is_masked(tmp_path: Path, project: str) -> None:
    canary = "CANARY-s3cr3t-7f1e9a"
    definition = WEB + "  token: {secret: BOX_TOKEN}\n"
    definition = definition.replace("params: {message: one}\n", "params:\n  message: one\n")
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": definition},
                       extra="secrets: {env: [BOX_TOKEN]}\n")
    state = tmp_path / "state"
    env = {"BOX_TOKEN": canary}
    import os
    old = os.environ.get("BOX_TOKEN")
    os.environ["BOX_TOKEN"] = canary
    try:
        _prepare(repo, state, env=env)
    finally:
        os.environ.pop("BOX_TOKEN") if old is None else os.environ.__setitem__("BOX_TOKEN", old)
    assert _actions(_plan(repo, state, env=env)) == {"web": "noop"}
    rotated = {"BOX_TOKEN": canary + "-rotated"}
    for args in (("plan",), ("plan", "--json")):
        out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, env=rotated)
        assert out.returncode == 0, out.stderr
        assert canary not in out.stdout + out.stderr
        assert "(sensitive value changed)" in out.stdout
    for f in state.rglob("*"):
        if f.is_file():
            assert canary.encode() not in f.read_bytes()


def test_missing_secret_is_a_clear_error(tmp_path: Path, project: str) -> None:
    definition = "name: web\ntemplate: box\nparams:\n  token: {secret: NOT_SET_ANYWHERE_42}\n"
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": definition})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    [line] = out.stderr.strip().splitlines()  # located at the `{secret: ...}` that names it (it said the file only)
    assert line.startswith("definitions/web.yaml:4:19: definition 'web': secret NOT_SET_ANYWHERE_42 is not set"), line


def test_a_files_secret_not_set_is_located_at_the_entry_that_names_it(tmp_path: Path, project: str) -> None:
    """QA: a `files: [{secret: NAME}]` secret not set was said at the definition's file alone."""
    keyed = ('id: keyed\nversion: "1.0"\nspec:\n  image: syncer-local/busybox:latest\n'
             '  files:\n    - {path: /etc/a, content: x}\n    - {path: /etc/k, secret: NOT_SET_FILE_43}\n')
    repo = simple_repo(tmp_path / "repo", project, templates={"keyed": keyed}, definitions={
        "web": "name: web\ntemplate: keyed\n",
        "api": "name: api\ntemplate: keyed\noverrides:\n  files:\n    - {path: /k, secret: NOT_SET_FILE_44}\n"})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert sorted(out.stderr.strip().splitlines()) == [
        "definitions/api.yaml:5:26: definition 'api': secret NOT_SET_FILE_44 (a file at /k) is not set"
        " (set the environment variable or add it to --secrets-file)",
        "templates/keyed.yaml:7:30: definition 'web': secret NOT_SET_FILE_43 (a file at /etc/k) is not set"
        " (set the environment variable or add it to --secrets-file)"]


def test_secrets_file_supplies_secrets(tmp_path: Path, project: str) -> None:
    definition = "name: web\ntemplate: box\nparams:\n  token: {secret: FILE_ONLY_TOKEN}\n"
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": definition})
    secrets = tmp_path / "secrets.env"
    secrets.write_text("FILE_ONLY_TOKEN=abc123\n")
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "--secrets-file", str(secrets),
                  "plan", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert _actions(data) == {"web": "create"}
    assert "abc123" not in out.stdout


def test_plan_from_a_git_ref_does_not_touch_the_work_tree(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    git_init(repo)
    first = git(repo, "rev-parse", "HEAD")
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "two"))
    (repo / "definitions/extra.yaml").write_text("name: extra\ntemplate: box\n")
    second = commit_all(repo, "second")
    (repo / "definitions/web.yaml").write_text(WEB.replace("one", "three"))  # uncommitted
    _prepare_ref = _plan(repo, tmp_path / "state", "--ref", first)
    assert _prepare_ref["commit"] == first and _prepare_ref["dirty"] is False
    assert _actions(_prepare_ref) == {"web": "create"}
    at_main = _plan(repo, tmp_path / "state", "--ref", "main")
    assert at_main["commit"] == second and _actions(at_main) == {"web": "create", "extra": "create"}
    work = _plan(repo, tmp_path / "state")
    assert work["commit"] == second and work["dirty"] is True
    assert "three" in (repo / "definitions/web.yaml").read_text()
    assert git(repo, "status", "--porcelain") == "M definitions/web.yaml"
    bad = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan", "--ref", "no-such-ref")
    assert bad.returncode == 1 and "unknown git ref 'no-such-ref'" in bad.stderr


def test_out_file_holds_the_json_plan(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan", "--out",
                  str(tmp_path / "plan.json"))
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "plan.json").read_text())
    assert data["format_version"] == 1 and data["fingerprint"].startswith("sha256:")
    assert _actions(data) == {"web": "create"}


def test_observe_lists_once_and_never_inspects(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB + "replicas: 3\n"})
    _prepare(repo, tmp_path / "state")
    calls: list[str] = []

    class Counting(Engine):
        def __init__(self, server: Server) -> None:
            super().__init__(server)
            real = self.reads.containers
            self.reads.containers = lambda *a, **k: (calls.append("list"), real(*a, **k))[1]  # type: ignore
            self.reads.inspect_container = lambda *a, **k: calls.append("inspect")  # type: ignore
            nets = self.reads.networks
            self.reads.networks = lambda *a, **k: (calls.append("networks"), nets(*a, **k))[1]  # type: ignore

    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    result, _, _ = engine.compute_plan(ctx, engine.load(ctx), engines=Counting)
    assert {a.action for a in result.actions} == {"noop"}
    assert calls == ["list", "networks"]  # one container list and one network list per server


def test_unreachable_server_is_one_clear_error(tmp_path: Path, project: str) -> None:
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan",
                  env={"DOCKER_HOST": "tcp://127.0.0.1:1"})
    assert out.returncode == 1 and "cannot reach Docker" in out.stderr and "Traceback" not in out.stderr


def test_demo_against_an_empty_engine_shows_three_creates(tmp_path: Path, project: str) -> None:
    import shutil

    from tests.helpers import REPO_ROOT

    demo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "examples/demo", demo, ignore=shutil.ignore_patterns(".syncer"))
    text = (demo / "syncer.yaml").read_text().replace("project: demo", f"project: {project}")
    (demo / "syncer.yaml").write_text(text)
    for f in (demo / "definitions").rglob("*.yaml"):  # names of our own: the demo may be running here
        f.write_text(f.read_text().replace("demo-", f"{project}-"))
    out = run_cli("--repo", str(demo), "--state-dir", str(tmp_path / "state"), "plan")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("Plan: 3 to create, 0 to recreate, 0 to start, 0 to remove,"
                                       " 1 network(s) to create.")


def test_a_plan_of_one_definition_lists_only_its_containers(tmp_path: Path, project: str, docker_api: Any) -> None:
    """A self-heal plans one definition: its list call is filtered on the definition and a
    missing name is asked for by name, so each answer holds its rows only, not every
    container of the project (or of the engine); the plan is the whole plan's part."""
    repo = simple_repo(tmp_path / "repo", project, definitions={
        "web": WEB + "replicas: 2\n", "api": WEB.replace("name: web", "name: api")})
    state = tmp_path / "state"
    _prepare(repo, state)
    rows: list[list[str]] = []

    class Counting(Engine):
        def __init__(self, server: Server) -> None:
            super().__init__(server)
            real = self.reads.containers

            def listed(*a: Any, **k: Any) -> Any:
                out = real(*a, **k)
                rows.append(sorted(n.lstrip("/") for r in out for n in r["Names"]))
                return out

            self.reads.containers = listed  # type: ignore[method-assign]

    ctx = engine.Context(repo=repo, state_dir=state)
    loaded = engine.load(ctx)
    web2 = next(c.name for c in engine.desired_state(ctx, loaded).containers if c.definition == "web" and c.replica == 2)
    docker_api.remove_container(web2, force=True)
    store = engine.open_store(ctx, loaded)
    try:
        whole = engine.planned(ctx, loaded, store, engines=Engine).plan
        rows.clear()
        part = engine.planned(ctx, loaded, store, engines=Counting, only="web").plan
    finally:
        store.close()
    web1 = next(a.container for a in part.actions if a.replica == 1)
    assert rows == [[web1], []]  # web's own container; nobody holds web-2's name
    assert {(a.container, a.action) for a in part.actions} == {(web1, "noop"), (web2, "create")}
    assert part.actions == tuple(a for a in whole.actions if a.definition == "web")


def test_a_plan_asks_the_engine_for_a_ping_not_its_version(tmp_path: Path, project: str,
                                                          monkeypatch: Any) -> None:
    """The API version every read's URL carries comes from `GET /_ping`'s headers (what the
    docker CLI negotiates with, ~0.4 ms); `GET /version` costs the engine ~7 ms and only
    status shows what it says."""
    from syncer.adapters import engine_http

    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    _prepare(repo, tmp_path / "state")
    asked: list[str] = []
    real = engine_http.UnixClient._request

    def spy(self: Any, path: str, *a: Any, **k: Any) -> Any:
        asked.append(path)
        return real(self, path, *a, **k)

    monkeypatch.setattr(engine_http.UnixClient, "_request", spy)
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    result, _, _ = engine.compute_plan(ctx, engine.load(ctx), engines=Engine)
    assert {a.action for a in result.actions} == {"noop"}
    assert asked[0] == "/_ping" and "/version" not in asked, asked
    asked.clear()
    _, _, servers = engine.status(ctx, engines=Engine)
    assert "/version" in asked and servers[0]["engine_version"]


def test_apply_json_carries_the_plans_desired_hash(tmp_path: Path, project: str) -> None:
    """`apply --json`'s plan is the plan document `plan --json` prints, `desired` included
    (it was empty: a CI job could not match the apply to the plan it reviewed)."""
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB})
    desired = _plan(repo, tmp_path / "state")["desired"]
    assert desired.startswith("sha256:")
    for applied in (True, False):  # a change, then a no-op
        out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "apply", "--auto-approve", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["applied"] is applied and report["plan"]["desired"] == desired


def test_docker_tls_settings_in_the_environment_without_their_files_fail_that_server_only(
        tmp_path: Path, project: str) -> None:
    """A server without `docker:` follows DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH as
    the docker CLI does; TLS asked for without the client's files was `internal error:
    TLSParameterError` for every server of the project."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/ca.pem").write_text("")
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": "name: web\ntemplate: box\n"})
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "plan",
                  env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "certs")})
    assert out.returncode == 1 and "internal error" not in out.stderr, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("server 'local': cannot reach Docker: Path to a certificate and key files"), line


def test_status_while_the_work_tree_is_invalid_shows_what_runs_as_of_the_last_applied_commit(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """QA: during the incident (a broken commit), `syncer status` printed the YAML error alone:
    what runs could not be seen. It shows the status as of the commit the last apply ran at,
    then the errors, exit 1."""
    web = f"name: {project}-web\ntemplate: box\n"
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": web})
    git_init(repo)
    sha = git(repo, "rev-parse", "HEAD").strip()
    state = tmp_path / "state"
    assert run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve").returncode == 0
    (repo / "definitions/web.yaml").write_text(web + "replicas: lots\n")
    commit_all(repo, "broken")
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "status")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stdout.startswith(f"The work tree is invalid (below): as of commit {sha[:12]}, the last one applied\n")
    assert f"{project}-web=running" in out.stdout and "in sync" in out.stdout
    assert out.stderr.startswith("definitions/web.yaml:3:11: replicas: expected integer")
    data = json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "status", "--json").stdout)
    assert data["as_of_commit"] == sha and [d["in_sync"] for d in data["definitions"]] == [True]
