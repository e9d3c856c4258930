"""Self-heal under a real `syncer watch` (issue 11): every fault done behind syncer's back is
undone, what an operator asked for through syncer is not. Not timed: bench/watch times it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import IMAGE, git_init, run_cli, simple_repo, wait_until
from tests.integration.test_watch import _container, _running
from tests.watching import Watch, start as _start

WEB = "name: {name}\ntemplate: box\n"
# PID 1 eats memory on SIGUSR1: the kernel's OOM killer then ends the container's main process
HOG = f"""
id: hog
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done' USR1; while true; do sleep 1; done"]
  resources: {{memory: 16m}}
"""
# healthy until /tmp/sick exists
SICKLY = f"""
id: sickly
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
  healthcheck: {{test: [CMD-SHELL, "test ! -e /tmp/sick"], interval: 1s, timeout: 1s, retries: 1}}
"""


def _watch(watches: list[Watch], tmp_path: Path, project: str, definitions: dict[str, str],
           templates: dict[str, str] | None = None) -> tuple[Watch, Path, Path]:
    repo = simple_repo(tmp_path / "repo", project, definitions=definitions, templates=templates)
    git_init(repo)
    state = tmp_path / "state"
    # no resync during the test: only the events can heal
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(state), "watch", "--resync", "1h")
    return w, repo, state


def _healed(api: Any, project: str, name: str, what: str, *, after: str | None = None) -> str:
    """Wait until `name` runs, unpaused, in the list and in its own record, and (`after`: the
    StartedAt before a fault) was started again since; its id."""

    def up() -> str | None:
        c = _running(api, project, name)
        if c is None:
            return None
        state = api.inspect_container(c["Id"])["State"]
        ok = state["Running"] and not state["Paused"] and (after is None or state["StartedAt"] != after)
        return str(c["Id"]) if ok else None

    return wait_until(up, 60, message=f"{name} healed after {what}")


def _started(api: Any, ident: str) -> str:
    return str(api.inspect_container(ident)["State"]["StartedAt"])


def test_each_fault_behind_syncers_back_is_healed(tmp_path: Path, project: str, docker_api: Any,
                                                 watches: list[Watch]) -> None:
    name, hog = f"{project}-web", f"{project}-hog"
    w, _, _ = _watch(watches, tmp_path, project, {"web": WEB.format(name=name), "hog": f"name: {hog}\ntemplate: hog\n"},
                     {"hog": HOG})
    ident = _healed(docker_api, project, name, "the first apply")
    hog_id = _healed(docker_api, project, hog, "the first apply")

    for what, fault in [("docker kill", lambda: docker_api.kill(ident)),
                        # the main process exits (its TERM trap ends it), signalled from inside
                        ("the main process exiting", lambda: subprocess.run(
                            ["docker", "exec", name, "kill", "-TERM", "1"], check=True, capture_output=True)),
                        ("docker stop", lambda: docker_api.stop(ident, timeout=1))]:
        before = _started(docker_api, ident)
        fault()
        assert _healed(docker_api, project, name, what, after=before) == ident
    docker_api.pause(ident)  # (the watch may unpause it before an inspect here could see it paused)
    wait_until(lambda: f" pause {project}" in w.text(), 60, message="the watch to see the pause")
    assert _healed(docker_api, project, name, "docker pause") == ident
    docker_api.remove_container(ident, force=True)
    assert _healed(docker_api, project, name, "docker rm -f") != ident

    before = _started(docker_api, hog_id)
    docker_api.kill(hog_id, signal="USR1")
    assert _healed(docker_api, project, hog, "an OOM kill", after=before) == hog_id
    assert docker_api.inspect_container(hog_id)["State"]["OOMKilled"]

    text = w.text()
    for fault in ("die", "pause", "destroy", "oom"):
        assert f" {fault} {project}" in text, fault
    assert w.stop() == 0


def test_an_instance_stopped_with_syncer_instances_stop_stays_stopped(tmp_path: Path, project: str, docker_api: Any,
                                                          watches: list[Watch]) -> None:
    name = f"{project}-held"
    w, repo, state = _watch(watches, tmp_path, project, {"held": WEB.format(name=name)})
    ident = _healed(docker_api, project, name, "the first apply")
    seen = len(w.text())
    stopped = run_cli("--repo", str(repo), "--state-dir", str(state), "instances", "stop", name, "--timeout", "1")
    assert stopped.returncode == 0, stopped.stderr

    def replanned() -> bool:  # the watch saw the stop and planned after it
        text = w.text()[seen:]
        return f"trigger: docker: {name} " in text and "plan:" in text.split(f"trigger: docker: {name} ", 1)[1]

    wait_until(replanned, 60, message="a cycle after the stop")
    c = _container(docker_api, project, name)
    assert c is not None and c["Id"] == ident and c["State"] == "exited"
    assert w.stop() == 0


def test_unhealthy_is_restarted_only_where_the_definition_opts_in(tmp_path: Path, project: str, docker_api: Any,
                                                                  watches: list[Watch]) -> None:
    heal, report = f"{project}-heal", f"{project}-report"
    w, _, _ = _watch(watches, tmp_path, project, {
        "heal": f"name: {heal}\ntemplate: sickly\nself_heal: {{unhealthy: restart}}\n",
        "report": f"name: {report}\ntemplate: sickly\n"}, {"sickly": SICKLY})
    started = {}
    for n in (heal, report):
        c = wait_until(lambda: (c := _running(docker_api, project, n)) and "(healthy)" in c["Status"] and c, 60,
                       message=f"{n} healthy")
        started[n] = docker_api.inspect_container(c["Id"])["State"]["StartedAt"]
        subprocess.run(["docker", "exec", n, "touch", "/tmp/sick"], check=True, capture_output=True)
    wait_until(lambda: docker_api.inspect_container(heal)["State"]["StartedAt"] != started[heal], 60,
               message="the opted-in container restarted")
    wait_until(lambda: f"unhealthy {report}" in w.text(), 30, message="the other one reported")
    wait_until(lambda: "restarted unhealthy" in w.text(), 30, message="the restart logged")
    # the restart's own kill, die and stop are not faults: no heal cycle follows it
    assert not [line for line in w.text().splitlines() if line.endswith((f"die {heal}", f"stop {heal}"))], w.text()
    assert docker_api.inspect_container(report)["State"]["StartedAt"] == started[report]
    assert docker_api.inspect_container(report)["State"]["Running"]
    assert w.stop() == 0


# ends on TERM with exit 0 (as most servers do), and on its own with exit 0 once /tmp/done exists
ONESHOT = f"""
id: oneshot
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "trap 'exit 0' TERM; while [ ! -e /tmp/done ]; do sleep 0.2; done; echo finished"]
  restart: "no"
