"""The container spec table against a real engine: every field reaches the container as
`docker inspect` shows it, and health comes from Docker's verdict, whether the spec or the
image's HEALTHCHECK gives the probe (issue 10, points 1, 5 and 6)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.helpers import HEALTHY_IMAGE, IMAGE, UNHEALTHY_IMAGE, remove_project, run_cli, write_files

LOOP = "trap 'exit 0' INT TERM; while true; do sleep 1; done"

EVERY_FIELD = f"""
id: full
version: "1.0"
inputs:
  token: {{type: password, required: true}}
  port: {{type: integer, default: 0}}
spec:
  image: {IMAGE}
  entrypoint: /bin/sh
  command: ["-c", "{LOOP}"]
  env: ["TOKEN=${{inputs.token}}", "PLAIN=yes"]
  ports: ["127.0.0.1::8080/tcp", "127.0.0.2::8080/tcp"]
  volumes: ["/cache"]
  tmpfs: ["/run:size=1m"]
  labels: ["traefik.enable=true", "tier=${{definition.name}}"]
  healthcheck: {{test: "test \\"$TOKEN\\" = ${{inputs.token}}", interval: 1s, timeout: 2s, retries: 3}}
  restart: on-failure:3
  user: "0:0"
  working_dir: /tmp
  hostname: webhost
  domainname: example.com
  init: true
  tty: true
  stdin_open: true
  resources: {{memory: 64m, cpus: 0.5, pids: 50, memory_reservation: 32m, shm_size: 16m}}
  cap_add: [NET_ADMIN]
  cap_drop: [MKNOD]
  privileged: false
  read_only: true
  security_opt: [no-new-privileges]
  devices: ["/dev/null:/dev/nothing:r"]
  ulimits: {{nofile: {{soft: 100, hard: 200}}, nproc: 64}}
  sysctls: ["net.core.somaxconn=1024"]
  extra_hosts: ["db:10.0.0.5", "cache=10.0.0.6"]
  dns: 10.0.0.2
  dns_search: [example.com]
  stop_signal: SIGINT
  stop_grace_period: 1m30s
  logging: {{driver: json-file, options: {{max-size: 1m, max-file: 2}}}}
  ipc: shareable
  platform: linux/amd64
  pull_policy: never
"""


def _apply(repo: Path, state: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), "apply", "--auto-approve",
                  "--stop-timeout", "1", *extra, env=env)
    assert "Traceback" not in out.stdout + out.stderr
    return out


def _containers(api: Any, project: str) -> dict[str, dict[str, Any]]:
    """The project's containers by definition name, inspected (the prefix `_own` added cut off)."""
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/").removeprefix(f"{project}-"): api.inspect_container(r["Id"]) for r in rows}


def _own(project: str, definition: str) -> str:
    """Definition names prefixed with the project: container names are global to the engine,
    and other tests on this engine use `web` or `db` too."""
    text = re.sub(r"^name: (\S+)", rf"name: {project}-\1", definition, flags=re.M)
    return re.sub(r"depends_on: \[(\S+)\]", rf"depends_on: [{project}-\1]", text)


def _repo(root: Path, project: str, templates: dict[str, str], definitions: dict[str, str]) -> Path:
    files = {"syncer.yaml": f"project: {project}\npolicy: {{bind_mounts: [/tmp], devices: true, cap_add: true}}\n"}
    files.update({f"templates/{k}.yaml": v for k, v in templates.items()})
    files.update({f"definitions/{k}.yaml": _own(project, v) for k, v in definitions.items()})
    return write_files(root, files)


