"""Render and plan on data for the project network, files from the repository and jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncer.core import labels as L
from syncer.core.errors import SecretError
from syncer.core.model import ContainerSpec, Desired, LiveContainer, LiveNetwork, Observed, ServerState
from syncer.stages.files import parse_env
from syncer.stages.load import DirTree
from syncer.stages.plan import plan
from syncer.stages.planfile import to_dict
from syncer.stages.render import render, secret_references
from syncer.stages.validate import build_project
from syncer.cli.views import plan_text
from tests.helpers import write_files

KEY = b"k" * 32
GOLDEN = Path(__file__).resolve().parent.parent / "cases" / "plan_text"

TEMPLATE = """
id: app
version: "1"
inputs:
  type: object
  properties:
    title: {type: string, default: shop}
spec:
  image: busybox:latest
  env: {LEVEL: debug}
  env_file: [files/app.env]
  files:
    - {path: /etc/app.conf, source: files/app.conf}
    - {path: /www/index.html, content: "<h1>${inputs.title}</h1>"}
    - {path: /run/key, secret: APP_KEY}
"""
JOB = """
id: migrate
version: "1"
kind: job
spec: {image: "busybox:latest", command: ["true"]}
"""


def _project(tmp_path: Path, definitions: str, extra: str = ""):  # type: ignore[no-untyped-def]
    write_files(tmp_path, {"syncer.yaml": "project: p\n" + extra, "templates/app.yaml": TEMPLATE,
                           "templates/migrate.yaml": JOB, "definitions/d.yaml": definitions})
    return build_project(DirTree(tmp_path), str(tmp_path))


READ = {"files/app.conf": b"listen 80\n", "files/app.env": b"# c\nLEVEL=info\nexport NAME='x y'\n"}


def _render(tmp_path: Path, definitions: str, read: dict[str, bytes] | None = None,
            extra: str = "") -> list[ContainerSpec]:
    p = _project(tmp_path, definitions, extra)
    return list(render(p, secrets={"APP_KEY": "v4lue"}, secret_key=KEY, files=read or READ).containers)


def test_files_enter_the_spec_as_hashes_and_travel_as_bytes(tmp_path: Path) -> None:
    [c] = _render(tmp_path, "name: web\ntemplate: app\n")
    files = c.spec["files"]
    assert files["/etc/app.conf"] == {"source": "files/app.conf", "mode": "0444",
                                      "sha256": "sha256:" + __import__("hashlib").sha256(b"listen 80\n").hexdigest()}
    assert c.payload["/etc/app.conf"] == b"listen 80\n" and c.payload["/www/index.html"] == b"<h1>shop</h1>"
    assert files["/run/key"]["mode"] == "0400" and L.has_secret(files["/run/key"])
    assert b"v4lue" not in c.payload["/run/key"] and "v4lue" not in json.dumps(c.spec)
    assert c.spec["env"] == {"LEVEL": "debug", "NAME": "x y"}  # env wins over env_file
    assert "env_file" not in c.spec


def test_only_the_users_of_a_changed_file_change_hash(tmp_path: Path) -> None:
    defs = "name: web\ntemplate: app\n---\nname: plain\ntemplate: migrate\n"
    a = {c.name: c.spec_hash for c in _render(tmp_path, defs)}
    b = {c.name: c.spec_hash for c in _render(tmp_path, defs, {**READ, "files/app.conf": b"listen 81\n"})}
    assert a["web"] != b["web"] and a["plain"] == b["plain"]


def test_a_file_secret_is_masked_and_must_be_set(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\n")
    assert "APP_KEY" in secret_references(p)
    with pytest.raises(SecretError, match="APP_KEY"):
        render(p, secrets={}, secret_key=KEY, files=READ)


def test_every_container_joins_the_project_network_by_definition_name(tmp_path: Path) -> None:
    defs = ("name: web\ntemplate: migrate\nreplicas: 2\noverrides:\n  networks: {back: {aliases: [db]}}\n---\n"
            "name: side\ntemplate: migrate\noverrides: {network_mode: 'container:web'}\n")
    cs = {c.name: c for c in _render(tmp_path, defs, extra="networks: {back: {}, edge: {external: true}}\n")}
    assert cs["web-2"].spec["networks"] == {"p": {"aliases": ["web"]}, "p_back": {"aliases": ["db", "web"]}}
    assert "networks" not in cs["side"].spec and cs["side"].depends_on == ("web",)
    assert cs["web"].is_job


def _live(name: str, spec: dict[str, object], *, state: str = "exited", status: str = "Exited (0) 1 minute ago",
          networks: tuple[str, ...] = ()) -> LiveContainer:
    lab = L.container_labels(project="p", definition=name, replica=1, revision=1, spec_hash_=L.spec_hash(spec),
                             template_ref="t@1", commit=None, spec=spec)
    return LiveContainer(f"id-{name}", name, "local", state, None, lab, status=status, networks=networks)


def _want(name: str, spec: dict[str, object]) -> ContainerSpec:
    return ContainerSpec("p", "local", name, 1, name, "t@1", spec, L.spec_hash(spec))


JOB_SPEC = {"image": "busybox:latest", "kind": "job", "networks": {"p": {"aliases": ["job"]}}}


def _plan(desired: list[ContainerSpec], live: list[LiveContainer], networks: tuple[LiveNetwork, ...] = (),
          **kw: object):  # type: ignore[no-untyped-def]
    obs = Observed("p", {"local": ServerState("local", True, tuple(live), networks=networks)})
    return plan(Desired("p", tuple(desired), tuple(c.definition for c in desired)), obs, prune=True,
                created_at="t", **kw)  # type: ignore[arg-type]


OURS = LiveNetwork("n1", "p", {L.PROJECT: "p", L.NETWORK: "default"})


def test_a_job_runs_until_its_spec_succeeded_once() -> None:
    changed = {**JOB_SPEC, "command": ["x"]}
    cases = {
        "absent": ([], "run"),
        "done": ([_live("job", JOB_SPEC)], "noop"),
        "failed": ([_live("job", JOB_SPEC, status="Exited (3) 1 minute ago")], "run"),
        "running": ([_live("job", JOB_SPEC, state="running", status="Up 2 seconds")], "noop"),
        "changed": ([_live("job", changed)], "run"),
    }
    for name, (live, expected) in cases.items():
        [a] = [a for a in _plan([_want("job", JOB_SPEC)], live, (OURS,)).actions if a.container == "job"]
        assert a.action == expected, name


def test_networks_are_created_when_missing_and_removed_with_prune_when_unused() -> None:
    back = LiveNetwork("n2", "p_back", {L.PROJECT: "p", L.NETWORK: "back"})
    foreign = LiveNetwork("n3", "q", {L.PROJECT: "q"})
    p = _plan([_want("job", JOB_SPEC)], [_live("job", JOB_SPEC)], (back, foreign))
    nets = [(a.action, a.container) for a in p.actions if a.action.startswith("network")]
    assert nets == [("network create", "p"), ("network remove", "p_back")]
    kept = _plan([_want("job", JOB_SPEC)], [_live("job", JOB_SPEC, networks=("p_back",))], (OURS, back))
    assert not [a for a in kept.actions if a.action.startswith("network")]  # still attached: kept
    assert not [a for a in _plan([], [], (OURS,), ).actions if a.action == "network create"]
    unpruned = plan(Desired("p", (), ()), Observed("p", {"local": ServerState("local", True, networks=(OURS,))}),
                    prune=False, created_at="t")
    assert not unpruned.actions


def test_golden_plan_text_with_networks_and_jobs() -> None:
    web = {"image": "busybox:latest", "networks": {"p": {"aliases": ["web"]}},
           "files": {"/etc/a.conf": {"source": "files/a.conf", "sha256": "sha256:2", "mode": "0444"}}}
    old_web = {**web, "files": {"/etc/a.conf": {"source": "files/a.conf", "sha256": "sha256:1", "mode": "0444"}}}
    live_web = _live("web", old_web, state="running", status="Up 1 minute")
    old = LiveNetwork("n2", "p_old", {L.PROJECT: "p", L.NETWORK: "old"})
    p = _plan([_want("job", JOB_SPEC), _want("web", web)], [live_web], (old,))
    text = plan_text(p)
    path = GOLDEN / "networks-and-jobs.txt"
    if __import__("os").environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    data = to_dict(p)
    assert data["summary"]["run"] == 1 and data["summary"]["network create"] == 1
    assert data["summary"]["network remove"] == 1


def test_env_file_syntax() -> None:
    assert parse_env(b"A=1\n\n# no\nB = 'two words'\nexport C=\"3\"\nnot a line\n") == {
        "A": "1", "B": "two words", "C": "3"}


def test_a_jobs_container_says_it_is_a_job() -> None:
    job = L.container_labels(project="p", definition="m", replica=1, revision=1, spec_hash_="h",
                             template_ref="t@1", commit=None, spec=JOB_SPEC)
    service = L.container_labels(project="p", definition="w", replica=1, revision=1, spec_hash_="h",
                                 template_ref="t@1", commit=None, spec={"image": "x"})
    assert job[L.KIND] == "job" and L.KIND not in service


def test_a_source_that_leaves_the_repository_is_a_located_error(tmp_path: Path) -> None:
    from syncer.core.errors import InvalidProject
    from syncer.engine.repofiles import read_all

    outside = tmp_path / "outside.conf"
    outside.write_text("secret host file\n")
    repo = tmp_path / "repo"
    p = _project(repo, "name: web\ntemplate: app\n")
    (repo / "files").mkdir()
    (repo / "files/app.env").write_text("A=1\n")
    (repo / "files/app.conf").symlink_to(outside)
    with pytest.raises(InvalidProject) as info:
        read_all(p, None)
    assert info.value.lines() == ["templates/app.yaml:12:37: 'files/app.conf' leads outside the repository"
                                  " (a symlink); files must stay inside it"]
    (repo / "files/app.conf").unlink()
    with pytest.raises(InvalidProject, match="templates/app.yaml:12:37: 'files/app.conf' file not found"):
        read_all(p, None)
    (repo / "files/app.conf").write_text("ok\n")
    assert read_all(p, None) == {"files/app.conf": b"ok\n", "files/app.env": b"A=1\n"}