"""
CRASHER = f"""
id: crasher
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "sleep 1; echo giving up; exit 3"]
"""


def test_a_container_that_exits_0_on_its_own_under_restart_no_is_left_exited_but_a_stop_is_healed(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """A one-shot (a Compose service with `restart: "no"` whose process ends with exit 0) ran
    again every second under watch. Its own clean end is now final; the same exit code from
    someone's `docker stop` is still a fault."""
    name = f"{project}-once"
    w, repo, state = _watch(watches, tmp_path, project, {"once": f"name: {name}\ntemplate: oneshot\n"},
                            {"oneshot": ONESHOT})
    ident = _healed(docker_api, project, name, "the first apply")
    before = _started(docker_api, ident)
    docker_api.stop(ident, timeout=5)  # exit 0 too, but someone's doing
    assert docker_api.inspect_container(ident)["State"]["ExitCode"] == 0
    assert _healed(docker_api, project, name, "docker stop", after=before) == ident

    before = _started(docker_api, ident)
    subprocess.run(["docker", "exec", name, "touch", "/tmp/done"], check=True, capture_output=True)
    wait_until(lambda: "exited 0 on its own, and its restart policy is no: left exited" in w.text(), 30,
               message="the watch noting the end")
    plan = run_cli("--repo", str(repo), "--state-dir", str(state), "plan", "--json")
    [once] = [a for a in __import__("json").loads(plan.stdout)["actions"] if a["container"] == name]
    assert (once["action"], once["cause"]) == (
        "noop", "exited 0 on its own, as its restart policy allows (start it through syncer to run it again)")
    record = docker_api.inspect_container(ident)["State"]
    assert (record["Status"], record["ExitCode"], record["StartedAt"]) == ("exited", 0, before)
    assert w.text().count(f"trigger: docker: {name} die") == 1  # the stop's only

    def row() -> dict[str, Any]:
        listed = run_cli("--repo", str(repo), "--state-dir", str(state), "instances", "list", "--json")
        return next(r for r in __import__("json").loads(listed.stdout) if r["name"] == name)

    assert (row()["state"], row()["finished"], row()["held_stopped"]) == ("exited", True, False)
    # run again on purpose: it starts (and, /tmp/done being there, ends at once: final again)
    started = run_cli("--repo", str(repo), "--state-dir", str(state), "instances", "start", name)
    assert started.returncode == 0, started.stderr
    assert docker_api.inspect_container(ident)["State"]["StartedAt"] != before
    wait_until(lambda: w.text().count("its restart policy is no: left exited") == 2, 30, message="the second end")
    assert row()["finished"] is True and w.text().count(f"trigger: docker: {name} die") == 1
    assert w.stop() == 0


