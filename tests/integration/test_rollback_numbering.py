"""A rollback numbers its new revision as a plan does: above the store's latest and the live
containers' `syncer.revision` labels (a state dir restored from an older copy knew revision 2
only while revision 3 ran: the rollback made a second, other revision 3)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from syncer.adapters.store import Store
from syncer.engine import facade as engine
from syncer.engine.options import ApplyOptions
from tests.helpers import simple_repo

pytestmark = pytest.mark.parametrize("project", ["h3"], indirect=True)  # (projects named h3-…)


def test_a_rollback_from_a_restored_state_dir_gives_no_number_a_live_container_carries(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    web, state, options = f"{project}-web", tmp_path / "s", ApplyOptions(stop_timeout=1)

    def apply(message: str) -> engine.Context:
        repo = simple_repo(tmp_path / "r", project, definitions={
            "web": f"name: {web}\ntemplate: box\nparams: {{message: {message}}}\n"})
        ctx = engine.Context(repo=repo, state_dir=state)
        assert engine.apply(ctx, options=options, confirm=lambda p: True).ok
        return ctx

    apply("a")
    apply("b")
    shutil.copytree(state, tmp_path / "copy")  # (knows revisions 1 and 2)
    ctx = apply("c")
    assert docker_api.inspect_container(web)["Config"]["Labels"]["syncer.revision"] == "3"
    shutil.rmtree(state)
    shutil.copytree(tmp_path / "copy", state)

    report = engine.rollback(ctx, web, to=None, options=options, confirm=lambda p: True)  # (to revision 1)
    assert report.ok, report.results
    info = docker_api.inspect_container(web)
    assert info["Config"]["Labels"]["syncer.revision"] == "4" and "MESSAGE=a" in info["Config"]["Env"]
    store = Store(state)
    try:
        assert [(r.number, r.rollback_of) for r in store.revisions(web)] == [(4, 1), (2, None), (1, None)]
    finally:
        store.close()
