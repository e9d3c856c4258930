"""`syncer watch` as a real process on real git repositories and a real engine."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from syncer.core.clock import epoch
from tests.dockerd import SecondDockerd
from tests.helpers import commit_all, git, git_init, run_cli, simple_repo, wait_until
from tests.watching import Watch, start as _start

WEB = "name: {name}\ntemplate: box\nparams: {{message: {message}}}\n"


def _container(api: Any, project: str, name: str) -> dict[str, Any] | None:
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return next((r for r in rows if r["Names"][0] == f"/{name}"), None)


def _running(api: Any, project: str, name: str) -> dict[str, Any] | None:
    c = _container(api, project, name)
    return c if c is not None and c["State"] == "running" else None


def _watch_with_api(tmp_path: Path, project: str, name: str, watches: list[Watch], *extra: str,
                    env: dict[str, str] | None = None) -> tuple[Watch, str, str]:
    """A watch of a one-definition repository serving its API: (the watch, the API's base URL,
    a write key)."""
    import json as _json

    from tests.apiserver import free_port

    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB.format(name=name, message="one")})
    git_init(repo)
    state = tmp_path / "state"
    key = _json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "keys", "generate", "--name", "t",
                              "--permission", "write", "--json").stdout)["key"]
    port = free_port()
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch",
               "--listen", f"127.0.0.1:{port}", "--resync", "1h", *extra, env=env)
    return w, f"http://127.0.0.1:{port}/api/v1", key


def test_commits_are_applied_invalid_ones_are_not_and_drift_heals(tmp_path: Path, project: str, docker_api: Any,
                                                                  watches: list[Watch]) -> None:
    name = f"{project}-web"
    repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB.format(name=name, message="one")})
    git_init(repo)
    state = tmp_path / "state"
    # a quiet period long enough that each edit and its commit (made at once) are one trigger,
    # so that the new container is labelled with the commit even on a loaded machine
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", debounce="2s")
    first = wait_until(lambda: _running(docker_api, project, name), 60, message="first apply")
    assert first["Labels"]["syncer.commit"] == git(repo, "rev-parse", "HEAD")

    (repo / "definitions/web.yaml").write_text(WEB.format(name=name, message="two"))
    sha = commit_all(repo, "two")
    second = wait_until(lambda: (c := _running(docker_api, project, name)) and
                        c["Labels"].get("syncer.commit") == sha and c, 60, message="commit applied")
    assert second["Id"] != first["Id"]
    assert "MESSAGE=two" in docker_api.inspect_container(second["Id"])["Config"]["Env"]
    deps = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--json")
    shown = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "show",
                    __import__("json").loads(deps.stdout)[0]["id"])
    assert f"commit {sha[:12]} two" in shown.stdout

    # an invalid commit: nothing changes, the error is reported
    (repo / "definitions/web.yaml").write_text(WEB.format(name=name, message="three") + "replicas: lots\n")
    commit_all(repo, "broken")
    wait_until(lambda: "replicas: expected integer" in w.text(), 30, message="validation error logged")
    status = run_cli("--repo", str(repo), "--state-dir", str(state), "status")
    assert status.returncode == 1 and "definitions/web.yaml:4:11" in status.stderr
    assert _running(docker_api, project, name)["Id"] == second["Id"]
    (repo / "definitions/web.yaml").write_text(WEB.format(name=name, message="four"))
    fixed = commit_all(repo, "fixed")
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Labels"].get("syncer.commit") == fixed,
               60, message="fix applied")

    # drift: kill, then remove behind syncer's back
    current = _running(docker_api, project, name)
    docker_api.kill(current["Id"])
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Id"] == current["Id"], 60,
               message="killed container started again")
    docker_api.remove_container(current["Id"], force=True)
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Id"] != current["Id"], 60,
               message="removed container created again")

    assert w.stop() == 0
    assert "stopped" in w.text()
    assert not (state / "apply.lock").read_text()  # released


def test_an_invalid_commit_or_a_missing_secret_does_not_stop_self_heal(tmp_path: Path, project: str,
                                                                       docker_api: Any, watches: list[Watch]) -> None:
    """What syncer last applied is healed while the repository cannot be planned: a killed
    container starts again as it ran (a removed one waits for a valid commit). `--resync 0s`
    is off, not a re-plan in a loop; a bad `--listen` is one line before anything starts; a
    server that does not answer is a line of the log, not only of `status`."""
    web, worker = f"{project}-web", f"{project}-worker"
    repo = simple_repo(tmp_path / "repo", project, definitions={
        "web": WEB.format(name=web, message="one"), "worker": WEB.format(name=worker, message="w"),
        "far": WEB.format(name=f"{project}-far", message="f") + "server: ghost\n"},
        extra=f"servers:\n  local: {{}}\n  ghost: {{docker: 'unix://{tmp_path}/nobody.sock'}}\n")
    git_init(repo)
    base = ("--repo", str(repo), "--state-dir", str(tmp_path / "state"), "watch")
    bad = run_cli(*base, "--listen", "127.0.0.1:99999")
    assert bad.returncode == 1 and bad.stderr == "--listen wants HOST:PORT, not '127.0.0.1:99999'\n"
    w = _start(watches, tmp_path, *base, "--resync", "0s")
    wait_until(lambda: _running(docker_api, project, web) and _running(docker_api, project, worker), 60,
               message="first apply")
    wait_until(lambda: "server ghost unreachable: " in w.text(), 10, message="the unreachable server logged")
    (repo / "definitions/web.yaml").write_text(WEB.format(name=web, message="two") + "replicas: lots\n")
    commit_all(repo, "broken")
    wait_until(lambda: "replicas: expected integer" in w.text(), 30, message="validation error logged")
    killed = _running(docker_api, project, worker)
    docker_api.kill(killed["Id"])
    wait_until(lambda: (c := _running(docker_api, project, worker)) and c["Id"] == killed["Id"], 30,
               message="killed container of a valid definition started again while the repository is invalid")
    assert f"{worker}: started again as it ran" in w.text()
    # QA: with syncer.yaml gone from the work tree, nothing was healed until it came back
    (repo / "syncer.yaml").unlink()
    wait_until(lambda: "no syncer.yaml" in w.text(), 30, message="the missing syncer.yaml logged")
    mark = w.text().count(f"{worker}: started again as it ran")
    killed = _running(docker_api, project, worker)
    docker_api.kill(killed["Id"])
    wait_until(lambda: (c := _running(docker_api, project, worker)) and c["Id"] == killed["Id"], 30,
               message="killed container started again while syncer.yaml is missing")
    assert w.text().count(f"{worker}: started again as it ran") == mark + 1
    assert "periodic resync" not in w.text()
    assert w.stop() == 0


def test_a_restart_through_the_api_is_not_a_fault_to_heal(tmp_path: Path, project: str, docker_api: Any,
                                                         watches: list[Watch]) -> None:
    """`POST /instances/X/restart` on a watch's API: the restart's own `die` was read as a
    fault, and a self-heal deployment (and a drift webhook) followed it."""
    import time

    import httpx

    name = f"{project}-rs"
    w, base, key = _watch_with_api(tmp_path, project, name, watches)
    first = wait_until(lambda: _running(docker_api, project, name), 60, message="first apply")
    with httpx.Client(timeout=30) as client:
        wait_until(lambda: client.get(f"{base}/health").status_code == 200, 30, message="API up")
        mark = len(w.text())
        answer = client.post(f"{base}/instances/{name}/restart?timeout=1", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
    time.sleep(3)  # (a heal's cycle would begin at once, on the restart's die event)
    after = w.text()[mark:]
    assert "trigger: docker" not in after and "deployment" not in after, after
    assert _running(docker_api, project, name)["Id"] == first["Id"]
    assert w.stop() == 0


def test_follows_a_remote_repository_by_url(tmp_path: Path, project: str, docker_api: Any,
                                             watches: list[Watch]) -> None:
    import json as _json

    name = f"{project}-r"
    work = simple_repo(tmp_path / "work", project, definitions={"web": WEB.format(name=name, message="one")})
    git_init(work)
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    git(work, "remote", "add", "origin", str(bare))
    w = _start(watches, tmp_path, "--state-dir", str(tmp_path / "state"), "watch", "--repo", f"file://{bare}",
               "--branch", "main", "--log-format", "json")
    wait_until(lambda: _running(docker_api, project, name), 60, message="first apply from the clone")
    import stat

    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700  # (QA: 0755; it holds the store and the key)
    (work / "definitions/web.yaml").write_text(WEB.format(name=name, message="pushed"))
    sha = commit_all(work, "pushed")
    git(work, "push", "-q", "origin", "main")
    c = wait_until(lambda: (c := _running(docker_api, project, name)) and c["Labels"].get("syncer.commit") == sha
                   and c, 60, message="pushed commit applied")
    assert "MESSAGE=pushed" in docker_api.inspect_container(c["Id"])["Config"]["Env"]
    # QA: each poll (every second here) planned again and logged it though nothing moved; the
    # commit a fetch brought was never named
    assert f"git: new commit {sha[:12]} (was " in w.text()
    import time

    time.sleep(3)
    quiet = w.text()
    time.sleep(3)  # three polls more, nothing pushed
    assert "trigger: git poll" not in w.text()[len(quiet):] and "plan:" not in w.text()[len(quiet):]
    # the remote goes away: watch keeps running and retries
    moved = tmp_path / "moved.git"
    bare.rename(moved)
    wait_until(lambda: "will retry" in w.text(), 30, message="unreachable remote logged")
    assert w.proc.poll() is None
    moved.rename(bare)
    # a damaged clone is cloned anew
    clone_head = tmp_path / "state" / "clone" / ".git" / "HEAD"
    clone_head.write_text("garbage\n")
    (work / "definitions/web.yaml").write_text(WEB.format(name=name, message="after-damage"))
    sha = commit_all(work, "after damage")
    git(work, "push", "-q", "origin", "main")
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Labels"].get("syncer.commit") == sha,
               60, message="commit applied after the clone was damaged")
    assert w.stop() == 0
    lines = [ln for ln in w.text().splitlines() if ln.startswith("{")]
    assert lines and all('"event"' in ln for ln in lines)
    # its records are filed in the state dir's store whatever directory it was started from
    # (they were kept only when the cwd held a syncer.yaml)
    assert "log records not kept" not in w.text()
    kept = run_cli("--repo", str(tmp_path / "state" / "clone"), "--state-dir", str(tmp_path / "state"), "logs",
                   "--json")
    assert kept.returncode == 0 and any(r["message"] == "stopped" for r in _json.loads(kept.stdout)), kept.stdout


def test_survives_the_docker_daemon_restarting(tmp_path: Path, project: str, watches: list[Watch]) -> None:
    import docker

    d2 = SecondDockerd()
    try:
        d2.start()
        d2.load_image()
        api = docker.APIClient(base_url=d2.url)
        name = f"{project}-d2"
        repo = simple_repo(tmp_path / "repo", project, definitions={"web": WEB.format(name=name, message="one")},
                           extra=f"servers:\n  other: {{docker: '{d2.url}'}}\n")
        text = (repo / "definitions/web.yaml").read_text()
        text = text.replace("{message: one}", "{message: one}") + "server: other\n"
        (repo / "definitions/web.yaml").write_text(text)
        git_init(repo)
        w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "watch")
        first = wait_until(lambda: _running(api, project, name), 60, message="applied on the second daemon")
        # the daemon goes away while the watch heals what was removed behind its back. (A heal
        # takes no lock since self-heal went lock-free; a lock the process could not release is
        # taken over by test_apply_lock_servers. Waiting here for a lock to show cost 20 s a run.)
        api.remove_container(first["Id"], force=True)
        d2.stop()
        wait_until(lambda: "reconnecting" in w.text(), 30, message="watch noticed the daemon went away")
        d2.start()
        api = docker.APIClient(base_url=d2.url)
        wait_until(lambda: _running(api, project, name), 90, message="converged after the daemon came back")
        assert w.proc.poll() is None
        assert w.stop() == 0
    finally:
        d2.destroy()


def test_api_requests_go_into_the_watch_queue(tmp_path: Path, project: str, docker_api: Any,
                                              watches: list[Watch]) -> None:
    import json as _json

    import httpx

    name = f"{project}-api"
    w, base, key = _watch_with_api(tmp_path, project, name, watches, "--no-self-heal",
                                   env={"SYNCER_GIT_WEBHOOK_SECRET": "hook-secret"})
    first = wait_until(lambda: _running(docker_api, project, name), 60, message="first apply")
    docker_api.stop(first["Id"], timeout=1)  # drift only the API's request will see (no self-heal, no resync)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as client:
        wait_until(lambda: client.get(f"{base}/health").status_code == 200, 30, message="API up")
        answer = client.post(f"{base}/sync", headers=headers)
        assert answer.status_code == 202, answer.text
        ident = answer.json()["data"]["request_id"]
        done = wait_until(lambda: (r := client.get(f"{base}/sync/{ident}", headers=headers).json()["data"])
                          and r["status"] in ("success", "failed") and r, 60, message="sync request finished")
        # a push: this watch applies its work tree's own commits and fetches from nowhere
        import hashlib
        import hmac

        body = _json.dumps({"ref": "refs/heads/main", "after": "a" * 40, "commits": []}).encode()
        signed = {"X-GitHub-Event": "push", "Content-Type": "application/json", "X-Hub-Signature-256":
                  "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()}
        pushed = client.post(f"{base}/hooks/git", content=body, headers=signed)
        assert pushed.status_code == 409, pushed.text
        assert pushed.json()["error"]["message"] == (
            "this server cannot apply a push: this watch follows the local work tree, not a remote. Serve a git"
            " clone of the repository (`git clone URL DIR; syncer --repo DIR serve`), or follow the remote with"
            " `syncer watch --repo URL --listen HOST:PORT`")
    assert done["status"] == "success" and done["run_ids"]
    assert _running(docker_api, project, name)["Id"] == first["Id"]  # started again by the API's sync
    assert w.stop() == 0




def test_a_failed_jobs_container_removed_by_hand_is_not_run_again_by_self_heal(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """README: a failed job is run again by the next apply, never by self-heal. Its container
    (a Swarm job's service) removed by hand was a fault to heal, and the heal ran the job."""
    import json as _json
    import textwrap
    import time

    from tests.helpers import job_template

    name = f"{project}-migrate"
    repo = simple_repo(tmp_path / "repo", project, templates={"job": textwrap.dedent(job_template())},
                       definitions={"migrate": f"name: {name}\ntemplate: job\nparams: {{script: 'echo x; exit 3'}}\n"})
    git_init(repo)
    state = tmp_path / "state"
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "0",
               debounce="1s")

    def runs() -> list[dict[str, Any]]:
        out = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--json")
        return [d for d in _json.loads(out.stdout) if d["finished_at"]]

    [failed] = wait_until(lambda: len(r := runs()) == 1 and r, 60, message="the job's failed run")
    assert failed["status"] == "failed"
    docker_api.remove_container(name, force=True)
    wait_until(lambda: f"trigger: docker: {name}" in w.text(), 30, message="the removal seen")
    time.sleep(4)
    assert len(runs()) == 1, runs()
    assert w.stop() == 0