def test_a_crash_loop_is_healed_with_a_growing_wait(tmp_path: Path, project: str, docker_api: Any,
                                                    watches: list[Watch]) -> None:
    """A container that exits 3 a second after each start was started again at once, forever:
    a deployment, a log line and a webhook a second. It is healed at once the first time,
    then after 2 s, 4 s, ..."""
    name = f"{project}-crash"
    w, _, _ = _watch(watches, tmp_path, project, {"crash": f"name: {name}\ntemplate: crasher\n"},
                     {"crasher": CRASHER})
    wait_until(lambda: f"{name} exited with code 3 on its own, 3 times in a row: healing it in 4s" in w.text(), 60,
               message="the third crash in a row backed off")
    text = w.text()
    assert f"{name} exited with code 3 on its own, 2 times in a row: healing it in 2s (crash loop back-off)" in text
    # healed once at once, once after the 2 s wait: two heals, not one a second
    heals = re.findall(rf"trigger: docker: {name} die(.*)", text)
    assert heals == ["", " (after 2s of back-off)"], heals
    assert w.stop() == 0


HTTPD = f"""
id: httpd
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, 'mkdir -p /www; echo up > /www/index.html; trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait']
"""


def test_a_container_sharing_the_network_of_one_healed_or_restarted_gets_the_new_one(
        tmp_path: Path, project: str, docker_api: Any, watches: list[Watch]) -> None:
    """Docker gives a container that starts again a new network namespace: one that shares
    it (`network_mode: container:X`, a VPN sidecar's clients) kept the old one, a loopback
    only, until something recreated it."""
    web, side = f"{project}-web", f"{project}-side"
    w, _, _ = _watch(watches, tmp_path, project, {
        "web": f"name: {web}\ntemplate: httpd\n",
        "side": f"name: {side}\ntemplate: box\noverrides: {{network_mode: 'container:{web}'}}\n"}, {"httpd": HTTPD})

    def reaches() -> bool:
        c = _running(docker_api, project, side)
        if c is None:
            return False
        ex = docker_api.exec_create(c["Id"], ["wget", "-qO-", "http://127.0.0.1:8080/"])
        return docker_api.exec_start(ex["Id"]) == b"up\n" and docker_api.exec_inspect(ex["Id"])["ExitCode"] == 0

    wait_until(reaches, 60, message="the side container reaching web on localhost")
    for fault in (lambda: docker_api.kill(web), lambda: docker_api.restart(web, timeout=1)):
        before = _container(docker_api, project, side)
        fault()
        wait_until(lambda: (c := _container(docker_api, project, side)) is not None and c["Id"] != before["Id"]
                   and reaches(), 60, message="the side container made again in web's new namespace")
    assert f"it shares the network of {web}" in w.text()
    assert w.stop() == 0
