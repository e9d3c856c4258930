"""What `status`, `plan` and `instances` say of a Swarm service whose tasks do not all run, on a
real single-node Swarm (tests/swarmd.py, started for this module): QA's four findings on a real
swarm — `running` with 1 of 3 tasks running, `starting` on a drained node, a plan that said only
"in sync" while no task ran, and `instances` without a healthy task's health."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import HEALTHY_IMAGE, run_cli, started, unique, wait_until
from tests.integration.test_swarm import _apply, _repo
from tests.swarmd import SwarmDockerd

NO_NODE = "no suitable node"


@pytest.fixture(scope="module")
def swarm(docker_api: Any) -> Iterator[SwarmDockerd]:
    """One Swarm manager for every test of this module."""
    yield from started(SwarmDockerd(), "a Swarm manager")


@pytest.fixture
def sproject(swarm: SwarmDockerd) -> Iterator[str]:
    """A project of this test's own (`sws-…`), removed from the swarm after."""
    name = unique("sws")
    yield name
    swarm.remove_project(name)


@pytest.fixture
def drain(swarm: SwarmDockerd) -> Iterator[Any]:
    """`drain()` drains the swarm's one node (its tasks go pending); it is active again after."""
    node = swarm.docker("node", "ls", "-q").split()[0]
    yield lambda: swarm.docker("node", "update", "--availability", "drain", node)
    swarm.docker("node", "update", "--availability", "active", node)


def _row(repo: Path, name: str) -> dict[str, Any]:
    """`status --json`'s one container entry (the service) of definition `name`."""
    out = run_cli("--repo", str(repo), "status", "--json")
    assert out.returncode == 0, out.stderr
    [row] = [r for r in json.loads(out.stdout)["definitions"] if r["definition"] == name]
    [service] = row["containers"]
    return dict(service)


