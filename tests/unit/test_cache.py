"""The validated-project cache: a hit only when not one byte changed; JSON, never pickle."""

from __future__ import annotations

import json
import pickle
import shutil
import stat
from pathlib import Path

import pytest

from syncer.adapters import cache
from syncer.engine import facade as engine
from syncer.core.errors import InvalidProject
from tests.helpers import REPO_ROOT, simple_repo


def _demo(tmp_path: Path) -> Path:
    repo = tmp_path / "demo"
    shutil.copytree(REPO_ROOT / "examples/demo", repo, ignore=shutil.ignore_patterns(".syncer"))
    return repo


def test_second_load_is_a_cache_hit_equal_to_a_fresh_build(tmp_path: Path) -> None:
    repo = _demo(tmp_path)
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    first = engine.load(ctx)
    key = cache.repo_key(repo)
    assert cache.get(tmp_path / "state", key) == first
    assert engine.load(ctx) == first


def test_any_changed_byte_misses(tmp_path: Path) -> None:
    repo = _demo(tmp_path)
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    engine.load(ctx)
    before = cache.repo_key(repo)
    web = repo / "definitions/web.yaml"
    web.write_text(web.read_text().replace("18080", "18081"))
    assert cache.repo_key(repo) != before
    assert engine.load(ctx).definition("demo-web").params["port"] == 18081  # type: ignore[union-attr]


def test_an_invalid_project_is_never_served_from_the_cache(tmp_path: Path) -> None:
    repo = _demo(tmp_path)
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
    engine.load(ctx)
    (repo / "definitions/web.yaml").write_text("name: demo-web\ntemplate: nope\n")
    with pytest.raises(InvalidProject):
        engine.load(ctx)
    with pytest.raises(InvalidProject):
        engine.load(ctx)


def test_a_damaged_entry_counts_as_absent(tmp_path: Path) -> None:
    repo = _demo(tmp_path)
    state = tmp_path / "state"
    engine.load(engine.Context(repo=repo, state_dir=state))
    for f in (state / "cache").glob("project-*.json"):
        f.write_bytes(b"garbage")
    assert cache.get(state, cache.repo_key(repo)) is None
    assert engine.load(engine.Context(repo=repo, state_dir=state)).config.name == "demo"


def test_a_project_with_literal_passwords_is_never_cached(tmp_path: Path) -> None:
    from tests.helpers import simple_repo

    repo = simple_repo(tmp_path / "r", "lit", extra="allow_literal_secrets: true\n",
                       definitions={"web": "name: web\ntemplate: box\nparams: {token: LITERAL-canary-42}\n"})
    state = tmp_path / "state"
    engine.load(engine.Context(repo=repo, state_dir=state))
    assert cache.get(state, cache.repo_key(repo)) is None
    assert not any(b"LITERAL-canary-42" in f.read_bytes() for f in state.rglob("*") if f.is_file())


def _rich(tmp_path: Path) -> Path:
    """A project using every kind of field: servers, webhooks with secrets, tuples, nested params."""
    return simple_repo(
        tmp_path / "rich", "rich",
        extra="servers:\n  local: {environment: staging, description: here}\n  far: {docker: 'tcp://far:2375'}\n"
              "webhooks:\n  - {url: 'http://hooks.example/a', events: [deployment.success], secret: {env: WH}}\n"
              "  - {url: 'https://hooks.example/b'}\n"
              "networks: {back: {internal: true}, front: {}, edge: {external: true}}\n",
        definitions={
            "web": "name: web\ntemplate: box@1.0\nserver: far\nparams: {message: hi, port: 18080}\n",
            "api": "name: api\ntemplate: box\ndepends_on: [web]\nparams: {message: 'a: b'}\n",
        })


