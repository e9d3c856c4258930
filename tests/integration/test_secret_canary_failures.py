"""Issue 12, point 1: failure output never shows a secret.

A container that prints its secret and exits, and a health probe that prints it and fails,
put their output into the deployment's error: it is masked at the source (the Applier), so
no output format, store row, state-dir file or webhook body shows the value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import IMAGE, run_cli, simple_repo, wait_until
from tests.integration.test_webhooks import Receiver, hooks_yaml

CANARY = "CANARY-fail-4c2a-s3cr3t"

CRASH = f"""
id: crash
version: "1"
inputs:
  token: {{type: password}}
spec:
  image: {IMAGE}
  command: [sh, -c, "echo dsn=postgres://app:$TOKEN@db; sleep 1; exit 3"]
  env: {{TOKEN: "${{inputs.token}}"}}
  healthcheck: {{test: [CMD, "true"], interval: 30s}}
"""

SICK = f"""
id: sick
version: "1"
inputs:
  token: {{type: password}}
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  env: {{TOKEN: "${{inputs.token}}"}}
  healthcheck: {{test: [CMD-SHELL, "echo probe saw $TOKEN; exit 1"], interval: 1s, retries: 1}}
"""


def test_failure_output_never_shows_a_secret(tmp_path: Path, project: str, docker_api: Any) -> None:
    receiver = Receiver().up()
    try:
        _check(tmp_path, project, docker_api, receiver)
    finally:
        receiver.down()


def _check(tmp_path: Path, project: str, docker_api: Any, receiver: Receiver) -> None:
    params = "params:\n  token: {secret: FAIL_TOKEN}\n"
    repo = simple_repo(tmp_path / "r", project, templates={"crash": CRASH, "sick": SICK}, definitions={
        "crash": f"name: {project}-crash\ntemplate: crash\n{params}",
        "sick": f"name: {project}-sick\ntemplate: sick\n{params}"},
        extra="secrets: {env: [FAIL_TOKEN]}\n" + hooks_yaml(f"{{url: '{receiver.url()}'}}"))
    state = tmp_path / "s"
    env = {"FAIL_TOKEN": CANARY, "SYNCER_WEBHOOK_BACKOFF": "0.2"}

    outputs: list[str] = []

    def cli(*args: str, code: int = 0) -> str:
        out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, env=env)
        assert out.returncode == code and "Traceback" not in out.stderr, out.stdout + out.stderr
        outputs.append(out.stdout + out.stderr)
        return out.stdout

    fast = ("--auto-approve", "--stop-timeout", "1", "--health-timeout", "60")
    cli("apply", *fast, code=1)
    assert not docker_api.containers(all=True, filters={"label": f"syncer.project={project}"})  # both failed
    report = json.loads(cli("apply", "--json", *fast, code=1))
    errors = " ".join(str(r.get("error")) for r in report["deployments"])
    assert "exited (code 3)" in errors and "dsn=postgres://app:***@db" in errors  # the output is kept, masked
    assert "probe saw ***" in errors
    deployments = json.loads(cli("deployments", "list", "--json"))
    for d in deployments:
        cli("deployments", "show", d["id"])
        cli("deployments", "show", d["id"], "--json")
    for args in (("status", "--json"), ("status",), ("history", "--json"), ("webhooks", "deliveries", "--json")):
        cli(*args)
    wait_until(lambda: any(json.loads(r.body).get("event") == "deployment.failed" for r in receiver.requests),
               30, message="a deployment.failed webhook")
    outputs += [r.body.decode() for r in receiver.requests]
    for text in outputs:
        assert CANARY not in text, text
    for f in (p for p in state.rglob("*") if p.is_file()):  # the store and every other file
        assert CANARY.encode() not in f.read_bytes(), f
