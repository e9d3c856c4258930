"""The Docker daemon going away in the middle of an apply: that deployment fails with one
clear line, nothing is lost, and the next apply converges once the daemon is back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

from tests.dockerd import SecondDockerd
from tests.helpers import run_cli, simple_repo, wait_until

SLOW = """
id: slow
version: "1"
spec:
  image: syncer-local/busybox:latest
  command: [sh, -c, "trap 'exit 0' TERM; sleep 4; touch /tmp/ready; while true; do sleep 1; done"]
  healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 1s, timeout: 2s, retries: 30}
"""


def test_daemon_going_away_mid_apply(tmp_path: Path, project: str) -> None:
    d2 = SecondDockerd()
    try:
        d2.start()
        d2.load_image()
        repo = simple_repo(tmp_path / "r", project, templates={"slow": SLOW},
                           definitions={"s": f"name: {project}-s\ntemplate: slow\nserver: other\n"},
                           extra=f"servers:\n  other: {{docker: '{d2.url}'}}\n")
        state = tmp_path / "s"
        proc = subprocess.Popen([sys.executable, "-m", "syncer", "--repo", str(repo), "--state-dir", str(state),
                                 "apply", "--auto-approve", "--stop-timeout", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        api = docker.APIClient(base_url=d2.url)
        wait_until(lambda: api.containers(filters={"label": [f"syncer.project={project}"]}), 60,
                   message="container started on the second daemon")
        d2.stop()  # while apply waits for the healthcheck
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, out + err
        assert "Traceback" not in out + err and "internal error" not in out + err
        assert "cannot reach Docker" in out + err
        deps = json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list",
                                  "--json").stdout)
        assert [d["status"] for d in deps] == ["failed"] and "cannot reach Docker" in deps[0]["error"]

        d2.start()
        again = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve",
                        "--stop-timeout", "1")
        assert again.returncode == 0, again.stdout + again.stderr
        api = docker.APIClient(base_url=d2.url)
        rows: list[Any] = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
        assert [r["State"] for r in rows] == ["running"]
    finally:
        d2.destroy()
