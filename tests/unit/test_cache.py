"""The validated-project cache: a hit only when not one byte changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syncer.adapters import cache
from syncer.engine import facade as engine
from syncer.core.errors import InvalidProject
from tests.helpers import REPO_ROOT


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
    for f in (state / "cache").glob("*.pickle"):
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
