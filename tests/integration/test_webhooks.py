"""Outgoing webhooks against a real local HTTP receiver: signed events, once each, a
receiver that is down or failing, a restart in between, test pings, no secret in a body."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from syncer.engine import facade as engine
from syncer.engine.options import ApplyOptions
from syncer.adapters import webhooks as notify
from syncer.adapters.store import Store
from tests.helpers import run_cli, simple_repo, wait_until

SECRET = "wh-secret-5f1c9e2ab7"
FAST = {"SYNCER_WEBHOOK_BACKOFF": "0.2", "SYNCER_WEBHOOK_MAX_ATTEMPTS": "4", "SYNCER_WEBHOOK_TIMEOUT": "2"}


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on loopback that records what it gets; it can answer `status`
    or be down (not listening) and come back on the same port."""

    port: int = 0
    status: int = 200
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        if not self.port:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Request(self.path, dict(self.headers.items()), body, time.monotonic()))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self, path: str = "/hook") -> list[str]:
        return [r.json["event"] for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.down()


def verify(req: Request, secret: str = SECRET) -> None:
    """What a receiver does: recompute the signature over timestamp + "." + body."""
    ts = req.headers["X-Syncer-Timestamp"]
    expected = hmac.new(secret.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Syncer-Signature"], "sha256=" + expected)
    assert abs(int(ts) - time.time()) < 120
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("syncer/")
    assert req.headers["X-Syncer-Event"] == req.json["event"]
    assert req.headers["X-Syncer-Delivery"].startswith("whd_")


def hooks_yaml(*targets: str) -> str:
    return "webhooks:\n" + "".join(f"  - {t}\n" for t in targets)


def box(name: str, message: str = "one", extra: str = "") -> str:
    return f"name: {name}\ntemplate: box\nparams: {{message: {message}}}\n{extra}"


def cli(repo: Path, state: Path, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args,
                  env={"WH_SECRET": SECRET, **FAST, **(env or {})})
    assert "Traceback" not in out.stdout + out.stderr
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def apply(repo: Path, state: Path, env: dict[str, str] | None = None) -> Any:
    return cli(repo, state, "apply", "--auto-approve", "--stop-timeout", "1", env=env)


def deliveries(state: Path) -> list[dict[str, Any]]:
    store = Store(state)
    try:
        return store.deliveries(limit=1000)
    finally:
        store.close()


def test_each_event_arrives_once_signed_and_filtered(tmp_path: Path, project: str, receiver: Receiver) -> None:
    receiver.up()
    web = f"{project}-web"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": box(web)},
                       extra="secrets: {env: [WH_SECRET]}\n" + hooks_yaml(
        f"{{url: '{receiver.url()}', secret: {{env: WH_SECRET}}}}",
        f"{{url: '{receiver.url('/success')}', events: [deployment.success], secret: {{secret: WH_SECRET}}}}",
        f"{{url: '{receiver.url('/unsigned-missing')}', secret: {{env: WH_NOT_SET}}}}"))
    state = tmp_path / "s"
    apply(repo, state)
    assert sorted(receiver.events()) == ["definition.created", "deployment.started", "deployment.success"]
    assert receiver.events("/success") == ["deployment.success"]
    for req in receiver.requests:
        verify(req)
        assert req.json["project"] == project and req.json["data"]["definition"] == web
    started = next(r.json for r in receiver.requests if r.json["event"] == "deployment.started")
    success = next(r.json for r in receiver.requests if r.json["event"] == "deployment.success")
    assert started["data"]["deployment_id"] == success["data"]["deployment_id"]
    assert receiver.requests[0].json["id"] != receiver.requests[1].json["id"]

    (repo / "definitions/web.yaml").write_text(box(web, "two"))
    apply(repo, state)
    assert sorted(receiver.events()[3:]) == ["definition.updated", "deployment.started", "deployment.success"]
    (repo / "definitions/web.yaml").unlink()
    apply(repo, state)
    assert sorted(receiver.events()[6:]) == ["definition.deleted", "deployment.started", "deployment.success"]
    ids = [r.headers["X-Syncer-Delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 12  # nine events to /hook, three successes to /success
    rows = deliveries(state)
    missing = [r for r in rows if "unsigned-missing" in r["url"]]
    assert len(missing) == 9 and {r["status"] for r in missing} == {"failed"}
    assert all("WH_NOT_SET is not set" in r["last_error"] for r in missing)
    assert {r["status"] for r in rows if r not in missing} == {"delivered"}


def test_a_receiver_that_was_down_gets_every_event_once_across_restarts(
        tmp_path: Path, project: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    web, api = f"{project}-web", f"{project}-api"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": box(web)},
                       extra=hooks_yaml(f"{{url: '{receiver.url()}', secret: {{env: WH_SECRET}}}}"))
    state = tmp_path / "s"
    out = apply(repo, state)  # receiver down: one failed try each, queued
    assert "still queued" in out.stderr
    queued = cli(repo, state, "webhooks", "deliveries", "--status", "pending", "--json")
    rows = json.loads(queued.stdout)
    assert len(rows) == 3 and all(r["attempts"] == 1 for r in rows)
    assert all("ConnectError" in r["attempt_log"][0]["error"] for r in rows)

    receiver.up()  # a later process (the next apply) delivers the backlog once
    apply(repo, state)
    assert sorted(receiver.events()) == ["definition.created", "deployment.started", "deployment.success"]

    receiver.down()
    (repo / "definitions/api.yaml").write_text(box(api))
    apply(repo, state)  # three more queued while down
    receiver.up()
    monkeypatch.setenv("WH_SECRET", SECRET)
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)
    notifier = engine.start_notifier(engine.Context(repo=repo, state_dir=state))  # another process's Notifier
    try:
        wait_until(lambda: len(receiver.requests) == 6, timeout=20, message="the backlog delivered")
    finally:
        notifier.stop()
    apply(repo, state)  # nothing left to send twice
    assert len(receiver.requests) == 6
    for req in receiver.requests:
        verify(req)
    assert len({r.headers["X-Syncer-Delivery"] for r in receiver.requests}) == 6
    assert {r["status"] for r in deliveries(state)} == {"delivered"}


def test_a_failing_receiver_gets_retries_with_backoff_then_a_manual_retry(
        tmp_path: Path, project: str, receiver: Receiver) -> None:
    receiver.status = 500
    receiver.up()
    repo = simple_repo(tmp_path / "r", project, definitions={"web": box(f"{project}-web")}, extra=hooks_yaml(
        f"{{url: '{receiver.url()}', events: [deployment.success], secret: {{env: WH_SECRET}}}}"))
    state = tmp_path / "s"
    apply(repo, state)
    assert len(receiver.requests) == 1  # the apply's own flush tried once
    store = Store(state)
    policy = notify.Policy(backoff=0.2, max_attempts=4, timeout=2)
    targets = engine.load(engine.Context(repo=repo)).config.webhooks
    notifier = notify.Notifier(store, lambda: (targets, notify.resolver({}, {"WH_SECRET": SECRET})),
                               policy=policy, poll=0.1).start()
    try:
        wait_until(lambda: deliveries(state)[0]["status"] == "failed", timeout=20, message="given up")
    finally:
        notifier.stop()
        store.close()
    assert len(receiver.requests) == 4 and len({r.headers["X-Syncer-Delivery"] for r in receiver.requests}) == 1
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:])]
    for gap, wanted in zip(gaps[1:], (0.4, 0.8)):  # the first gap includes the apply's exit
        assert gap >= wanted * 0.9, gaps
    row = deliveries(state)[0]
    assert row["attempts"] == 4 and row["last_status_code"] == 500
    assert [a["status_code"] for a in row["attempt_log"]] == [500] * 4

    receiver.status = 200
    out = cli(repo, state, "webhooks", "retry", row["id"])
    assert "delivered" in out.stdout
    assert len(receiver.requests) == 5 and deliveries(state)[0]["status"] == "delivered"
    verify(receiver.requests[-1])