def test_each_failure_of_a_held_spec_queues_its_next_try_itself_no_other_cycle_needed(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """No resync, no commit: the hold that a failure begins (and a retry's failure begins anew,
    twice as long) queues the next try itself. It used to be learnt by the next cycle's plan
    only, so that nothing tried the spec again (or some unrelated trigger did, without the wait)."""
    from tests.helpers import HEALTH_CHECKED, HEALTHY_IMAGE, UNHEALTHY_IMAGE
    import json as _json

    name = f"{project}-once"
    good = f"name: {name}\ntemplate: hc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"
    repo = simple_repo(tmp_path / "repo", project, templates={"hc": HEALTH_CHECKED}, definitions={"once": good})
    git_init(repo)
    state = tmp_path / "state"
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "0",
               "--retry-failed", "3s", "--health-timeout", "20", debounce="1s")
    old = wait_until(lambda: _running(docker_api, project, name), 60, message="first apply")

    def failed() -> list[dict[str, Any]]:
        out = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--status", "failed",
                      "--json")
        return sorted((d for d in _json.loads(out.stdout) if d["finished_at"]), key=lambda d: d["created_at"])

    (repo / "templates/hc.yaml").write_text(HEALTH_CHECKED.replace('"true"', '"false"'))
    (repo / "definitions/once.yaml").write_text(good.replace(HEALTHY_IMAGE, UNHEALTHY_IMAGE))
    commit_all(repo, "a failing probe")
    runs = wait_until(lambda: len(f := failed()) >= 3 and f, 90, message="three tries, each queued by its hold")
    assert all(r["rolled_back"] for r in runs[:3]), runs
    assert epoch(runs[1]["created_at"]) - epoch(runs[0]["finished_at"]) >= 2.5  # 3 s
    assert epoch(runs[2]["created_at"]) - epoch(runs[1]["finished_at"]) >= 5.5  # then 6 s
    assert _running(docker_api, project, name)["Id"] == old["Id"]
    # (the store records a deployment's end before watch logs the hold it begins: wait for the line)
    wait_until(lambda: w.text().count(f"{name}: held: its spec failed") >= 3, 10, message="each hold logged")
    assert w.stop() == 0


