"""An apply killed during a health wait, on a real engine (QA F4: `kill -9` during a *create*'s
health wait left a container that turned unhealthy counted as in sync: `plan` said "No
changes", the next apply did nothing, `status` called it active).

The next plan gates such a container again: a definition whose latest deployment, at the
revision it is planned at, was interrupted has its running containers planned as `start`
(Docker answers 304 for one already running) and waited for, as any start is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import IMAGE, run_cli, simple_repo, wait_until

pytestmark = pytest.mark.parametrize("project", ["h3"], indirect=True)  # (projects named h3-…)

CAUSE = "its deployment was interrupted before its health was confirmed: waiting for it again"
# `bad` never passes its probe (unhealthy once its start period ends); `good` passes it once the
# test puts `up` in the bind-mounted `GATE`, after the kill: both are still in their health wait
# when the apply is killed, however slow the machine (bad's start period outlasts the start of both)
PROBED = f"""
id: probed
version: "1.0"
inputs: {{type: object, properties: {{probe: {{type: string}}, start: {{type: string}}}}}}
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  network_mode: none
  volumes: [{{host_path: "GATE", mount_path: /gate, read_only: true}}]
  healthcheck: {{test: [CMD-SHELL, "${{inputs.probe}}"], interval: 1s, timeout: 2s, retries: 1,
                start_period: "${{inputs.start}}"}}
"""


def _cli(repo: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def _health(api: Any, name: str) -> str:
    return str(((api.inspect_container(name)["State"].get("Health") or {}).get("Status")) or "")


def _running(api: Any, name: str) -> bool:
    try:
        return bool(api.inspect_container(name)["State"]["Running"])
    except Exception:  # noqa: BLE001 - not made yet
        return False


def test_a_create_killed_in_its_health_wait_is_gated_again_by_the_next_apply(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    bad, good = f"{project}-bad", f"{project}-good"
    gate = tmp_path / "gate"
    gate.mkdir()
    repo = simple_repo(tmp_path / "r", project, templates={"probed": PROBED.replace("GATE", str(gate))},
                       extra=f"policy: {{bind_mounts: [{gate}]}}\n", definitions={
        "bad": f"name: {bad}\ntemplate: probed\nparams: {{probe: 'false', start: 10s}}\n",
        "good": f"name: {good}\ntemplate: probed\nparams: {{probe: 'test -f /gate/up', start: 10m}}\n"})
    state = tmp_path / "s"
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_REPO"}
    apply = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "--state-dir", str(state),
                              "apply", "--auto-approve", "--stop-timeout", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_until(lambda: _running(docker_api, bad) and _running(docker_api, good), 60, message="both started")
        assert apply.poll() is None, "the apply ended before its health wait"
    finally:
        apply.send_signal(signal.SIGKILL)
        apply.wait()
    (gate / "up").touch()  # good passes its probe from now on (its health wait was cut by the kill)
    wait_until(lambda: _health(docker_api, bad) == "unhealthy" and _health(docker_api, good) == "healthy", 60,
               message="bad unhealthy, good healthy")

    planned = _cli(repo, state, "plan", "--json", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    actions = {a["container"]: (a["action"], a["cause"]) for a in json.loads(planned.stdout)["actions"]}
    assert actions == {bad: ("start", CAUSE), good: ("start", CAUSE)}, actions
    rows = {d["definition"]: d for d in json.loads(_cli(repo, state, "status", "--json").stdout)["definitions"]}
    assert rows[bad]["status"] != "active" and not rows[bad]["in_sync"], rows[bad]

    applied = _cli(repo, state, "apply", "--auto-approve", "--stop-timeout", "1")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    deps = json.loads(_cli(repo, state, "deployments", "list", "--json").stdout)
    latest = {d["definition"]: d for d in sorted(deps, key=lambda d: d["created_at"])}
    assert latest[good]["status"] == "success" and latest[good]["actions"] == [f"start {good}"], latest[good]
    assert latest[bad]["status"] == "failed" and "unhealthy" in (latest[bad]["error"] or ""), latest[bad]
    assert docker_api.inspect_container(good)["State"]["Running"]  # (a start gates; it never removes)
    rows = {d["definition"]: d for d in json.loads(_cli(repo, state, "status", "--json").stdout)["definitions"]}
    assert rows[bad]["status"] == "failed" and rows[good]["status"] == "active", rows
    # the gate ran: its verdict stands (an unhealthy container is not recreated: its spec is git's)
    again = _cli(repo, state, "plan", "--json", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    # and the next apply (nothing to do) does not settle it back to active while it is unhealthy
    assert _cli(repo, state, "apply", "--auto-approve").returncode == 0
    rows = {d["definition"]: d for d in json.loads(_cli(repo, state, "status", "--json").stdout)["definitions"]}
    assert rows[bad]["status"] == "failed" and rows[good]["status"] == "active", rows


# `v` changes the spec (a recreate). Nothing in the container decides when a probe passes: the
# test does (a leftover healthy before the kill would be renamed by the killed apply; one
# unhealthy when the next apply plans would not be adopted). At v=a `probe` is `true`; at v=b
# web's passes once the test puts `up` in the bind-mounted `GATE`, only after the kill, and
# bad's (`false`) never does: the start period outlasts the test, so bad's leftover stays
# `starting` (adoptable) until the adopting apply's short health timeout fails it.
SLOW = f"""
id: slow
version: "1.0"
inputs: {{type: object, properties: {{v: {{type: string}}, probe: {{type: string}}}}}}
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  env: {{V: "${{inputs.v}}"}}
  volumes: [{{host_path: "GATE", mount_path: /gate, read_only: true}}]
  healthcheck: {{test: [CMD-SHELL, "${{inputs.probe}}"], interval: 1s, timeout: 2s, retries: 1, start_period: 10m}}