def test_webhooks_test_sends_a_signed_ping(tmp_path: Path, receiver: Receiver) -> None:
    repo = simple_repo(tmp_path / "r", "t-ping", extra=hooks_yaml(
        f"{{url: '{receiver.url()}', events: [deployment.failed], secret: {{env: WH_SECRET}}}}"))
    state = tmp_path / "s"
    down = cli(repo, state, "webhooks", "test", ok=False)
    assert down.returncode == 1 and "failed" in down.stdout and "ConnectError" in down.stdout
    receiver.up()
    out = cli(repo, state, "webhooks", "test")
    assert "delivered (HTTP 200" in out.stdout
    ping = receiver.requests[0]
    verify(ping)
    assert ping.json["event"] == "ping" and ping.json["data"]["events"] == ["deployment.failed"]
    other = cli(repo, state, "webhooks", "test", "--url", receiver.url("/other"), "--json")
    assert json.loads(other.stdout)[0]["status"] == "delivered"
    assert "X-Syncer-Signature" not in receiver.requests[1].headers  # not configured: unsigned
    listed = json.loads(cli(repo, state, "webhooks", "deliveries", "--json").stdout)
    assert [(d["event"], d["status"]) for d in listed] == [("ping", "delivered")] * 2 + [("ping", "failed")]


