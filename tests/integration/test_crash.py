"""Crash safety of `syncer apply` on a real engine: kill -9 at many moments, then converge.

DESIGN.md "Apply": an apply killed at any moment leaves the store consistent and the next
apply converges (renamed-aside containers are found by label and resolved); one apply at a
time per project, a second one says who holds the lock since when and exits 1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from syncer.engine import facade as engine
from syncer.core.labels import SPEC_HASH, TEMP_SUFFIX
from syncer.stages.planfile import to_dict
from tests.helpers import HEALTHY_IMAGE, IMAGE, run_cli, wait_until, write_files

# Stops within a fraction of a second on SIGTERM: `wait` is interrupted by the trapped signal.
# No network: nothing here needs one, starts are quicker, and the shared engine's bridge
# is not a dependency of these tests.
LOOP = """
id: loop
version: "1.0"
inputs:
  type: object
  properties:
    message: {type: string, default: hello}
spec:
  image: @IMAGE@
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]
  env:
    MESSAGE: ${inputs.message}
  network_mode: none
""".replace("@IMAGE@", IMAGE)

# Healthy once the test opens the gate (a file on a bind mount): a deployment that lasts
# exactly as long as the test wants. Probe failures fall in the start period: never unhealthy.
GATED = """
id: gated
version: "1.0"
inputs:
  type: object
  properties:
    message: {type: string, default: hello}
spec:
  image: @IMAGE@
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]
  env:
    MESSAGE: ${inputs.message}
  network_mode: none
  volumes: [{host_path: "GATE", mount_path: /gate, read_only: true}]
  healthcheck: {test: [CMD, test, -f, /gate/open], interval: 300ms, timeout: 2s, start_period: 10m, retries: 3}