def _states(swarm: SwarmDockerd, name: str) -> list[str]:
    """The states of the service's tasks Swarm wants running, as Docker's CLI says them."""
    out = swarm.docker("service", "ps", name, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _three(tmp_path: Path, sproject: str, swarm: SwarmDockerd, name: str, extra: str = "", *,
           config: str = "") -> Path:
    """Definition `name`: 3 replicas of the `box` template (`extra`: more of its YAML), applied."""
    repo = _repo(tmp_path / "repo", sproject, swarm, {name: f"name: {name}\ntemplate: box\nreplicas: 3\n{extra}"},
                 local=False, extra=config)
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    return repo


def test_status_says_a_service_with_1_of_its_3_tasks_running_is_degraded_and_why(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """Slots 2 and 3 exit 3 once a file appears in a directory bound into the tasks (after the
    apply proved all three): Swarm restarts them, they fail again, slot 1 keeps running."""
    name = f"web-{sproject[4:]}"
    shared = tmp_path / "shared"
    shared.mkdir()
    failing = ('[sh, -c, "trap \'exit 0\' TERM; while true; do if [ $SLOT != 1 ] && [ -f /data/fail ];'
               ' then exit 3; fi; sleep 1; done"]')
    repo = _three(tmp_path, sproject, swarm, name, "overrides:\n  command: " + failing + "\n"
                  "  env: {SLOT: '{{.Task.Slot}}'}\n"
                  f"  volumes: [{{host_path: {shared}, mount_path: /data}}]\n",
                  config=f"policy: {{bind_mounts: [{shared}]}}\n")
    assert _row(repo, name)["state"] == "running"
    (shared / "fail").write_text("")

    def degraded() -> dict[str, Any] | None:
        row = _row(repo, name)
        return row if row["state"] == "degraded" and "last failure" in row["status"] else None

    row = wait_until(degraded, timeout=90, interval=1, message="the service degraded")
    assert row["status"].startswith("1/3 task(s) running: ") and row["health"] is None, row
    assert "last failure: task: non-zero exit (3)" in row["status"], row
    text = run_cli("--repo", str(repo), "status").stdout
    assert f"{name}=degraded (1/3 task(s) running: " in text, text


def test_status_says_the_tasks_of_a_drained_node_are_not_placed_and_swarms_reason(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str, drain: Any) -> None:
    name = f"web-{sproject[4:]}"
    repo = _three(tmp_path, sproject, swarm, name)
    drain()
    row = wait_until(lambda: (r := _row(repo, name))["state"] == "pending" and r, timeout=60, interval=1,
                     message="the service pending")
    assert row["status"].startswith(f"0/3 task(s) running: 3 not placed: {NO_NODE}"), row
    text = run_cli("--repo", str(repo), "status").stdout
    assert f"{name}=pending (0/3 task(s) running: 3 not placed: {NO_NODE}" in text, text


def test_the_plan_on_a_drained_node_is_a_noop_that_names_the_tasks_not_running_and_why(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str, drain: Any) -> None:
    """The spec is in sync (nothing for syncer to write: exit 0 under --detailed-exitcode), but
    the plan's line says 0/3 run and Swarm's reason, shown without --show-noop."""
    name = f"web-{sproject[4:]}"
    repo = _three(tmp_path, sproject, swarm, name)
    drain()
    wait_until(lambda: _states(swarm, name) == ["Pending"] * 3, timeout=60, interval=1, message="the tasks pending")
    out = run_cli("--repo", str(repo), "plan", "--json")
    [a] = json.loads(out.stdout)["actions"]
    assert a["action"] == "noop" and a["cause"].startswith(
        f"in sync, but 0/3 task(s) running: 3 not placed: {NO_NODE}"), a
    assert a["cause"].endswith("(Swarm places them when a node can take them)"), a
    out = run_cli("--repo", str(repo), "plan", "--detailed-exitcode")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"= noop     {name}  rev 1   in sync, but 0/3 task(s) running: 3 not placed" in out.stdout, out.stdout
    assert f"Not all tasks running: {name} (see above)." in out.stdout, out.stdout


def test_instances_gives_a_task_the_health_of_its_container_on_the_manager(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """The image has a HEALTHCHECK; Swarm's task list has no health, the container list has."""
    name = f"web-{sproject[4:]}"
    repo = _three(tmp_path, sproject, swarm, name, f"params: {{image: '{HEALTHY_IMAGE}'}}\n")

    def healthy() -> list[dict[str, Any]] | None:
        out = run_cli("--repo", str(repo), "instances", "list", "--definition", name, "--json")
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        return rows if len(rows) == 3 and all(r["state"] == "running" for r in rows) else None

    rows = wait_until(healthy, timeout=60, interval=1, message="three tasks running")
    assert [r["health"] for r in rows] == ["healthy"] * 3, rows


def test_a_service_whose_tasks_keep_failing_has_a_row_per_slot_and_is_failing_once_none_runs(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """A slot's task exits 1 at once once `fail-<slot>` is in a directory bound into the tasks
    (after the apply proved all three). Its next task waits out a 30 s restart delay as desired
    `ready` (long enough to be seen every time: Swarm's list of tasks desired `running` left
    those slots out — 1 row of 3 —, and the test never waits the delay out); with none running
    the service is `failing`, not `starting`."""
    name = f"web-{sproject[4:]}"
    shared = tmp_path / "shared"
    shared.mkdir()
    failing = '[sh, -c, "trap \'exit 0\' TERM; while [ ! -f /data/fail-$SLOT ]; do sleep 1; done; exit 1"]'
    repo = _three(tmp_path, sproject, swarm, name, "overrides:\n  command: " + failing + "\n"
                  "  env: {SLOT: '{{.Task.Slot}}'}\n  restart_policy: {delay: 30s, max_attempts: 3}\n"
                  f"  volumes: [{{host_path: {shared}, mount_path: /data}}]\n",
                  config=f"policy: {{bind_mounts: [{shared}]}}\n")
    for slot in (2, 3):
        (shared / f"fail-{slot}").write_text("")

    def rows() -> list[tuple[str, str, str]]:
        out = run_cli("--repo", str(repo), "instances", "list", "--definition", name, "--json")
        assert out.returncode == 0, out.stderr
        return [(r["name"], r["state"], r["status"]) for r in json.loads(out.stdout)]

    exit1 = "last failure: task: non-zero exit (1)"
    waiting = f"waiting out its restart delay (task ready); {exit1}"
    two = [(f"{name}.1", "running", "task running"), (f"{name}.2", "restarting", waiting),
           (f"{name}.3", "restarting", waiting)]
    wait_until(lambda: rows() == two, timeout=60, interval=0.5, message=f"two slots waiting out their delay: {two}")
    row = _row(repo, name)
    assert (row["state"], row["status"]) == ("degraded", f"1/3 task(s) running: 2 restarting; {exit1}"), row

    (shared / "fail-1").write_text("")
    row = wait_until(lambda: (r := _row(repo, name))["state"] == "failing" and r, timeout=60, interval=0.5,
                     message="the service failing")
    assert row["status"] == f"0/3 task(s) running: 3 restarting; {exit1}", row
    assert [state for _, state, _ in rows()] == ["restarting"] * 3
    text = run_cli("--repo", str(repo), "status").stdout
    assert f"{name}=failing ({row['status']})" in text, text
    out = run_cli("--repo", str(repo), "plan", "--json")
    [a] = json.loads(out.stdout)["actions"]
    assert (a["action"], a["cause"]) == (
        "noop", f"in sync, but {row['status']} (Swarm starts a failed one again while its restart policy allows)"), a


def test_a_service_whose_tasks_ran_to_their_end_under_on_failure_is_exited_and_in_sync(
        tmp_path: Path, swarm: SwarmDockerd, sproject: str) -> None:
    """`restart: on-failure`: its tasks exit 0 once a file appears in a directory bound into them
    (after the apply proved them running); Swarm starts none again. Not `starting`: `exited`, as a
    one-shot container left exited, and the plan's noop is plainly in sync."""
    name = f"job-{sproject[4:]}"
    shared = tmp_path / "shared"
    shared.mkdir()
    ending = '[sh, -c, "trap \'exit 0\' TERM; while [ ! -f /data/end ]; do sleep 1; done"]'
    repo = _repo(tmp_path / "repo", sproject, swarm, {name: (
        f"name: {name}\ntemplate: box\nreplicas: 2\noverrides:\n  command: {ending}\n  restart: on-failure\n"
        f"  volumes: [{{host_path: {shared}, mount_path: /data}}]\n")},
        local=False, extra=f"policy: {{bind_mounts: [{shared}]}}\n")
    out = _apply(repo)
    assert out.returncode == 0, out.stdout + out.stderr
    (shared / "end").write_text("")
    row = wait_until(lambda: (r := _row(repo, name))["state"] != "running" and not _states(swarm, name) and r,
                     timeout=60, interval=1, message="the tasks ended")
    assert (row["state"], row["status"]) == (
        "exited", "0/2 task(s) running: 2 complete (exit 0: their restart policy starts none again)"), row
    [a] = json.loads(run_cli("--repo", str(repo), "plan", "--json").stdout)["actions"]
    assert (a["action"], a["cause"]) == ("noop", f"in sync ({row['status']})"), a
