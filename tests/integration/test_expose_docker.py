"""Compose's `expose` against a real engine: the ports land in the container's
Config.ExposedPorts beside the ones `ports` names (nothing published for them), and a
change of `expose` is a recreate whose reason names the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import IMAGE, run_cli
from tests.integration.test_spec_docker import LOOP, _apply, _containers, _own, _repo

TEMPLATE = f"""
id: exposing
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "{LOOP}"]
  ports: ["8080"]
  expose: ["3000", 8080, "8000-8002", "53/udp", "9000-9001/tcp", "3000/tcp"]
"""


def test_expose_reaches_exposed_ports_and_a_change_recreates(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    definition = "name: web\ntemplate: exposing\n"
    repo = _repo(tmp_path / "r", project, {"exposing": TEMPLATE}, {"web": definition})
    state = tmp_path / "s"
    out = _apply(repo, state)
    assert out.returncode == 0, out.stdout + out.stderr
    info = _containers(docker_api, project)["web"]
    assert set(info["Config"]["ExposedPorts"]) == {
        "53/udp", "3000/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "8080/tcp", "9000/tcp", "9001/tcp"}
    assert set(info["HostConfig"]["PortBindings"]) == {"8080/tcp"}  # only `ports` binds: expose publishes nothing

    (repo / "definitions/web.yaml").write_text(_own(project, definition + "overrides: {expose: [\"3000\"]}\n"))
    listed = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--json")
    assert listed.returncode == 0, listed.stderr
    [action] = [a for a in json.loads(listed.stdout)["actions"] if not a["action"].startswith("network ")]
    assert action["action"] == "recreate"
    assert {"field": "expose", "before": ["53/udp", "3000/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "8080/tcp",
                                          "9000/tcp", "9001/tcp"],
            "after": ["3000/tcp"]} in action["reasons"]
