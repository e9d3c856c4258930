"""`syncer watch` backs off a failed job and a failed first deployment (stages/backoff.py) as
it holds a rolled-back spec: not tried again at every cycle, tried once its wait ends, at once
when its spec changes. A real watch, a real git repository, the real engine."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from syncer.core.clock import epoch
from tests.helpers import (
    HEALTH_CHECKED,
    HEALTHY_IMAGE,
    commit_all,
    git_init,
    job_template,
    run_cli,
    simple_repo,
    wait_until,
)
from tests.watching import Watch, start

pytestmark = pytest.mark.parametrize("project", ["bkf"], indirect=True)  # (projects named bkf-…)


def _finished(repo: Path, state: Path, status: str | None = None) -> list[dict[str, Any]]:
    """The finished deployments, oldest first."""
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--json",
                  *(("--status", status) if status else ()))
    return sorted((d for d in json.loads(out.stdout) if d["finished_at"]), key=lambda d: d["created_at"])


def _row(repo: Path, state: Path) -> dict[str, Any]:
    [row] = json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "status", "--json").stdout)[
        "definitions"]
    return dict(row)


def test_a_failed_job_is_run_again_once_its_wait_ends_not_at_every_cycle(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """A job that exits non-zero used to run again at every cycle (each resync, each commit
    that does not touch it) for ever. Now watch defers it: run again once the wait ends (then
    twice as long), at once when its spec changes."""
    name = f"{project}-migrate"
    job = f"name: {name}\ntemplate: job\nparams: {{script: 'echo x; exit 3'}}\n"
    repo = simple_repo(tmp_path / "repo", project, templates={"job": textwrap.dedent(job_template())},
                       definitions={"migrate": job})
    git_init(repo)
    state = tmp_path / "state"
    w = start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1s",
              "--retry-failed", "8s", debounce="1s")
    [first] = wait_until(lambda: len(r := _finished(repo, state)) == 1 and r, 60, message="the job's failed run")
    assert first["status"] == "failed" and not first["rolled_back"]
    time.sleep(4)  # four resyncs and more: each one defers it
    (repo / "README.md").write_text("a commit that does not touch it\n")
    commit_all(repo, "docs")
    time.sleep(2)
    assert len(_finished(repo, state)) == 1
    row = _row(repo, state)
    assert row["status"] == "failed" and row["held_until"] and epoch(row["held_until"]) > time.time()
    assert f"{name}: deferred: its job failed" in w.text()
    # the wait ends: run once more (and failed again), then deferred twice as long
    second = wait_until(lambda: len(r := _finished(repo, state)) == 2 and r[1], 60, message="run again")
    assert second["status"] == "failed"
    assert epoch(second["created_at"]) - epoch(first["finished_at"]) >= 7.5
    # a new spec is run at once (the wait now runs 16 s)
    (repo / "definitions/migrate.yaml").write_text(job.replace("exit 3", "exit 0"))
    commit_all(repo, "fixed")
    done = wait_until(lambda: len(r := _finished(repo, state)) == 3 and r[2], 60, message="the new spec run")
    assert done["status"] == "success" and done["revision"] == second["revision"] + 1
    assert epoch(done["created_at"]) - epoch(second["finished_at"]) < 15
    assert w.stop() == 0


def test_a_failed_first_deployment_is_not_created_again_at_every_cycle(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """A definition whose first deployment failed its health gate (nothing to roll back to)
    used to be created again at every cycle, each time waiting out its health check. Now watch
    defers it: created again once the wait ends, at once when its spec changes."""
    name = f"{project}-web"
    spec = f"name: {name}\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"
    repo = simple_repo(tmp_path / "repo", project, templates={"hc": HEALTH_CHECKED.replace('"true"', '"false"')},
                       definitions={"web": spec})
    git_init(repo)
    state = tmp_path / "state"
    w = start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1s",
              "--retry-failed", "8s", "--health-timeout", "20", debounce="1s")
    [first] = wait_until(lambda: len(r := _finished(repo, state)) == 1 and r, 60, message="the failed create")
    assert first["status"] == "failed" and not first["rolled_back"]

    def containers() -> list[dict[str, Any]]:
        return list(docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]}))

    time.sleep(4)  # four resyncs and more: each one defers it
    assert len(_finished(repo, state)) == 1 and containers() == []
    row = _row(repo, state)
    assert row["status"] == "failed" and row["held_until"] and row["drift"] == [f"create {name}"]
    assert f"{name}: deferred: its first deployment failed" in w.text()
    second = wait_until(lambda: len(r := _finished(repo, state)) == 2 and r[1], 60, message="created again")
    assert second["status"] == "failed"
    assert epoch(second["created_at"]) - epoch(first["finished_at"]) >= 7.5
    # a new spec is tried at once (the wait now runs 16 s)
    (repo / "templates/hc.yaml").write_text(HEALTH_CHECKED)
    (repo / "definitions/web.yaml").write_text(spec.replace("v: a", "v: b"))
    sha = commit_all(repo, "fixed")
    up = wait_until(lambda: next((c for c in containers() if c["State"] == "running"
                                  and c["Labels"].get("syncer.commit") == sha), None), 60, message="the fix")
    assert up["Created"] - epoch(second["finished_at"]) < 15
    assert w.stop() == 0


def test_what_depends_on_a_deferred_first_deployment_waits_for_it(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """`app` depends on `db`, whose first deployment failed: app was skipped in that apply,
    then, once db was deferred, made without it at the next cycle. It waits for db's wait to
    end, and is tried with it then (a sync of the project: db first, app after it)."""
    db = f"name: {project}-db\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"
    app = f"name: {project}-app\ntemplate: box\ndepends_on: [{project}-db]\n"
    repo = simple_repo(tmp_path / "repo", project, templates={"hc": HEALTH_CHECKED.replace('"true"', '"false"')},
                       definitions={"db": db, "app": app})
    git_init(repo)
    state = tmp_path / "state"
    w = start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1s",
              "--retry-failed", "8s", "--health-timeout", "20", debounce="1s")
    first = wait_until(lambda: len(r := _finished(repo, state)) == 2 and r, 60, message="db failed, app skipped")
    assert {(d["definition"], d["status"]) for d in first} == {(f"{project}-db", "failed"),
                                                               (f"{project}-app", "failed")}

    def made(definition: str) -> list[Any]:
        return list(docker_api.containers(all=True, filters={"label": [f"syncer.project={project}",
                                                                       f"syncer.definition={definition}"]}))

    time.sleep(4)  # four resyncs and more: app waits with db
    assert len(_finished(repo, state)) == 2 and made(f"{project}-app") == []
    # db's wait ends: the project is synced, db tried (and failed) again, app skipped after it, not made
    again = wait_until(lambda: len(r := _finished(repo, state)) == 4 and r[2:], 60, message="tried again")
    assert {d["definition"] for d in again} == {f"{project}-db", f"{project}-app"}
    assert epoch(min(d["created_at"] for d in again)) - epoch(first[0]["finished_at"]) >= 7.5
    assert made(f"{project}-app") == []
    assert w.stop() == 0