def test_no_secret_value_reaches_a_body_or_the_store(tmp_path: Path, project: str, receiver: Receiver,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "CANARY-77e1-webhook-s3cr3t"
    receiver.up()
    repo = simple_repo(tmp_path / "r", project,
                       definitions={"web": f"name: {project}-web\ntemplate: box\nparams:\n"
                                           "  token: {secret: CANARY_TOKEN}\n"},
                       extra="secrets: {env: [CANARY_TOKEN]}\n" + hooks_yaml(f"{{url: '{receiver.url()}', secret: {{env: WH_SECRET}}}}"))
    state = tmp_path / "s"
    apply(repo, state, env={"CANARY_TOKEN": canary})
    cli(repo, state, "webhooks", "test")
    # an event that carried a secret value (say, in an error) is redacted before it is stored
    monkeypatch.setenv("CANARY_TOKEN", canary)
    monkeypatch.setenv("WH_SECRET", SECRET)
    ctx = engine.Context(repo=repo, state_dir=state)
    project_ = engine.load(ctx)
    store = engine.open_store(ctx, project_)
    try:
        notify.enqueue(store, project, project_.config.webhooks, "deployment.failed",
                       {"error": f"env TOKEN={canary} rejected", canary: [f"x{SECRET}x"]},
                       redact=engine.redactor(ctx, project_))
    finally:
        store.close()
    cli(repo, state, "apply", "--auto-approve")  # its flush sends the queued event
    listed = cli(repo, state, "webhooks", "deliveries", "--json").stdout
    assert len(receiver.requests) == 5
    assert receiver.requests[-1].json["data"] == {"error": "env TOKEN=*** rejected", "***": ["x***x"]}
    for text in [r.body.decode() for r in receiver.requests] + [listed]:
        assert canary not in text and SECRET not in text
    for f in (p for p in state.rglob("*") if p.is_file()):
        data = f.read_bytes()
        assert canary.encode() not in data and SECRET.encode() not in data, f


def test_drift_is_queued_by_the_apply_that_heals_it_and_only_then(tmp_path: Path, project: str, docker_api: Any,
                                                                  receiver: Receiver) -> None:
    """A watch's self-heal or resync passes `drift` (nobody asked for a change): the apply
    queues drift.detected with the project it loaded (the watch loaded it a second time to
    queue it, in the heal's path), and only when its plan has changes."""
    receiver.up()
    web, other = f"{project}-web", f"{project}-other"
    repo = simple_repo(tmp_path / "r", project, definitions={"web": box(web), "other": box(other)},
                       extra="secrets: {env: [WH_SECRET]}\n" + hooks_yaml(
                           f"{{url: '{receiver.url()}', events: [drift.detected], secret: {{env: WH_SECRET}}}}"))
    state = tmp_path / "s"
    apply(repo, state)
    ctx = engine.Context(repo=repo, state_dir=state)
    options = ApplyOptions(stop_timeout=1)
    engine.apply(ctx, options=options, confirm=lambda p: True, drift="periodic resync")  # in sync: nothing
    assert [r["event"] for r in deliveries(state)] == []
    docker_api.stop(web, timeout=1)
    docker_api.stop(other, timeout=1)
    report = engine.apply(ctx, options=options, confirm=lambda p: True, drift=f"docker: {web} die", only=web)
    assert report.ok and docker_api.inspect_container(web)["State"]["Running"]
    assert not docker_api.inspect_container(other)["State"]["Running"]  # a plan of `web` alone
    rows = deliveries(state)
    assert [r["event"] for r in rows] == ["drift.detected"]
    body = json.loads(rows[0]["body"])
    assert body["data"] == {"reason": f"docker: {web} die", "actions": [f"start {web}"]}
    engine.apply(ctx, options=options, confirm=lambda p: True)  # asked for (drift None): no event
    assert len(deliveries(state)) == 1 and docker_api.inspect_container(other)["State"]["Running"]
