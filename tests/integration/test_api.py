"""The HTTP API against a real `syncer serve` process on loopback, over a really applied project.

Each server's project is applied with the CLI first; then `python -m syncer ... serve` runs
as a subprocess on a free port, and the tests talk to it with httpx. Tests that only read
share one server (a module fixture); tests that change state get their own. Every server
must exit 0 on SIGTERM.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver import (
    CANARY,
    IMAGE,
    TALK,
    Served,
    containers,
    env_of,
    serve,
    short,
    web,
    worker,
)
from tests.helpers import REPO_ROOT, commit_all, git, unique, wait_until

SHARED = ("web", "worker", "talker")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, docker_api: Any) -> Iterator[Served]:
    """One server for the tests that only read (or change nothing a sibling checks): web (two
    replicas), worker, and talker (which prints its secret), with `api.rate_limit: 7`."""
    project = unique("tapi")
    talker = f"name: {project}-talker\ntemplate: talk\nparams:\n  token: {{secret: API_CANARY}}\n"
    try:
        with serve(tmp_path_factory.mktemp("shared"), project, templates={"talk": TALK},
                   definitions={"web": web(project), "worker": worker(project), "talker": talker},
                   extra="api: {rate_limit: 7}\n") as s:
            yield s
    finally:
        for c in docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]}):
            docker_api.remove_container(c["Id"], force=True, v=True)


# --- the contract ------------------------------------------------------------------------------

def test_the_envelope_and_every_error_code(shared: Served, docker_api: Any) -> None:
    s = shared
    health = s.call("GET", "/health", key=None).json()
    assert set(health) == {"status", "version", "timestamp"}, health  # the seed's body: no envelope
    assert health["status"] == "healthy" and health["version"] and health["timestamp"].endswith("Z")
    s.error("GET", "/status", 401, "unauthorized", key=None)
    s.error("GET", "/status", 401, "unauthorized", key={"key": "syncer_not-a-real-key"})
    s.error("GET", "/status", 401, "unauthorized", key=None, headers={"Authorization": "Basic dXNlcjpwdw=="})
    s.error("GET", "/no/such/route", 404, "not_found")
    outside = s.http.get(s.base.removesuffix("/api/v1") + "/elsewhere")
    assert outside.status_code == 404 and outside.json()["error"]["code"] == "not_found"
    s.error("DELETE", "/status", 405, "invalid_request")
    assert s.call("DELETE", "/deployments").headers["allow"] == "GET, HEAD, POST"
    # HEAD of any GET (a read key may: the docs say so): its headers, no body
    for path, key in (("/health", None), ("/status", "read"), ("/deployments", "read")):
        head = s.call("HEAD", path, key=key)
        assert head.status_code == 200 and head.content == b"" and head.headers["content-type"], (path, head)
    assert s.call("HEAD", "/status", key=None).status_code == 401
    bad_json = s.error("POST", "/deployments", 400, "invalid_request", content=b'{"definition_id": ',
                       headers={"Content-Type": "application/json"})
    assert "JSON" in bad_json["error"]["message"]
    missing = s.error("POST", "/deployments", 400, "invalid_request", json={"nope": 1})
    assert {e["field"] for e in missing["error"]["details"]["errors"]} >= {"body.definition_id"}
    s.error("GET", "/instances?per_page=101", 400, "invalid_request")
    # a filter naming nothing that can exist is an error, as on /deployments, not an empty page
    for path, status, code in (("/instances?status=bogus", 400, "invalid_request"),
                               ("/definitions?status=bogus", 400, "invalid_request"),
                               ("/instances?definition_id=nope", 404, "not_found"),
                               ("/instances?server_id=srv_nope", 404, "not_found"),
                               ("/definitions?server_id=nope", 404, "not_found")):
        s.error("GET", path, status, code)
    assert s.ok("GET", "/instances?server_id=srv_local&status=running")["pagination"]["total"] == 4
    assert s.ok("GET", f"/instances?definition_id={s.n('web')}")["pagination"]["total"] >= 1
    s.error("GET", "/instances?page=0", 400, "invalid_request")
    s.error("GET", f"/definitions/{s.n('web')}/metrics?interval=7m", 400, "invalid_request")
    s.error("GET", f"/definitions/{s.n('web')}/metrics?start_time=yesterday", 400, "invalid_request")
    s.error("POST", "/sync", 403, "forbidden", key="read")
    s.error("POST", f"/instances/{s.n('web')}/stop", 403, "forbidden", key="read")
    for path in ("/definitions/nope", "/templates/tpl_000000000000", "/instances/nope", "/deployments/deploy_x",
                 "/servers/srv_nope", "/sync/req_nope", "/definitions/nope/revisions"):
        s.error("GET", path, 404, "not_found")
    r = s.call("GET", "/definitions/nope")
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(r.headers)
    listing = s.ok("GET", "/instances?page=2&per_page=1")
    assert listing["pagination"] == {"page": 2, "per_page": 1, "total": 4} and len(listing["data"]) == 1
    assert s.ok("GET", "/deployments")["pagination"]["per_page"] == 20
    assert s.http.get(f"{s.base}/openapi.json").json()["paths"]


def test_a_revoked_key_stops_working_at_once(shared: Served, docker_api: Any) -> None:
    s = shared
    key = s.key("short-lived", "read")
    s.ok("GET", "/status", key=key)
    out = s.cli("keys", "revoke", key["id"])
    assert out.returncode == 0, out.stderr
    s.error("GET", "/status", 401, "unauthorized", key=key)
    listed = json.loads(s.cli("keys", "list", "--json").stdout)
    row = next(k for k in listed if k["id"] == key["id"])
    assert row["status"] == "revoked" and row["last_used_at"] and "key_hash" not in row
    assert not any(key["key"].encode() in path.read_bytes() for path in s.state.rglob("*") if path.is_file())


def test_rate_limits_per_key_with_headers(shared: Served, docker_api: Any) -> None:
    s = shared
    limited = s.key("limited", "read", "--rate-limit", "5")
    default = s.key("default", "read")
    remaining = []
    for _ in range(5):
        assert "x-ratelimit-limit" not in s.call("GET", "/health", key=limited).headers  # public: not counted
        r = s.call("GET", "/templates", key=limited)
        assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "5"
        remaining.append(int(r.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    body = s.error("GET", "/templates", 429, "rate_limited", key=limited)
    assert "rate limit" in body["error"]["message"]
    r = s.call("GET", "/templates", key=limited)
    assert r.status_code == 429 and r.headers["x-ratelimit-remaining"] == "0"
    assert int(r.headers["x-ratelimit-reset"]) > 0 and int(r.headers["retry-after"]) >= 1
    r = s.call("GET", "/templates", key=default)
    assert r.status_code == 200 and r.headers["x-ratelimit-limit"] == "7"  # syncer.yaml's api.rate_limit


# --- resources ----------------------------------------------------------------------------------------

def test_every_resource_of_an_applied_project(shared: Served, docker_api: Any) -> None:
    s = shared
    status = s.ok("GET", "/status")["data"]
    assert status["project"] == s.project and len(status["commit"]) == 40 and status["in_sync"] is True
    assert status["last_apply"]["status"] == "success" and status["last_apply"]["trigger"] == "cli"
    assert {d["name"]: d["in_sync"] for d in status["definitions"]} == {s.n(n): True for n in SHARED}
    assert status["validation_error"] is None and status["last_validation_error"] is None

    assert [t["ref"] for t in s.ok("GET", "/templates")["data"]] == ["box@1.0", "talk@1"]
    [tpl] = s.ok("GET", "/templates?kingdom=assets&family=chatter&species=echo")["data"]
    assert tpl["id"].startswith("tpl_") and tpl["ref"] == "talk@1"
    tpl = s.ok("GET", "/templates", params={"per_page": 1})["data"][0]
    assert tpl["id"].startswith("tpl_") and tpl["ref"] == "box@1.0"
    for ident in (tpl["id"], "box", "box@1.0"):
        detail = s.ok("GET", f"/templates/{ident}")["data"]
        assert detail["spec"]["image"] == IMAGE and detail["inputs"]["type"] == "object"
        assert detail["spec_hash"].startswith("sha256:") and "development" in detail["profiles"]
    assert s.ok("GET", "/templates?family=database")["data"] == []

    defs = {d["name"].removeprefix(f"{s.project}-"): d for d in s.ok("GET", "/definitions")["data"]}
    assert set(defs) == set(SHARED) and defs["web"]["id"].startswith("def_")
    assert defs["web"]["server_id"] == "srv_local" and defs["web"]["status"] == "active"
    assert len(s.ok("GET", "/definitions?server_id=srv_local")["data"]) == 3
    assert s.ok("GET", "/definitions?status=failed")["data"] == []
    web_def = s.ok("GET", f"/definitions/{defs['web']['id']}")["data"]
    assert web_def["params"]["token"] == {"secret": "API_CANARY"}
    assert web_def["containers"] == [s.n("web"), s.n("web-2")]
    assert s.ok("GET", f"/definitions/{s.n('web')}")["data"]["id"] == defs["web"]["id"]
    [rev] = s.ok("GET", f"/definitions/{s.n('web')}/revisions")["data"]
    assert rev["revision"] == 1 and "<<secret:API_CANARY:" in json.dumps(rev["specs"])

    live = containers(docker_api, s.project)
    instances = {i["container_name"]: i for i in s.ok("GET", "/instances")["data"]}
    assert short(s, instances) == {"web", "web-2", "worker", "talker"}
    one = instances[s.n("web-2")]
    assert one["id"] == "inst_" + live["web-2"]["Id"][:12] and one["container_id"] == live["web-2"]["Id"][:12]
    assert one["definition_id"] == defs["web"]["id"] and one["status"] == "running"
    assert one["started_at"] and one["uptime_seconds"] is not None
    assert len(s.ok("GET", f"/instances?definition_id={s.n('web')}")["data"]) == 2
    precise = s.ok("GET", f"/instances/{one['id']}")["data"]
    started = docker_api.inspect_container(live["web-2"]["Id"])["State"]["StartedAt"]
    assert precise["started_at"] == started[:19] + "Z"
    assert s.ok("GET", f"/instances/{s.n('web-2')}")["data"]["id"] == one["id"]

    [server] = s.ok("GET", "/servers")["data"]
    assert server["id"] == "srv_local" and server["reachable"] is True and server["engine_version"]
    assert server["containers"]["running"] == 4 and server["containers"]["total"] == 4
    assert s.ok("GET", "/servers/local")["data"]["id"] == "srv_local"
    assert status["servers"] == [{"server_id": "srv_local", "name": "local", "reachable": True,
                                  "engine_version": server["engine_version"], "error": None}]

    deployments = s.ok("GET", "/deployments")["data"]
    assert short(s, (d["definition"] for d in deployments)) == set(SHARED)
    assert all(d["id"].startswith("deploy_") and d["status"] == "success" for d in deployments)
    only_web = s.ok("GET", f"/deployments?definition_id={defs['web']['id']}&status=success")
    assert only_web["pagination"]["total"] == 1
    detail = s.ok("GET", f"/deployments/{only_web['data'][0]['id']}")["data"]
    assert detail["definition_id"] == defs["web"]["id"] and detail["logs"]

    deliveries = s.ok("GET", "/webhooks/deliveries?status=failed")  # the project has no webhooks
    assert deliveries["data"] == [] and deliveries["pagination"]["total"] == 0
    s.error("GET", "/webhooks/deliveries/whd_000000000000", 404, "not_found")


def test_stop_holds_the_instance_stopped_and_start_releases_it(tmp_path: Path, project: str,
                                                                docker_api: Any) -> None:
    with serve(tmp_path, project) as s:
        stopped = s.ok("POST", f"/instances/{s.n('web-2')}/stop?timeout=1")["data"]
        assert stopped["status"] == "exited" and stopped["held_stopped"] is True
        assert containers(docker_api, project)["web-2"]["State"] == "exited"
        plan = s.cli("plan", "--show-noop")
        assert "held stopped" in plan.stdout and "No changes." in plan.stdout, plan.stdout
        synced = s.wait_sync(s.ok("POST", "/sync", 202)["data"]["request_id"])
        assert synced["status"] == "success"
        assert containers(docker_api, project)["web-2"]["State"] == "exited"  # a sync leaves it stopped

        started = s.ok("POST", f"/instances/{stopped['id']}/start")["data"]
        assert started["status"] == "running" and started["held_stopped"] is False
        assert containers(docker_api, project)["web-2"]["State"] == "running"
        assert "held stopped" not in s.cli("plan", "--show-noop").stdout
        restarted = s.ok("POST", f"/instances/{s.n('worker')}/restart?timeout=1")["data"]
        assert restarted["status"] == "running"


def test_post_sync_converges_the_project(tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project) as s:
        before = containers(docker_api, project)
        docker_api.remove_container(before["worker"]["Id"], force=True)
        (s.repo / "definitions/web.yaml").write_text(web(project, "two"))
        first = s.ok("POST", "/sync", 202)["data"]
        second = s.ok("POST", "/sync", 202, json={"reason": "a burst"})["data"]
        assert first["request_id"].startswith("req_") and first["status"] == "queued"
        wait_until(lambda: (c := containers(docker_api, project)).keys() == {"web", "web-2", "worker"}
                   and all(x["State"] == "running" for x in c.values())
                   and "MESSAGE=two" in env_of(docker_api, c["web"]["Id"]), 120, 0.3, message="convergence")
        assert s.wait_sync(first["request_id"])["status"] == "success"
        assert s.wait_sync(second["request_id"])["status"] == "success"
        runs = {r for rid in (first, second) for r in s.ok("GET", f"/sync/{rid['request_id']}")["data"]["run_ids"]}
        assert runs and all(r.startswith("run_") for r in runs)
        wait_until(lambda: s.ok("GET", "/status")["data"]["in_sync"], 10, message="status to show in sync")
        status = s.ok("GET", "/status")["data"]
        assert status["last_commit_seen"]["sha"] == status["commit"]
        deps = s.ok("GET", f"/deployments?definition_id={s.n('web')}")["data"]
        assert deps[0]["trigger"] == "api" and deps[0]["status"] == "success"


def test_post_deployments_deploys_that_definition_only(tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project) as s:
        before = containers(docker_api, project)
        (s.repo / "definitions/web.yaml").write_text(web(project, "two"))
        (s.repo / "definitions/worker.yaml").write_text(worker(project, "w2"))
        worker_id = s.ok("GET", f"/definitions/{s.n('worker')}")["data"]["id"]
        queued = s.ok("POST", "/deployments", 202, json={"definition_id": worker_id})["data"]
        assert queued["definition"] == s.n("worker") and queued["definition_id"] == worker_id
        assert s.wait_sync(queued["request_id"])["status"] == "success"
        after = containers(docker_api, project)
        assert "MESSAGE=w2" in env_of(docker_api, after["worker"]["Id"])
        assert after["web"]["Id"] == before["web"]["Id"] and after["web-2"]["Id"] == before["web-2"]["Id"]

        def drift() -> dict[str, bool]:
            return {d["name"]: d["in_sync"] for d in s.ok("GET", "/status")["data"]["definitions"]}

        wait_until(lambda: drift() == {s.n("web"): False, s.n("worker"): True}, 10, message="web alone drifted")
        s.error("POST", "/deployments", 404, "not_found", json={"definition_id": "def_000000000000"})


def test_rollback_a_deployment(tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project, definitions={"worker": worker(project)}) as s:
        [first] = s.ok("GET", "/deployments")["data"]
        s.error("POST", f"/deployments/{first['id']}/rollback", 409, "conflict")  # nothing before revision 1
        (s.repo / "definitions/worker.yaml").write_text(worker(project, "w2"))
        queued = s.ok("POST", "/deployments", 202, json={"definition_id": s.n("worker")})["data"]
        assert s.wait_sync(queued["request_id"])["status"] == "success"
        second = s.ok("GET", "/deployments?per_page=1")["data"][0]
        assert second["revision"] == 2
        result = s.ok("POST", f"/deployments/{second['id']}/rollback")["data"]
        assert result["ok"] is True and result["deployments"][0]["status"] == "success"
        # the process's log says it, as it says a sync's actions (an audit trail without gaps)
        assert f"revision 3 rolls back to revision 1 (rollback of {second['id']})" in s.server_log()
        c = containers(docker_api, project)["worker"]
        assert "MESSAGE=w1" in env_of(docker_api, c["Id"]) and c["Labels"]["syncer.revision"] == "3"
        revs = s.ok("GET", f"/definitions/{s.n('worker')}/revisions")["data"]
        assert revs[0]["revision"] == 3 and revs[0]["rollback_of"] == 1
        assert s.ok("GET", f"/definitions/{s.n('worker')}")["data"]["pinned"] is True
        # a file goes bad: /status keeps the last valid project's drift beside the problems
        (s.repo / "definitions/worker.yaml").write_text(worker(project, "w3") + "replicas: lots\n")
        wait_until(lambda: s.ok("GET", "/status")["data"]["validation_error"], 15, message="the problem seen")
        time.sleep(1.5)  # (a snapshot made before the problem was seen is kept a second)
        status = s.ok("GET", "/status")["data"]
        assert status["project"] == project and status["error"] is None
        assert [d["name"] for d in status["definitions"]] == [s.n("worker")] and status["counts"]
        assert any("replicas: expected integer" in line for line in status["validation_error"])


def test_prometheus_metrics_and_sampled_series(shared: Served, docker_api: Any) -> None:
    s = shared
    s.error("GET", "/metrics", 401, "unauthorized", key=None)
    s.ok("GET", "/status")
    s.error("GET", "/definitions/nope", 404, "not_found")
    r = s.call("GET", "/metrics", key="read")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("syncer_applies", "syncer_deployments", "syncer_plan_duration_seconds",
                 "syncer_apply_duration_seconds", "syncer_definitions_drifted", "syncer_containers",
                 "syncer_webhook_deliveries", "syncer_http_requests_total"):
        assert f"# TYPE {name} " in r.text, name
    assert "syncer_status_up 1.0" in r.text and 'syncer_server_up{server="local"} 1.0' in r.text
    assert 'syncer_applies{status="success"} 1.0' in r.text
    assert 'syncer_deployments{status="success"} 3.0' in r.text
    assert 'syncer_containers{state="running"} 4.0' in r.text and "syncer_definitions_drifted 0.0" in r.text
    assert 'syncer_http_requests_total{method="GET",route="/api/v1/definitions/{definition_id}",status="404"}' \
        in r.text

    def sampled() -> Any:
        data = s.ok("GET", f"/definitions/{s.n('web')}/metrics?interval=1m")["data"]
        return data if data["metrics"]["memory"]["values"] and data["metrics"]["cpu"]["values"] else None

    data = wait_until(sampled, 30, 0.5, message="CPU and memory samples")
    assert data["interval"] == "1m" and data["metrics"]["memory"]["values"][0]["value"] > 0
    assert data["metrics"]["cpu"]["unit"] == "percent" and data["metrics"]["memory"]["unit"] == "bytes"
    hour = s.ok("GET", f"/definitions/{s.n('web')}/metrics?interval=1h&start_time=2020-01-01T00:00:00Z"
                       "&end_time=2020-01-02T00:00:00Z")["data"]
    assert hour["metrics"]["cpu"]["values"] == []


def test_no_response_ever_shows_a_secret_value(shared: Served, docker_api: Any) -> None:
    s = shared
    c = containers(docker_api, s.project)["talker"]
    assert f"TOKEN={CANARY}" in env_of(docker_api, c["Id"])  # it did reach Docker
    wait_until(lambda: b"plain line" in docker_api.logs(c["Id"]), 10, message="the talker's output")
    logs = s.ok("GET", f"/instances/{s.n('talker')}/logs?tail=50")["data"]["lines"]
    assert {"token=***", "plain line"} <= {line["line"] for line in logs}
    assert all(line["timestamp"] for line in logs)
    # every read of every resource (Served.call asserts the canary is absent from each body)
    ids = {"def": s.ok("GET", f"/definitions/{s.n('talker')}")["data"]["id"],
           "dep": s.ok("GET", "/deployments")["data"][0]["id"], "inst": s.ok("GET", "/instances")["data"][0]["id"]}
    for path in ("/status", "/templates", "/templates/talk", "/definitions", f"/definitions/{ids['def']}",
                 f"/definitions/{ids['def']}/revisions", f"/definitions/{ids['def']}/metrics", "/instances",
                 f"/instances/{ids['inst']}", f"/instances/{s.n('talker')}/logs", "/servers", "/deployments",
                 f"/deployments/{ids['dep']}", "/metrics", "/health", "/openapi.json"):
        assert s.call("GET", path).status_code == 200, path
    s.call("GET", f"/instances/{CANARY}")  # even an echo of what the client sent is masked
    s.call("GET", f"/definitions/{CANARY}/metrics")
    s.wait_sync(s.ok("POST", "/sync", 202)["data"]["request_id"])
    s.call("POST", f"/instances/{s.n('talker')}/restart?timeout=1")
    assert CANARY not in s.server_log()


# --- git webhooks in ----------------------------------------------------------------------------------

HOOK_SECRET = "hook-secret-for-api-tests"


def _github(payload: dict[str, Any], secret: str = HOOK_SECRET, event: str = "push") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": event, "X-Hub-Signature-256": sig, "Content-Type": "application/json",
                  "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}


def test_a_signed_push_is_fetched_and_applied_or_refused_with_409(tmp_path: Path, project: str,
                                                                   docker_api: Any) -> None:
    """Issue 11, point 3: serve answered a push with 202 and reported the request a success
    with no run, and never fetched the commit. Now: no remote, 409; a clone of a remote
    (a real bare repository, a real push), the pushed commit fetched, fast-forwarded, applied."""
    payload = json.loads((REPO_ROOT / "tests/cases/hooks/github-push.json").read_text())
    env = {"SYNCER_GIT_WEBHOOK_SECRET": HOOK_SECRET}
    with serve(tmp_path, project, definitions={"worker": worker(project)}, env=env) as s:
        before = git(s.repo, "rev-parse", "HEAD")
        body, headers = _github({**payload, "ref": "refs/heads/main", "after": before})
        refused = s.error("POST", "/hooks/git", 409, "conflict", key=None, content=body, headers=headers)
        assert "no remote" in refused["error"]["message"] and "syncer watch --repo URL" in refused["error"]["message"]

        bare = tmp_path / "origin.git"
        git(tmp_path, "clone", "-q", "--bare", str(s.repo), str(bare))
        git(s.repo, "remote", "add", "origin", f"file://{bare}")
        dev = tmp_path / "dev"
        git(tmp_path, "clone", "-q", f"file://{bare}", str(dev))
        git(dev, "config", "user.email", "dev@example.com")
        git(dev, "config", "user.name", "dev")
        (dev / "definitions/worker.yaml").write_text(worker(project, "pushed"))
        sha = commit_all(dev, "push me")
        git(dev, "push", "-q", "origin", "main")
        assert git(s.repo, "rev-parse", "HEAD") == before  # nothing fetched yet

        body, headers = _github({**payload, "ref": "refs/heads/main", "after": sha})
        r = s.call("POST", "/hooks/git", key=None, content=body, headers=headers)
        assert r.status_code == 202 and r.json()["data"]["outcome"] == "accepted", r.text
        done = s.wait_sync(r.json()["data"]["request_id"])
        assert done["status"] == "success" and done["commit"] == sha and done["pushed_commit"] == sha, done
        assert done["run_ids"] and done["kind"] == "hook", done
        assert git(s.repo, "rev-parse", "HEAD") == sha
        c = containers(docker_api, project)["worker"]
        assert "MESSAGE=pushed" in env_of(docker_api, c["Id"]) and c["Labels"]["syncer.commit"] == sha

        # the same delivery again (a provider's redelivery): 202 duplicate, nothing queued
        again = s.call("POST", "/hooks/git", key=None, content=body, headers=headers)
        assert again.status_code == 202 and again.json()["data"]["outcome"] == "duplicate", again.text
        assert again.json()["data"]["request_id"] is None

        other = {"X-GitHub-Delivery": "another-delivery"}
        body, headers = _github({**payload, "ref": "refs/heads/elsewhere", "after": sha})
        r = s.call("POST", "/hooks/git", key=None, content=body, headers=headers | other)
        assert r.status_code == 202 and r.json()["data"]["accepted"] is False and not r.json()["data"]["request_id"]
        assert r.json()["data"]["outcome"] == "ignored" and "not the tracked branch" in r.json()["data"][
            "ignored_because"]
        tag = json.loads((REPO_ROOT / "tests/cases/hooks/github-create-tag.json").read_text())
        body, headers = _github(tag, event="create")
        r = s.call("POST", "/hooks/git", key=None, content=body, headers=headers | {"X-GitHub-Delivery": "t1"})
        assert r.status_code == 202 and r.json()["data"]["ignored_because"].startswith("the tag simple-tag was")
        body, headers = _github({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
        assert s.call("POST", "/hooks/git", key=None, content=body, headers=headers).status_code == 200
        body, headers = _github({**payload, "ref": "refs/heads/main"}, secret="wrong")
        s.error("POST", "/hooks/git", 401, "unauthorized", key=None, content=body, headers=headers)
        big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
        s.error("POST", "/hooks/git", 413, "invalid_request", key=None, content=big, headers=headers)
        # (chunked: no length to refuse up front) and any route's body, a key's too: the same limit
        s.error("POST", "/hooks/git", 413, "invalid_request", key=None, content=iter([big[:600_000], big[600_000:]]),
                headers=headers)
        s.error("POST", "/sync", 413, "invalid_request", content=big, headers={"Content-Type": "application/json"})
        s.error("POST", "/deployments", 413, "invalid_request", content=iter([big]),
                headers={"Content-Type": "application/json"})


def test_health_answers_at_once_while_another_process_holds_the_store(tmp_path: Path, project: str) -> None:
    """Regression: keys were checked with a store read (and a "last used" write) on the event
    loop, so while another process held a write on state.db, /health took 6 s. Not a
    performance bound: an answer that waited for the store would come only once the holder
    lets go (after 10 s), so each must come well before that, with the holder still holding.
    Each says 503 `unhealthy`: writes cannot be made meanwhile (QA round F5)."""
    import subprocess
    import sys
    import threading
    import time

    holder = ("import sqlite3, sys, time\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
              "db.execute('BEGIN IMMEDIATE'); db.execute(\"UPDATE api_keys SET name = name\")\n"
              "print('held', flush=True); time.sleep(10); db.execute('COMMIT')\n")
    with serve(tmp_path, project, definitions={}) as s:
        proc = subprocess.Popen([sys.executable, "-c", holder, str(s.state / "state.db")], stdout=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
            # keyed requests that must wait for the store, in flight while /health is asked
            busy = [threading.Thread(target=s.call, args=("GET", "/templates")) for _ in range(3)]
            for t in busy:
                t.start()
            times = []
            for _ in range(5):
                started = time.monotonic()
                assert s.http.get(f"{s.base}/health").status_code == 503
                times.append(time.monotonic() - started)
                time.sleep(0.2)
            assert proc.poll() is None, "the lock was let go before /health was measured"
            assert max(times) < 2.0, times
        finally:
            proc.terminate()  # its connection closes: the write is rolled back and the store free
            proc.wait(30)
            for t in busy:
                t.join(60)