def test_a_spec_rolled_back_is_tried_again_after_a_growing_wait_not_at_every_cycle(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """A commit whose container fails its health check is rolled back (the old one runs
    again). Every resync, and every later commit that does not touch it, used to try it again:
    each time the old container stopped for the health timeout. Now watch holds it: tried
    again once its wait ends (then twice as long), at once when someone calls POST /sync, and
    at once when its spec changes; a container killed meanwhile is healed as ever."""
    import json as _json
    import time

    import httpx

    from tests.apiserver import free_port
    from tests.helpers import HEALTH_CHECKED, HEALTHY_IMAGE, UNHEALTHY_IMAGE

    name = f"{project}-svc"
    good = f"name: {name}\ntemplate: hc\nreplicas: 2\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"
    repo = simple_repo(tmp_path / "repo", project, templates={"hc": HEALTH_CHECKED},
                       definitions={"svc": good})
    git_init(repo)
    state = tmp_path / "state"
    key = _json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "keys", "generate", "--name", "t",
                              "--permission", "write", "--json").stdout)["key"]
    port = free_port()
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1s",
               "--retry-failed", "8s", "--health-timeout", "20", "--listen", f"127.0.0.1:{port}", debounce="1s")
    old = wait_until(lambda: _running(docker_api, project, name), 60, message="first apply")
    wait_until(lambda: _running(docker_api, project, f"{name}-2"), 60, message="second replica")

    def failed() -> list[dict[str, Any]]:
        out = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--status", "failed",
                      "--json")
        return sorted(_json.loads(out.stdout), key=lambda d: d["created_at"])

    (repo / "templates/hc.yaml").write_text(HEALTH_CHECKED.replace('"true"', '"false"'))
    (repo / "definitions/svc.yaml").write_text(good.replace(HEALTHY_IMAGE, UNHEALTHY_IMAGE).replace("v: a", "v: b"))
    commit_all(repo, "a failing probe")
    [first] = wait_until(lambda: len(f := failed()) == 1 and f[0]["finished_at"] and f, 90, message="rolled back")
    assert first["rolled_back"] is True
    time.sleep(4)  # four resyncs and more: each one held
    assert len(failed()) == 1
    assert _running(docker_api, project, name)["Id"] == old["Id"]
    assert f"{name}: held: its spec failed and was rolled back" in w.text()
    [row] = _json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "status", "--json").stdout)["definitions"]
    assert row["status"] == "failed" and row["held_until"] and row["drift"] == [f"recreate {name}", f"recreate {name}-2"]
    (repo / "README.md").write_text("a commit that does not touch it\n")
    commit_all(repo, "docs")
    time.sleep(2)
    assert len(failed()) == 1
    # the wait ends: tried once more (and rolled back again), then held twice as long
    second = wait_until(lambda: len(f := failed()) == 2 and f[1]["finished_at"] and f[1], 60, message="retried")
    assert epoch(second["created_at"]) - epoch(first["finished_at"]) >= 7.5
    assert _running(docker_api, project, name)["Id"] == old["Id"]
    # while held, self-heal works at the revision that ran: a container killed is started again
    # (trying the failing spec on it would leave it stopped: a failed recreate restores the old
    # container as it was), a replica removed is made again as it was (it was left missing, and
    # the whole definition tried the failing spec at every cycle)
    docker_api.kill(old["Id"])
    wait_until(lambda: "trigger: docker" in w.text(), 30, message="the kill seen")
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Id"] == old["Id"], 30, message="healed")
    docker_api.remove_container(_running(docker_api, project, f"{name}-2")["Id"], force=True)
    again = wait_until(lambda: _running(docker_api, project, f"{name}-2"), 30, message="replica made again")
    assert again["Labels"]["syncer.revision"] == old["Labels"]["syncer.revision"]
    assert "V=a" in docker_api.inspect_container(again["Id"])["Config"]["Env"]
    # labelled with the commit that revision came from, not HEAD's (two commits later)
    assert again["Labels"]["syncer.commit"] == old["Labels"]["syncer.commit"] != git(repo, "rev-parse", "HEAD")

    def shown() -> dict[str, Any]:
        return _json.loads(run_cli("--repo", str(repo), "--state-dir", str(state), "status", "--json").stdout)[
            "definitions"][0]

    # the heals at the old revision succeed, and the wanted one is still the failed one
    row = wait_until(lambda: (r := shown())["status"] != "deploying" and r, 30, message="heal deployed")
    assert row["status"] == "failed" and row["held_until"] and len(failed()) == 2
    # someone asks: tried now
    with httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}
        [row] = client.get(f"http://127.0.0.1:{port}/api/v1/status", headers=headers).json()["data"]["definitions"]
        assert row["held_until"] and epoch(row["held_until"]) > time.time()
        ident = client.post(f"http://127.0.0.1:{port}/api/v1/sync", headers=headers).json()["data"]["request_id"]
        wait_until(lambda: client.get(f"http://127.0.0.1:{port}/api/v1/sync/{ident}", headers=headers)
                   .json()["data"]["status"] in ("success", "failed"), 60, message="sync request finished")
    assert len(failed()) >= 3
    # a new spec is tried at once
    (repo / "templates/hc.yaml").write_text(HEALTH_CHECKED)
    (repo / "definitions/svc.yaml").write_text(good.replace("v: a", "v: c"))
    sha = commit_all(repo, "fixed")
    wait_until(lambda: (c := _running(docker_api, project, name)) and c["Labels"].get("syncer.commit") == sha, 60,
               message="the fix applied")
    assert w.stop() == 0