def test_a_real_project_reads_back_equal_from_its_json(tmp_path: Path) -> None:
    project = engine.load(engine.Context(repo=_rich(tmp_path), state_dir=tmp_path / "state"))
    assert project.config.webhooks and project.definition("api").depends_on == ("web",)  # type: ignore[union-attr]
    data = json.loads(json.dumps(cache.project_to_json(project)))
    again = cache.project_from_json(data)
    assert again == project
    assert again.definition("web") == project.definition("web")  # the index is rebuilt, not read
    assert isinstance(again.templates, tuple) and isinstance(again.config.template_dirs, tuple)
    assert isinstance(again.config.webhooks[0].events, tuple) and type(again.config.servers) is dict
    assert again.config.internal_networks == ("back",) and again.config.networks["edge"] is True
    assert "_by_name" not in json.dumps(data)


def test_the_entry_on_disk_is_private_json(tmp_path: Path) -> None:
    repo, state = _rich(tmp_path), tmp_path / "state"
    first = engine.load(engine.Context(repo=repo, state_dir=state))
    (entry,) = (state / "cache").iterdir()
    data = json.loads(entry.read_text())
    assert data["format"] == cache.FORMAT and data["key"] == cache.repo_key(repo)
    assert data["project"]["config"]["name"] == "rich"
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "cache").stat().st_mode) == 0o700
    assert cache.get(state, cache.repo_key(repo)) == first