def test_every_field_reaches_the_container(tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path / "r", project, {"full": EVERY_FIELD},
                 {"web": "name: web\ntemplate: full\nparams: {token: {secret: FULL_TOKEN}}\n"})
    secrets = tmp_path / "secrets.env"
    secrets.write_text("FULL_TOKEN=tok-9f3a\n")
    out = _apply(repo, tmp_path / "s", "--health-timeout", "60", env={"SYNCER_SECRETS_FILE": str(secrets)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "tok-9f3a" not in out.stdout + out.stderr
    info = _containers(docker_api, project)["web"]
    cfg, host = info["Config"], info["HostConfig"]
    assert info["State"]["Health"]["Status"] == "healthy"  # the spec's probe, secret revealed
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", 'test "$TOKEN" = tok-9f3a']
    assert "TOKEN=tok-9f3a" in cfg["Env"] and "PLAIN=yes" in cfg["Env"]
    assert cfg["Labels"]["traefik.enable"] == "true" and cfg["Labels"]["tier"] == f"{project}-web"
    assert cfg["Labels"]["syncer.definition"] == f"{project}-web"
    assert cfg["Entrypoint"] == ["/bin/sh"] and cfg["Cmd"] == ["-c", LOOP]
    assert (cfg["User"], cfg["WorkingDir"], cfg["Hostname"], cfg["Domainname"]) == (
        "0:0", "/tmp", "webhost", "example.com")
    assert (cfg["Tty"], cfg["OpenStdin"], cfg["StopSignal"], cfg["StopTimeout"]) == (True, True, "SIGINT", 90)
    # one container port published twice keeps both (the second replaced the first)
    assert [b["HostIp"] for b in host["PortBindings"]["8080/tcp"]] == ["127.0.0.1", "127.0.0.2"]
    assert host["Tmpfs"] == {"/run": "size=1m"}
    assert [m["Destination"] for m in info["Mounts"]] == ["/cache"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["Init"], host["Privileged"], host["ReadonlyRootfs"]) == (True, False, True)
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 5 * 10**8, 50)
    assert (host["MemoryReservation"], host["ShmSize"]) == (32 << 20, 16 << 20)
    assert (host["CapAdd"], host["CapDrop"], host["SecurityOpt"]) == (["NET_ADMIN"], ["MKNOD"], ["no-new-privileges"])
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/nothing",
                                "CgroupPermissions": "r"}]
    assert sorted(host["Ulimits"], key=lambda u: u["Name"]) == [
        {"Name": "nofile", "Soft": 100, "Hard": 200}, {"Name": "nproc", "Soft": 64, "Hard": 64}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["ExtraHosts"] == ["db:10.0.0.5", "cache:10.0.0.6"]
    assert (host["Dns"], host["DnsSearch"]) == (["10.0.0.2"], ["example.com"])
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert host["IpcMode"] == "shareable"


def test_stop_grace_period_is_used_when_a_recreate_stops_the_old_container(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    # The process ignores SIGTERM: only the grace period ends it. With the old container's own
    # StopTimeout (2s) the stop takes ~2s, not the --stop-timeout of 1s the CLI was given.
    template = f"""
        id: slow
        version: "1.0"
        inputs: {{v: string}}
        spec:
          image: {IMAGE}
          command: [sh, -c, "trap '' TERM; while true; do sleep 1; done"]
          env: {{V: "${{inputs.v}}"}}
          stop_grace_period: 2s
        """
    repo = _repo(tmp_path / "r", project, {"slow": template}, {"slowd": "name: slowd\ntemplate: slow\nparams: {v: a}\n"})
    assert _apply(repo, tmp_path / "s").returncode == 0
    old = _containers(docker_api, project)["slowd"]
    assert old["Config"]["StopTimeout"] == 2
    (repo / "definitions/slowd.yaml").write_text(_own(project, "name: slowd\ntemplate: slow\nparams: {v: b}\n"))
    assert _apply(repo, tmp_path / "s").returncode == 0
    kills = {e["Actor"]["Attributes"].get("signal"): e["timeNano"]
             for e in docker_api.events(since=_ts(old["Created"]), until=_now(docker_api), decode=True,
                                        filters={"container": old["Id"], "event": "kill"})}
    grace = (kills["9"] - kills["15"]) / 1e9  # SIGTERM, then SIGKILL when the grace period ran out
    assert 1.8 <= grace < 5, grace


def _ts(created: str) -> int:
    return int(datetime.fromisoformat(created[:19]).timestamp()) - 1


def _now(api: Any) -> int:
    return int(datetime.fromisoformat(api.info()["SystemTime"][:19]).timestamp()) + 2


IMAGE_HC = """
id: imagehc
version: "1.0"
inputs: {image: string, v: string}
spec:
  image: ${inputs.image}
  env: {V: "${inputs.v}"}
"""

DEPENDENT = f"""
id: plain
version: "1.0"
spec:
  image: {IMAGE}
  command: [sh, -c, "{LOOP}"]
"""


def _started(info: dict[str, Any]) -> datetime:
    return _parse(info["State"]["StartedAt"])


def _parse(text: str) -> datetime:
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}")


def test_apply_waits_for_the_image_healthcheck_before_dependents(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path / "r", project, {"imagehc": IMAGE_HC, "plain": DEPENDENT}, {
        "db": f"name: db\ntemplate: imagehc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n",
        "app": "name: app\ntemplate: plain\ndepends_on: [db]\n",
    })
    out = _apply(repo, tmp_path / "s", "--health-timeout", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    live = _containers(docker_api, project)
    health = live["db"]["State"]["Health"]
    first_pass = min(_parse(p["End"]) for p in health["Log"] if p["ExitCode"] == 0)
    assert _started(live["app"]) > first_pass


def test_a_failing_image_healthcheck_on_recreate_restores_the_old_container(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path / "r", project, {"imagehc": IMAGE_HC},
                 {"svc": f"name: svc\ntemplate: imagehc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"})
    state = tmp_path / "s"
    assert _apply(repo, state, "--health-timeout", "60").returncode == 0
    old = _containers(docker_api, project)["svc"]
    (repo / "definitions/svc.yaml").write_text(
        _own(project, f"name: svc\ntemplate: imagehc\nparams: {{image: '{UNHEALTHY_IMAGE}', v: b}}\n"))
    out = _apply(repo, state, "--health-timeout", "60")
    assert out.returncode == 1, out.stdout + out.stderr
    now = _containers(docker_api, project)
    assert set(now) == {"svc"} and now["svc"]["Id"] == old["Id"] and now["svc"]["State"]["Running"]
    listed = run_cli("--repo", str(repo), "--state-dir", str(state), "deployments", "list", "--status", "failed",
                     "--json")
    [dep] = json.loads(listed.stdout)
    assert dep["rolled_back"] is True


def test_disabled_healthcheck_turns_the_image_one_off_and_apply_does_not_wait(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    # An unhealthy image, its HEALTHCHECK turned off both ways: apply succeeds (before the fix
    # `test: [NONE]` hung until the health timeout; now neither has any probe at all).
    repo = _repo(tmp_path / "r", project, {"imagehc": IMAGE_HC}, {
        "off": f"name: off\ntemplate: imagehc\nparams: {{image: '{UNHEALTHY_IMAGE}', v: a}}\n"
               "overrides: {healthcheck: {disable: true}}\n",
        "none": f"name: none\ntemplate: imagehc\nparams: {{image: '{UNHEALTHY_IMAGE}', v: a}}\n"
                "overrides: {healthcheck: {test: [NONE]}}\n",
    })
    out = _apply(repo, tmp_path / "s", "--health-timeout", "20")
    assert out.returncode == 0, out.stdout + out.stderr
    live = _containers(docker_api, project)
    for name in ("off", "none"):
        assert live[name]["Config"]["Healthcheck"]["Test"] == ["NONE"]
        assert "Health" not in live[name]["State"] and live[name]["State"]["Running"]
    # the two forms normalise to one healthcheck (the specs differ only in the definition's own
    # network alias)
    specs = {n: json.loads(live[n]["Config"]["Labels"]["syncer.spec"]) for n in ("off", "none")}
    assert specs["off"]["healthcheck"] == specs["none"]["healthcheck"] == {"test": ["NONE"]}


def test_pull_policy_never_fails_for_a_missing_image_without_pulling(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    template = "id: gone\nversion: \"1.0\"\nspec: {image: 'syncer-local/no-such-image:1', pull_policy: never}\n"
    repo = _repo(tmp_path / "r", project, {"gone": template}, {"g": "name: g\ntemplate: gone\n"})
    out = _apply(repo, tmp_path / "s")
    assert out.returncode == 1
    assert "pull_policy is never" in out.stdout and "pulling" not in out.stdout
    assert _containers(docker_api, project) == {}


def test_runtime_reaches_the_engine_which_runs_the_container_with_it(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """`runtime` (Compose's: `nvidia`, a wasm shim) is HostConfig.Runtime: the engine's default
    one runs it, and one the engine does not know is the engine's own refusal."""
    spec = f"image: {IMAGE}\n  command: {json.dumps(['sh', '-c', LOOP])}\n"
    templates = {"ok": f"id: ok\nversion: \"1.0\"\nspec:\n  {spec}  runtime: runc\n",
                 "odd": f"id: odd\nversion: \"1.0\"\nspec:\n  {spec}  runtime: syncer-no-such-runtime\n"}
    repo = _repo(tmp_path / "r", project, templates, {"a": "name: a\ntemplate: ok\n", "b": "name: b\ntemplate: odd\n"})
    out = _apply(repo, tmp_path / "s")
    # (engines word it differently: "Unknown runtime specified X", "unknown or invalid runtime name: X")
    assert out.returncode == 1 and re.search(r"(?i)unknown.*runtime.*syncer-no-such-runtime", out.stdout), out.stdout
    running = _containers(docker_api, project)
    assert running["a"]["HostConfig"]["Runtime"] == "runc" and running["a"]["State"]["Running"]
    assert running.get("b") is None or not running["b"]["State"]["Running"]


def test_healthcheck_timings_without_test_keep_the_image_probe(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    repo = _repo(tmp_path / "r", project, {"imagehc": IMAGE_HC}, {
        "db": f"name: db\ntemplate: imagehc\nparams: {{image: '{HEALTHY_IMAGE}', v: a}}\n"
              "overrides: {healthcheck: {interval: 2s, retries: 2}}\n",
    })
    out = _apply(repo, tmp_path / "s", "--health-timeout", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    info = _containers(docker_api, project)["db"]
    assert info["Config"]["Healthcheck"]["Test"] == ["CMD", "true"]  # the image's
    assert (info["Config"]["Healthcheck"]["Interval"], info["Config"]["Healthcheck"]["Retries"]) == (2 * 10**9, 2)
    assert info["State"]["Health"]["Status"] == "healthy"


def test_an_empty_entrypoint_clears_the_images_as_composes_does(tmp_path: Path, project: str,
                                                                 docker_api: Any) -> None:
    """`entrypoint: []` (Compose's way to drop an image's ENTRYPOINT) reaches Docker as an empty
    entrypoint; it was dropped as an empty value, and the image's ran with the command as its
    arguments. (The image is built here, FROM the local busybox, with an ENTRYPOINT of its own.)"""
    import io

    image = f"syncer-local/{project}-entrypoint:1"
    for _ in docker_api.build(fileobj=io.BytesIO(f'FROM {IMAGE}\nENTRYPOINT ["echo", "from-the-image"]\n'.encode()),
                              tag=image, rm=True):
        pass  # (the build streams its progress: it is done once read to the end)
    try:
        template = f"""
id: cleared
version: "1.0"
spec:
  image: {image}
  pull_policy: never
  entrypoint: []
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""
        repo = _repo(tmp_path / "r", project, {"cleared": template}, {"app": "name: app\ntemplate: cleared\n"})
        out = _apply(repo, tmp_path / "s")
        assert out.returncode == 0, out.stdout + out.stderr
        info = _containers(docker_api, project)["app"]
        assert info["Config"]["Entrypoint"] in ([], None) and info["Config"]["Cmd"][0] == "sh", info["Config"]
        assert info["State"]["Running"], info["State"]
        assert "from-the-image" not in docker_api.logs(info["Id"]).decode()
    finally:
        remove_project(docker_api, project)
        docker_api.remove_image(image, force=True)


def test_start_interval_reaches_an_engine_that_has_it_and_is_refused_where_it_would_be_dropped(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    """A healthcheck's `start_interval` is Docker 25's (API 1.44): there it reaches the container;
    an older engine ignores the field, so the plan refuses it at the template (as Compose
    refuses it) instead of running a container without it."""
    spec = f"image: {IMAGE}\n  command: {json.dumps(['sh', '-c', LOOP])}\n"
    template = (f"id: si\nversion: \"1.0\"\nspec:\n  {spec}"
                "  healthcheck: {test: [CMD, 'true'], interval: 1s, start_period: 5s, start_interval: 1s}\n")
    repo = _repo(tmp_path / "r", project, {"si": template}, {"si": "name: si\ntemplate: si\n"})
    api = tuple(int(p) for p in docker_api.version()["ApiVersion"].split("."))
    out = _apply(repo, tmp_path / "s")
    if api >= (1, 44):
        assert out.returncode == 0, out.stdout + out.stderr
        assert _containers(docker_api, project)["si"]["Config"]["Healthcheck"]["StartInterval"] == 10**9
    else:
        assert out.returncode == 1
        assert re.fullmatch(rf"definitions/si\.yaml:2:11: definition '{project}-si' has a healthcheck with"
                            r" start_interval, which server 'local' \(API [0-9.]+\) would drop: it needs Docker 25"
                            r" \(API 1\.44\) or later; take it out \(a profile may\) or upgrade the engine\n",
                            out.stderr), out.stdout + out.stderr
        assert _containers(docker_api, project) == {}
