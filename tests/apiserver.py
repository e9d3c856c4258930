"""A real `syncer serve` process on loopback over a really applied project, for API tests.

`serve()` applies the project with the CLI, starts `python -m syncer ... serve` as a
subprocess on a free port, and on the way out sends SIGTERM and insists on exit 0.
`Served` talks to it with httpx and checks that no body ever carries the canary secret.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import IMAGE, REPO_ROOT, free_port, git_init, remove_project, run_cli, simple_repo, wait_until

CANARY = "CANARY-api-7f3e-s3cr3t-value"


def web(p: str, message: str = "one") -> str:
    """Two replicas, named after the project: container names are global on the engine."""
    return f"name: {p}-web\ntemplate: box\nparams:\n  message: {message}\n  token: {{secret: API_CANARY}}\nreplicas: 2\n"


def worker(p: str, message: str = "w1") -> str:
    return f"name: {p}-worker\ntemplate: box\nparams: {{message: {message}}}\n"

TALK = f"""
id: talk
version: "1"
taxonomy: {{kingdom: assets, family: chatter, species: echo}}
inputs:
  type: object
  properties:
    token: {{type: string, format: password, writeOnly: true}}
spec:
  image: {IMAGE}
  command: [sh, -c, "echo token=$TOKEN; echo plain line; trap 'exit 0' TERM; while true; do sleep 1; done"]
  env:
    TOKEN: ${{inputs.token}}
"""
ERROR_CODES = {"invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "rate_limited",
               "internal_error"}



class Served:
    """A running `syncer serve` over an applied project, with a write and a read key."""

    def __init__(self, repo: Path, state: Path, env: dict[str, str], project: str) -> None:
        self.repo, self.state, self.env, self.project = repo, state, env, project
        self.write = self.quick_key("writer", "write")
        self.read = self.quick_key("reader", "read")
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.http = httpx.Client(timeout=60)

    def n(self, short: str) -> str:
        """A definition or container name of this test (names are global on the engine)."""
        return f"{self.project}-{short}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = run_cli("--repo", str(self.repo), "--state-dir", str(self.state), *args, env=self.env)
        assert "Traceback" not in out.stdout + out.stderr
        return out

    def quick_key(self, name: str, permission: str) -> dict[str, Any]:
        """A key made in-process (the CLI's own path is tested by `key`): saves a process start."""
        from syncer.engine import facade as engine
        from syncer.engine import operations

        store = operations.state_store(engine.Context(repo=self.repo, state_dir=self.state))
        try:
            new = operations.create_api_key(store, name=name, permission=permission, rate_limit=100000)
        finally:
            store.close()
        return {"id": new.id, "key": new.key, "permissions": new.permissions}

    def key(self, name: str, permission: str, *extra: str) -> dict[str, Any]:
        out = self.cli("keys", "generate", "--name", name, "--permission", permission, *extra, "--json")
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    def start(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.log = open(self.state.parent / "serve.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncer", "--repo", str(self.repo), "--state-dir", str(self.state), "serve",
             "--listen", f"127.0.0.1:{port}", "--sample-interval", "1s"],
            env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.server_log()
            try:
                return self.http.get(f"{self.base}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 30, message="the API to answer /health")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise AssertionError("syncer serve did not exit within 60 s of SIGTERM; its log:\n"
                                 + self.server_log()[-12000:]) from None
        finally:
            self.http.close()
            self.log.close()

    def server_log(self) -> str:
        return (self.state.parent / "serve.log").read_text(errors="replace")

    def call(self, method: str, path: str, *, key: dict[str, Any] | None | str = "write", **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        chosen = {"write": self.write, "read": self.read}.get(key, key) if isinstance(key, str) else key
        if isinstance(chosen, dict):
            headers["Authorization"] = f"Bearer {chosen['key']}"
        response = self.http.request(method, f"{self.base}{path}", headers=headers, **kw)
        assert CANARY not in response.text, f"{method} {path} leaked the secret"
        return response

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        assert r.status_code == status, (r.status_code, r.text, self.server_log()[-3000:])
        body = r.json()
        assert body["success"] is True and "data" in body, body
        return body

    def error(self, method: str, path: str, status: int, code: str, **kw: Any) -> dict[str, Any]:
        r = self.call(method, path, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        body = r.json()
        assert body["success"] is False and body["error"]["code"] == code, body
        assert set(body["error"]) == {"code", "message", "details"} and body["error"]["message"]
        assert "Traceback" not in r.text
        return dict(body)

    def wait_sync(self, request_id: str) -> dict[str, Any]:
        def done() -> Any:
            data = self.ok("GET", f"/sync/{request_id}")["data"]
            return data if data["status"] in ("success", "failed") else None

        return dict(wait_until(done, 120, 0.2, message=f"sync {request_id} to finish"))


@contextmanager
def serve(tmp_path: Path, project: str, *, definitions: dict[str, str] | None = None, extra: str = "",
          templates: dict[str, str] | None = None, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Apply the project with the CLI, then serve it; SIGTERM must end it with exit 0."""
    defaults = {"web": web(project), "worker": worker(project)}
    repo = simple_repo(tmp_path / "r", project, definitions=defaults if definitions is None else definitions,
                       templates=templates, extra="secrets: {env: [API_CANARY]}\n" + extra)
    git_init(repo)
    state = tmp_path / "s"
    served = Served(repo, state, {"API_CANARY": CANARY, **(env or {})}, project)
    applied = served.cli("apply", "--auto-approve", "--stop-timeout", "1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    served.start()
    try:
        yield served
    finally:
        code = served.stop()
        import docker  # the test's own client: the project's networks and markers go too

        remove_project(docker.APIClient(), project)
        assert code == 0, served.server_log()[-3000:]


def containers(api: Any, project: str) -> dict[str, dict[str, Any]]:
    """The project's containers by their short name (`web-2` for `<project>-web-2`)."""
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/").removeprefix(f"{project}-"): r for r in rows}


def short(s: Served, names: Any) -> set[str]:
    return {str(n).removeprefix(f"{s.project}-") for n in names}


def env_of(api: Any, ident: str) -> list[str]:
    return list(api.inspect_container(ident)["Config"]["Env"])