class _Payload:
    """Unpickling this writes a file: what a planted pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (self.marker, "pwned"))  # type: ignore[return-value]


def test_a_planted_pickle_is_never_unpickled(tmp_path: Path) -> None:
    repo, state = _demo(tmp_path), tmp_path / "state"
    engine.load(engine.Context(repo=repo, state_dir=state))
    key, marker = cache.repo_key(repo), tmp_path / "marker"
    planted = pickle.dumps(_Payload(marker))
    for entry in (state / "cache").iterdir():
        entry.write_bytes(planted)
    (state / "cache" / f"project-{key[:32]}.pickle").write_bytes(planted)
    assert cache.get(state, key) is None
    assert engine.load(engine.Context(repo=repo, state_dir=state)).config.name == "demo"
    assert not marker.exists()


@pytest.mark.parametrize("damage", [
    lambda e: dict(e, format=cache.FORMAT + 1),
    lambda e: dict(e, key="0" * 64),
    lambda e: {k: v for k, v in e.items() if k != "project"},
    lambda e: dict(e, project=[]),
    lambda e: dict(e, project=dict(e["project"], extra=1)),
    lambda e: dict(e, project={k: v for k, v in e["project"].items() if k != "config"}),
    lambda e: dict(e, project=dict(e["project"], templates={})),
    lambda e: dict(e, project=dict(e["project"], dirty="no")),
    lambda e: dict(e, project=dict(e["project"], definitions=[{"name": 1}])),
    lambda e: dict(e, project=dict(e["project"], config=dict(e["project"]["config"], servers=[]))),
    lambda e: [e],
    lambda e: None,
    # what a syncer before `internal: true` wrote (FORMAT 2): its config has no internal_networks
    lambda e: dict(e, format=2, project=dict(e["project"], config={
        k: v for k, v in e["project"]["config"].items() if k != "internal_networks"})),
], ids=["format", "key", "no-project", "project-list", "extra-field", "missing-field", "tuple-as-object",
        "bool-as-string", "definition-shape", "mapping-as-list", "top-list", "null", "before-internal-networks"])
def test_an_entry_of_another_shape_or_format_is_a_miss(tmp_path: Path, damage: object) -> None:
    repo, state = _demo(tmp_path), tmp_path / "state"
    engine.load(engine.Context(repo=repo, state_dir=state))
    key = cache.repo_key(repo)
    (entry,) = (state / "cache").iterdir()
    entry.write_text(json.dumps(damage(json.loads(entry.read_text()))))  # type: ignore[operator]
    assert cache.get(state, key) is None
    assert engine.load(engine.Context(repo=repo, state_dir=state)).config.name == "demo"


def _render_repo(tmp_path: Path) -> tuple[Path, Path, engine.Context]:
    """A repository whose specs read a secret and a repo file (files/a.conf), its state dir,
    and the context over both."""
    repo = simple_repo(tmp_path / "r", "rc", definitions={
        "web": "name: web\ntemplate: box\nparams: {token: {secret: TOKEN}}\n",
        "conf": "name: conf\ntemplate: box\noverrides:\n  files:\n    - {path: /etc/a.conf, source: files/a.conf}\n"
                "    - {path: /run/s, secret: TOKEN}\n"})
    (repo / "files").mkdir()
    (repo / "files/a.conf").write_text("one\n")
    state = tmp_path / "state"
    return repo, state, engine.Context(repo=repo, state_dir=state)


def _rendered(ctx: engine.Context, secrets: dict[str, str]) -> object:
    from syncer.engine.project import rendered

    project = engine.load(ctx)
    return rendered(ctx, project, secrets, b"k" * 32)


def test_a_render_is_read_back_equal_and_misses_on_any_input_it_depends_on(tmp_path: Path) -> None:
    from syncer.stages.render import render

    repo, state, ctx = _render_repo(tmp_path)
    canary = "canary-3d1f-never-in-the-state-dir"
    first = _rendered(ctx, {"TOKEN": canary})
    [entry] = (state / "cache").glob("render-*.json")
    assert canary not in entry.read_text() and canary not in str(first)
    cache.RENDERS.last = None  # as a new process: read from the file
    again = _rendered(ctx, {"TOKEN": canary})
    assert again == first
    fresh = render(engine.load(ctx), secrets={"TOKEN": canary}, secret_key=b"k" * 32,
                   files={"files/a.conf": b"one\n"})
    assert again == fresh

    def hashes(d: object) -> dict[str, str]:
        return {c.name: c.spec_hash for c in d.containers}  # type: ignore[attr-defined]

    rotated = _rendered(ctx, {"TOKEN": canary + "2"})  # another secret value: both specs change
    assert hashes(rotated)["web"] != hashes(first)["web"] and hashes(rotated)["conf"] != hashes(first)["conf"]
    (repo / "files/a.conf").write_text("two\n")  # a repo file the spec reads, not YAML
    edited = _rendered(ctx, {"TOKEN": canary})
    assert hashes(edited)["conf"] != hashes(first)["conf"] and hashes(edited)["web"] == hashes(first)["web"]
    assert len(list((state / "cache").glob("render-*.json"))) == 1  # the latest only


def test_a_damaged_render_entry_counts_as_absent(tmp_path: Path) -> None:
    _, state, ctx = _render_repo(tmp_path)
    first = _rendered(ctx, {"TOKEN": "x"})
    [entry] = (state / "cache").glob("render-*.json")
    for damage in ("{", json.dumps({"format": 1, "key": "other", "desired": {}}), "[]"):
        entry.write_text(damage)
        cache.RENDERS.last = None
        assert _rendered(ctx, {"TOKEN": "x"}) == first
        entry = next((state / "cache").glob("render-*.json"))


def test_a_file_read_before_is_read_again_once_it_changed(tmp_path: Path) -> None:
    """The digests a long-running process keeps between cycles follow every change: the
    same size, a new mtime (and one changed within the racy window is never kept)."""
    import os

    repo = _demo(tmp_path)
    web = repo / "definitions/web.yaml"
    old = web.stat().st_mtime_ns - 10**10
    os.utime(web, ns=(old, old))  # written long ago: its digest is kept
    before = cache.repo_key(repo)
    assert str(web) in cache._digests and cache.repo_key(repo) == before
    web.write_text(web.read_text().replace("18080", "18081"))  # same size, mtime now
    changed = cache.repo_key(repo)
    assert changed != before
    web.write_text(web.read_text().replace("18081", "18082"))  # again within the racy window
    assert cache.repo_key(repo) not in (before, changed)