"""


def test_a_recreate_killed_in_its_health_wait_is_finished_with_its_leftover_not_made_again(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """QA F7: the next plan adopts `<name>_syncer-new` when it runs the wanted spec (no remove,
    no second create); the apply gates its health, removes the old container and renames it.
    An adopted leftover that fails the gate goes, and the old container, which the killed
    recreate had stopped, runs again."""
    from syncer.engine import facade as engine
    from syncer.engine.options import ApplyOptions

    web, bad = f"{project}-web", f"{project}-bad"
    new = {name: f"{name}_syncer-new" for name in (web, bad)}
    gate = tmp_path / "gate"
    gate.mkdir()

    def repo(v: str, web_probe: str, bad_probe: str) -> Path:
        return simple_repo(tmp_path / "r", project, templates={"slow": SLOW.replace("GATE", str(gate))},
                           extra=f"policy: {{bind_mounts: [{gate}]}}\n", definitions={
            "web": f"name: {web}\ntemplate: slow\nparams: {{v: {v}, probe: '{web_probe}'}}\n",
            "bad": f"name: {bad}\ntemplate: slow\nparams: {{v: {v}, probe: '{bad_probe}'}}\n"})

    state = tmp_path / "s"
    ctx = engine.Context(repo=repo("a", "true", "true"), state_dir=state)
    assert engine.apply(ctx, options=ApplyOptions(stop_timeout=1), confirm=lambda p: True).ok
    old = {name: docker_api.inspect_container(name)["Id"] for name in (web, bad)}
    repo("b", "test -f /gate/up", "false")
    env = {k: v for k, v in os.environ.items() if k != "SYNCER_REPO"}
    apply = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(tmp_path / "r"), "--state-dir", str(state),
                              "apply", "--auto-approve", "--stop-timeout", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:  # (neither leftover can pass its probe yet: the apply waits for both, however long this takes)
        wait_until(lambda: all(_running(docker_api, t) for t in new.values()), 60, message="the new ones started")
        assert apply.poll() is None and _health(docker_api, new[web]) != "healthy", "killed after its health wait"
    finally:
        apply.send_signal(signal.SIGKILL)
        apply.wait()
    left = docker_api.inspect_container(new[web])["Id"]
    assert not any(docker_api.inspect_container(i)["State"]["Running"] for i in old.values())  # (down until then)
    (gate / "up").touch()  # web's leftover passes its probe from now on: its gate in the next apply passes at once
    wait_until(lambda: _health(docker_api, new[web]) == "healthy", 30, message="web's leftover healthy")

    planned = json.loads(_cli(tmp_path / "r", state, "plan", "--json").stdout)["actions"]
    assert sorted((a["action"], a["container"]) for a in planned) == [("recreate", bad), ("recreate", web)], planned
    assert all(a["cause"].endswith(f"; finishing an interrupted recreate: {new[a['container']]} already runs the"
                                   " wanted spec") for a in planned), planned
    shown: list[tuple[str, str]] = []
    # bad's leftover is still `starting` (its start period is 10m): the health timeout fails its gate
    report = engine.apply(ctx, options=ApplyOptions(stop_timeout=1, health_timeout=3), confirm=lambda p: True,
                          progress=lambda d, line: shown.append((d, line)))
    results = {r.definition: r for r in report.results}
    assert results[web].ok and not results[bad].ok and results[bad].rolled_back, report.results
    info = docker_api.inspect_container(web)
    assert info["Id"] == left and info["State"]["Health"]["Status"] == "healthy", info["State"]  # the leftover itself
    assert "V=b" in info["Config"]["Env"] and info["Config"]["Labels"]["syncer.revision"] == "2"
    restored = docker_api.inspect_container(bad)
    assert restored["Id"] == old[bad] and restored["State"]["Running"] and "V=a" in restored["Config"]["Env"]
    names = {r["Names"][0].lstrip("/") for r in docker_api.containers(all=True, filters={"label": [
        f"syncer.project={project}"]})}
    assert names == {web, bad}  # the old web removed, the failed leftover too, nothing made again
    assert not any(line.startswith("created ") for _d, line in shown), shown
    assert all(any(d == name and line.startswith(f"adopted {new[name]}") for d, line in shown) for name in new), shown