""".replace("@IMAGE@", HEALTHY_IMAGE)

ITERATIONS = 20
APPLY = ("apply", "--auto-approve", "--stop-timeout", "1")


def _definition(name: str, message: str, replicas: int = 1, template: str = "loop") -> str:
    return f"name: {name}\ntemplate: {template}\nreplicas: {replicas}\nparams: {{message: {message}}}\n"


def _write_repo(repo: Path, project: str, i: int) -> dict[str, int]:
    """The repo of iteration `i`; returns definition → replicas as desired."""
    message = "blue" if i % 2 else "green"  # alternates: every container is recreated each time
    want = {f"{project}-a": (2, 2, 3, 2, 1)[i % 5], f"{project}-b": 1}
    if i % 3 != 2:  # added and removed again along the loop
        want[f"{project}-c"] = 1
    defs = repo / "definitions"
    if defs.exists():
        for f in defs.iterdir():
            f.unlink()
    files = {"syncer.yaml": f"project: {project}\n", "templates/loop.yaml": LOOP}
    for name, replicas in want.items():
        files[f"definitions/{name}.yaml"] = _definition(name, message, replicas)
    write_files(repo, files)
    return want


def _names(want: dict[str, int]) -> set[str]:
    return {name if r == 1 else f"{name}-{r}" for name, n in want.items() for r in range(1, n + 1)}


def _containers(api: Any, project: str) -> list[dict[str, Any]]:
    return api.containers(all=True, filters={"label": [f"syncer.project={project}"]})


def _db(state: Path) -> sqlite3.Connection:
    db = sqlite3.connect(state / "state.db", timeout=30)
    db.row_factory = sqlite3.Row
    return db


def _unfinished(state: Path) -> set[str]:
    db = _db(state)
    try:
        return {r["id"] for r in db.execute(
            "SELECT id FROM deployments WHERE status NOT IN ('success','failed')")}
    finally:
        db.close()


def _spawn_apply(repo: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("SYNCER_REPO", None)
    return subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "--state-dir", str(state),
                             *APPLY, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _plan_actions(repo: Path, state: Path, *, cli: bool) -> list[dict[str, Any]]:
    """The actions of `syncer plan --json`: the real command, or (to save a process start per
    iteration on a busy machine) the same engine.compute_plan + plan.to_dict it runs."""
    if cli:
        out = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--json")
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout)["actions"])
    ctx = engine.Context(repo=repo, state_dir=state)
    result, _, _ = engine.compute_plan(ctx, engine.load(ctx))
    return list(to_dict(result)["actions"])


def _assert_converged(api: Any, project: str, repo: Path, state: Path, want: dict[str, int], where: str,
                      *, cli: bool = True) -> None:
    live = _containers(api, project)
    names = [c["Names"][0].lstrip("/") for c in live]
    assert sorted(names) == sorted(_names(want)), f"{where}: live {sorted(names)}"
    assert not [n for n in names if n.endswith(TEMP_SUFFIX)], where
    assert all(c["State"] == "running" for c in live), f"{where}: {[(c['Names'], c['State']) for c in live]}"
    actions = _plan_actions(repo, state, cli=cli)
    assert {a["action"] for a in actions} == {"noop"}, f"{where}: {actions}"
    expected = {a["container"]: a["spec_hash"] for a in actions}
    assert {c["Names"][0].lstrip("/"): c["Labels"][SPEC_HASH] for c in live} == expected, where
    db = _db(state)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", where
        stuck = db.execute("SELECT id, status FROM deployments WHERE status IN ('pending','running')").fetchall()
        assert not stuck, f"{where}: {[dict(r) for r in stuck]}"
        assert not db.execute("SELECT id FROM runs WHERE status='running'").fetchall(), where
        # the store tells the truth about definitions too: in sync means active at the planned revision
        stored = {r["name"]: dict(r) for r in db.execute("SELECT * FROM definitions")}
        revisions = {a["definition"]: a["revision"] for a in actions}
        for name in want:
            row = stored.get(name, {})
            assert (row.get("status"), row.get("current_revision")) == ("active", revisions[name]), (where, row)
        for name, row in stored.items():
            if name not in want:
                assert row["status"] == "removed" and row["deleted_at"], (where, row)
    finally:
        db.close()


def test_kill_9_at_any_moment_then_apply_converges(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo, state = tmp_path / "repo", tmp_path / "state"
    want = _write_repo(repo, project, 0)
    started = time.monotonic()
    first = run_cli("--repo", str(repo), "--state-dir", str(state), *APPLY)
    assert first.returncode == 0, first.stdout + first.stderr
    # Kill moments spread over about one apply's length (at least 0.05 s .. 2 s): on a slow,
    # busy engine an apply lasts longer, and fixed delays would all land before the first action.
    span = min(max(2.0, 0.9 * (time.monotonic() - started)), 12.0)
    _assert_converged(docker_api, project, repo, state, want, "first apply")

    interrupted: set[str] = set()
    leftovers = completed = 0
    for i in range(1, ITERATIONS + 1):
        want = _write_repo(repo, project, i)
        delay = 0.05 + (i - 1) * (span - 0.05) / (ITERATIONS - 1)  # increasing: a different moment each time
        proc = _spawn_apply(repo, state)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        completed += proc.returncode == 0
        where = f"iteration {i} (killed after {delay:.2f}s, rc {proc.returncode})"
        left = _unfinished(state) if (state / "state.db").exists() else set()
        leftovers += any(c["Names"][0].endswith(TEMP_SUFFIX) for c in _containers(docker_api, project))

        out = run_cli("--repo", str(repo), "--state-dir", str(state), *APPLY)
        assert out.returncode == 0, f"{where}: {out.stdout}{out.stderr}"
        assert "Traceback" not in out.stderr + out.stdout, where
        _assert_converged(docker_api, project, repo, state, want, where, cli=i == ITERATIONS)
        if left:
            assert "interrupted" in out.stdout, where
            db = _db(state)
            try:
                rows = db.execute(f"SELECT id, status, error, finished_at FROM deployments WHERE id IN "
                                  f"({','.join('?' * len(left))})", sorted(left)).fetchall()
            finally:
                db.close()
            assert len(rows) == len(left), where
            for r in rows:
                assert (r["status"], r["error"]) == ("failed", "interrupted") and r["finished_at"], (where, dict(r))
            interrupted |= left
    print(f"\nkill moments 0.05..{span:.2f}s; interrupted deployments: {len(interrupted)};"
          f" kills that left a {TEMP_SUFFIX} container: {leftovers}; applies done before the kill: {completed}")
    assert interrupted, "no kill landed inside a deployment: the delays no longer cover the apply"
    db = _db(state)
    try:
        stored = {r[0] for r in db.execute("SELECT id FROM deployments WHERE error='interrupted'")}
        assert interrupted <= stored
        assert db.execute("SELECT COUNT(*) FROM runs WHERE status='interrupted'").fetchone()[0] >= 1
    finally:
        db.close()


def _lock_holder(state: Path) -> dict[str, Any]:
    try:
        return json.loads((state / "apply.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def test_second_apply_is_refused_while_the_lock_is_held(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo, state, gate = tmp_path / "repo", tmp_path / "state", tmp_path / "gate"
    gate.mkdir()
    name = f"{project}-slow"
    write_files(repo, {"syncer.yaml": f"project: {project}\npolicy: {{bind_mounts: [{gate}]}}\n", "templates/gated.yaml": GATED.replace("GATE", str(gate)),
                       f"definitions/{name}.yaml": _definition(name, "one", template="gated")})
    cli = ("--repo", str(repo), "--state-dir", str(state))

    def running(suffix: str = "") -> bool:
        return any(c["Names"][0] == f"/{name}{suffix}" and c["State"] == "running"
                   for c in _containers(docker_api, project))

    first = _spawn_apply(repo, state)
    # the lock is taken and the deployment waits for the gate: it lasts until the test opens it
    wait_until(lambda: _lock_holder(state).get("pid") == first.pid, timeout=60, message="the lock")
    wait_until(running, timeout=60, message="the container")
    second = run_cli(*cli, *APPLY)
    assert second.returncode == 1, second.stdout + second.stderr
    message = second.stderr
    assert f"pid {first.pid}" in message and socket.gethostname() in message and "since" in message, message
    assert "Traceback" not in message
    assert first.poll() is None
    (gate / "open").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    again = run_cli(*cli, *APPLY)
    assert again.returncode == 0, again.stdout + again.stderr

    # kill -9 while holding the lock (mid-recreate, the old one stopped): the next apply takes it over
    (gate / "open").unlink()
    (repo / f"definitions/{name}.yaml").write_text(_definition(name, "two", template="gated"))
    killed = _spawn_apply(repo, state)
    wait_until(lambda: _lock_holder(state).get("pid") == killed.pid, timeout=60, message="the lock")
    wait_until(lambda: running(TEMP_SUFFIX), timeout=60, message="the new container")
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert _lock_holder(state).get("pid") == killed.pid  # the file still names the dead holder
    (gate / "open").touch()
    after = run_cli(*cli, *APPLY)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "interrupted" in after.stdout
    _assert_converged(docker_api, project, repo, state, {name: 1}, "after the killed holder")
