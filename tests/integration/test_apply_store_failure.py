"""The store failing during `syncer apply` on a real engine (QA F1: a full disk under the state
dir mid-apply left a recreate halfway: the old container stopped, `<name>_syncer-new` running).

A store failure never abandons Docker work in flight: each deployment under way is carried to
its end (the rename done, or the old container restored), the log lines that cannot be written
are dropped (still shown as progress), nothing more begins, and the apply then fails with the
store's one-line error. A store that fails before any deployment began leaves everything as it
was (a network made for the first one goes again).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncer.adapters.store import StoreError
from syncer.core.labels import TEMP_SUFFIX
from syncer.engine import facade as engine
from syncer.engine.options import ApplyOptions
from tests.helpers import HEALTH_CHECKED, HEALTHY_IMAGE, simple_repo

pytestmark = pytest.mark.parametrize("project", ["h3"], indirect=True)  # (projects named h3-…)

FULL = "state database /x/state.db: database or disk is full"
# healthy a few seconds after its start: the plain deployment ends during this one's health wait
SLOW = HEALTH_CHECKED.replace('[CMD, "true"], interval: 1s, timeout: 2s',
                              '[CMD, sh, -c, "sleep 2"], interval: 1s, timeout: 5s')


class _Disk:
    """The store's writes fail (as on a full disk) once `full` is set; reads still work."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from syncer.adapters.store.db import Db

        self.full, self.refused = False, 0
        real = Db._exec

        def write(db: Db, sql: str, args: Any = ()) -> int:
            if self.full:
                self.refused += 1
                raise StoreError(FULL)
            return real(db, sql, args)

        monkeypatch.setattr(Db, "_exec", write)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Disk]:
    yield _Disk(monkeypatch)


def _repo(root: Path, project: str, v: str) -> Path:
    slow, plain = f"{project}-slow", f"{project}-plain"
    return simple_repo(root, project, templates={"hc": SLOW}, definitions={
        "slow": f"name: {slow}\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: {v}}}\n",
        "plain": f"name: {plain}\ntemplate: box\nparams: {{message: {v}}}\n"})


def _live(api: Any, project: str) -> dict[str, dict[str, Any]]:
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/"): api.inspect_container(r["Id"]) for r in rows}


def test_a_store_failure_during_a_health_wait_carries_the_recreate_through(
        tmp_path: Path, project: str, docker_api: Any, disk: _Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refuses every write from the moment the health-checked recreate starts waiting:
    both recreates end as on success (new spec under the right name, no `_syncer-new`, no old
    container left stopped), the lines shown as progress include what could not be written, and
    the apply fails once, with the store's error."""
    import syncer.engine.containers as applier

    ctx = engine.Context(repo=_repo(tmp_path / "r", project, "a"), state_dir=tmp_path / "s")
    options = ApplyOptions(stop_timeout=1)
    assert engine.apply(ctx, options=options, confirm=lambda p: True).ok
    _repo(tmp_path / "r", project, "b")
    real_wait = applier.wait_ready

    def wait(eng: Any, ident: str, spec: Any, *args: Any, **kwargs: Any) -> bool:
        if spec.get("healthcheck"):
            disk.full = True
        return real_wait(eng, ident, spec, *args, **kwargs)

    monkeypatch.setattr(applier, "wait_ready", wait)
    shown: list[tuple[str, str]] = []
    with pytest.raises(StoreError) as raised:
        engine.apply(ctx, options=options, confirm=lambda p: True, progress=lambda d, line: shown.append((d, line)))
    assert str(raised.value) == FULL and disk.refused
    live = _live(docker_api, project)
    assert set(live) == {f"{project}-slow", f"{project}-plain"}, sorted(live)  # (no *_syncer-new, no old one)
    assert not any(name.endswith(TEMP_SUFFIX) for name in live)
    for name, info in live.items():
        assert info["State"]["Running"], name
        assert info["Config"]["Labels"]["syncer.revision"] == "2", name
    assert "V=b" in live[f"{project}-slow"]["Config"]["Env"]
    assert live[f"{project}-slow"]["State"]["Health"]["Status"] == "healthy"
    assert (f"{project}-slow", "healthy") in shown  # not written, still shown
    assert any(d == f"{project}-slow" and line.startswith("replaced ") for d, line in shown), shown


def test_a_store_failure_before_any_docker_work_changes_nothing(
        tmp_path: Path, project: str, docker_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store refuses the first deployment's record once (a write that waited out the busy
    timeout): that deployment is not run, nor any after it though the store answers again — no
    container is made, stopped or removed — and the apply fails with the store's error."""
    from syncer.adapters.store import Store

    ctx = engine.Context(repo=_repo(tmp_path / "r", project, "a"), state_dir=tmp_path / "s")
    options = ApplyOptions(stop_timeout=1, parallelism=1)  # (one at a time: the second begins after)
    assert engine.apply(ctx, options=options, confirm=lambda p: True).ok
    before = {name: info["Id"] for name, info in _live(docker_api, project).items()}
    _repo(tmp_path / "r", project, "b")
    real_add, calls = Store.add_deployment, []

    def add(store: Store, **kwargs: Any) -> str:
        calls.append(kwargs["definition"])
        if len(calls) == 1:
            raise StoreError(FULL)
        return real_add(store, **kwargs)

    monkeypatch.setattr(Store, "add_deployment", add)
    with pytest.raises(StoreError, match="disk is full"):
        engine.apply(ctx, options=options, confirm=lambda p: True)
    live = _live(docker_api, project)
    assert {name: info["Id"] for name, info in live.items()} == before
    assert all(info["State"]["Running"] for info in live.values())
    assert len(calls) == 1


def test_a_store_failure_at_the_first_deployment_removes_the_network_the_apply_made(
        tmp_path: Path, project: str, docker_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project's first apply makes its network before the first deployment: when the store
    refuses that deployment's record, nothing began, and the network goes again (Docker as the
    apply found it)."""
    from syncer.adapters.store import Store

    ctx = engine.Context(repo=_repo(tmp_path / "r", project, "a"), state_dir=tmp_path / "s")

    def add(store: Store, **kwargs: Any) -> str:
        raise StoreError(FULL)

    monkeypatch.setattr(Store, "add_deployment", add)
    with pytest.raises(StoreError, match="disk is full"):
        engine.apply(ctx, options=ApplyOptions(stop_timeout=1), confirm=lambda p: True)
    assert docker_api.networks(filters={"label": [f"syncer.project={project}"]}) == []
    assert _live(docker_api, project) == {}
