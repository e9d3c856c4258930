"""Servers beyond the local socket, against real parts: a second dockerd reached through a
real OpenSSH server (`ssh://`) and over TCP with real TLS certificates (`tcp://` + `tls:`),
and one plan over several servers where one does not answer (issue 14)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.dockerd import SecondDockerd
from tests.helpers import run_cli, simple_repo, write_files
from tests.remote import TestSshd, free_port, keygen, make_certs


@dataclass
class Remote:
    """The second engine, its ssh and TLS doors, and the certificates."""

    d2: SecondDockerd
    sshd: TestSshd
    tcp: str
    certs: dict[str, Path]

    def api(self) -> Any:
        return docker.APIClient(base_url=self.d2.url)


@pytest.fixture(scope="module")
def remote(docker_api: Any) -> Iterator[Remote]:
    certs = make_certs(Path(tempfile.mkdtemp(prefix="syncer-certs-", dir="/tmp")))
    port = free_port()
    d2 = SecondDockerd(extra_args=("--host", f"tcp://127.0.0.1:{port}", "--tlsverify",
                                   "--tlscacert", str(certs["ca"]), "--tlscert", str(certs["server"]),
                                   "--tlskey", str(certs["server-key"])))
    sshd = TestSshd()
    try:
        d2.start()
        d2.load_image()
        sshd.start()
        yield Remote(d2, sshd, f"tcp://127.0.0.1:{port}", certs)
    finally:
        sshd.stop()
        d2.destroy()
        shutil.rmtree(certs["ca"].parent, ignore_errors=True)


def _defs(project: str, **servers: str) -> dict[str, str]:
    return {name: f"name: {project}-{name}\ntemplate: box\nserver: {server}\n" for name, server in servers.items()}


def _cli(repo: Path, state: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(state), *args, env=env)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def _mine(api: Any, project: str) -> dict[str, str]:
    rows = api.containers(all=True, filters={"label": [f"syncer.project={project}"]})
    return {r["Names"][0].lstrip("/"): r["State"] for r in rows}


def _ssh_repo(tmp_path: Path, project: str, remote: Remote) -> Path:
    url = remote.sshd.url(remote.d2.sock)
    return simple_repo(tmp_path / "r", project, definitions=_defs(project, web="edge", api="local"),
                       extra=f"servers:\n  local: {{}}\n  edge: {{docker: '{url}'}}\n")


def test_an_ssh_server_is_planned_and_applied_through_openssh(tmp_path: Path, project: str, remote: Remote,
                                                             docker_api: Any) -> None:
    repo = _ssh_repo(tmp_path, project, remote)
    env = {"SYNCER_SSH_CONFIG": str(remote.sshd.config())}
    out = _cli(repo, tmp_path / "s", "apply", "--auto-approve", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _mine(remote.api(), project) == {f"{project}-web": "running"}  # on the engine behind sshd
    assert _mine(docker_api, project) == {f"{project}-api": "running"}
    again = _cli(repo, tmp_path / "s", "plan", "--json", env=env)
    data = json.loads(again.stdout)
    assert again.returncode == 0 and not [a for a in data["actions"] if a["action"] != "noop"]
    assert data["servers"]["edge"] == {"reachable": True, "error": None, "kind": "docker",
                                     "summary": data["servers"]["edge"]["summary"]}
    assert data["servers"]["edge"]["summary"]["noop"] == 1 and data["servers"]["local"]["summary"]["noop"] == 1
    status = json.loads(_cli(repo, tmp_path / "s", "status", "--json", env=env).stdout)
    edge = next(s for s in status["servers"] if s["name"] == "edge")
    assert edge["reachable"] and edge["engine_version"] == remote.api().version()["Version"]


@pytest.mark.parametrize("failure", ["host key", "auth"])
def test_an_ssh_failure_is_one_line_naming_the_server_and_fails_only_its_actions(
        tmp_path: Path, project: str, remote: Remote, docker_api: Any, failure: str) -> None:
    repo = _ssh_repo(tmp_path, project, remote)
    stranger = keygen(tmp_path / "stranger")
    if failure == "host key":  # the server presents a key other than the one known_hosts holds
        known = tmp_path / "known_hosts"
        pub = (tmp_path / "stranger.pub").read_text().split()
        known.write_text(f"[127.0.0.1]:{remote.sshd.port} {pub[0]} {pub[1]}\n")
        config = remote.sshd.config().read_text().replace(f"{remote.sshd.dir}/known_hosts", str(known))
        expected = "server 'edge': ssh: Host key verification failed"
    else:  # a key the server does not authorise
        config = remote.sshd.config(identity=stranger).read_text()
        expected = "server 'edge': ssh: root@127.0.0.1: Permission denied (publickey)"
    (tmp_path / "ssh_config").write_text(config)
    env = {"SYNCER_SSH_CONFIG": str(tmp_path / "ssh_config")}
    out = _cli(repo, tmp_path / "s", "apply", "--auto-approve", env=env)
    assert out.returncode == 1
    assert expected in out.stdout + out.stderr
    assert [ln for ln in (out.stdout + out.stderr).splitlines() if expected in ln] == [
        f"Server edge: UNREACHABLE: {expected}"]
    assert _mine(docker_api, project) == {f"{project}-api": "running"}  # the other server was applied
    assert _mine(remote.api(), project) == {}


def test_an_ssh_url_naming_no_engine_socket_says_so(tmp_path: Path, project: str, remote: Remote) -> None:
    url = remote.sshd.url(Path("/nonexistent/docker.sock"))
    repo = simple_repo(tmp_path / "r", project, definitions=_defs(project, web="edge"),
                       extra=f"servers:\n  edge: {{docker: '{url}'}}\n")
    out = _cli(repo, tmp_path / "s", "plan", env={"SYNCER_SSH_CONFIG": str(remote.sshd.config())})
    assert out.returncode == 1 and out.stdout == ""
    assert re.fullmatch(r"server 'edge': ssh: .*open failed \(no engine listening at /nonexistent/docker\.sock on that"
                        r" host\? `\?socket=` in the URL names it\)\n", out.stderr), out.stderr


def _tls_repo(tmp_path: Path, project: str, remote: Remote, ca: Path) -> Path:
    repo = simple_repo(tmp_path / "r", project, definitions=_defs(project, web="secure"),
                       extra=f"servers:\n  secure:\n    docker: {remote.tcp}\n"
                             "    tls: {ca: certs/ca.pem, cert: certs/client.pem, key: {env: TEST_TLS_KEY}}\n")
    (repo / "certs").mkdir()
    shutil.copy(ca, repo / "certs/ca.pem")
    shutil.copy(remote.certs["client"], repo / "certs/client.pem")
    return repo


def _key_env(remote: Remote) -> dict[str, str]:
    # the bundle variable is set on purpose: the entry's CA must win over it
    return {"TEST_TLS_KEY": str(remote.certs["client-key"]), "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"}


def _no_key_in(remote: Remote, text: str) -> None:
    key = remote.certs["client-key"]
    body = "".join(ln for ln in key.read_text().splitlines() if "-----" not in ln)
    assert str(key) not in text and key.name not in text and body[:40] not in text


def test_a_tls_server_is_applied_with_the_entrys_certificates(tmp_path: Path, project: str,
                                                             remote: Remote) -> None:
    repo = _tls_repo(tmp_path, project, remote, remote.certs["ca"])
    out = _cli(repo, tmp_path / "s", "apply", "--auto-approve", env=_key_env(remote))
    assert out.returncode == 0, out.stdout + out.stderr
    assert _mine(remote.api(), project) == {f"{project}-web": "running"}
    outputs = [out.stdout + out.stderr]
    for args in (("plan", "--json"), ("status", "--json"), ("status",)):
        res = _cli(repo, tmp_path / "s", *args, env=_key_env(remote))
        assert res.returncode == 0, res.stdout + res.stderr
        outputs.append(res.stdout + res.stderr)
    for text in outputs:
        _no_key_in(remote, text)


def test_a_wrong_ca_is_one_clear_error_naming_the_server(tmp_path: Path, project: str, remote: Remote) -> None:
    other = make_certs(tmp_path / "other", "other")
    repo = _tls_repo(tmp_path, project, remote, other["ca"])
    out = _cli(repo, tmp_path / "s", "plan", env=_key_env(remote))
    text = out.stdout + out.stderr
    assert out.returncode == 1
    [line] = [ln for ln in text.splitlines() if "server 'secure'" in ln]
    # the only server: nothing to plan, so the error alone (on stderr)
    assert line.endswith("server 'secure': TLS: [SSL: CERTIFICATE_VERIFY_FAILED]"
                         " certificate verify failed: unable to get local issuer certificate"), line
    _no_key_in(remote, text)


@pytest.mark.parametrize("wrong", ["another pair's key", "no PEM"])
def test_a_client_key_that_is_not_the_certificates_is_one_line_naming_the_server(
        tmp_path: Path, project: str, remote: Remote, wrong: str) -> None:
    repo = _tls_repo(tmp_path, project, remote, remote.certs["ca"])
    key = tmp_path / "wrong-key.pem"
    key.write_text(remote.certs["server-key"].read_text() if wrong == "another pair's key" else "not a key\n")
    out = _cli(repo, tmp_path / "s", "plan", env={**_key_env(remote), "TEST_TLS_KEY": str(key)})
    text = out.stdout + out.stderr
    assert out.returncode == 1
    why = "the key does not match the certificate" if wrong == "another pair's key" \
        else "the certificate or key is not a usable PEM file"
    assert text.strip() == f"server 'secure': tls: {why}", text  # not the SDK's retries around OpenSSL's words
    assert str(key) not in text and "wrong-key" not in text


def test_a_tls_key_file_outside_the_repository_is_refused_without_naming_it(tmp_path: Path, project: str,
                                                                          remote: Remote) -> None:
    repo = simple_repo(tmp_path / "r", project, definitions=_defs(project, web="secure"),
                       extra=f"servers:\n  secure:\n    docker: {remote.tcp}\n"
                             f"    tls: {{ca: certs/ca.pem, cert: certs/c.pem, key: {remote.certs['client-key']}}}\n")
    out = _cli(repo, tmp_path / "s", "validate")
    assert out.returncode == 1
    assert "syncer.yaml:5:" in out.stderr + out.stdout and "must be inside the repository" in out.stderr + out.stdout
    _no_key_in(remote, out.stdout + out.stderr)


def test_an_unreachable_server_fails_its_own_actions_only(tmp_path: Path, project: str, remote: Remote,
                                                          docker_api: Any) -> None:
    gone = tmp_path / "nobody-listens.sock"
    repo = simple_repo(tmp_path / "r", project,
                       definitions={**_defs(project, a="local", b="far", c="other"),
                                    "d": f"name: {project}-d\ntemplate: box\nserver: local\ndepends_on: [{project}-b]\n"},
                       extra=f"servers:\n  local: {{}}\n  far: {{docker: 'unix://{gone}'}}\n"
                             f"  other: {{docker: '{remote.d2.url}'}}\n")
    plan = _cli(repo, tmp_path / "s", "plan", "--json")
    assert plan.returncode == 1
    data = json.loads(plan.stdout)
    assert data["servers"]["far"]["reachable"] is False and "server 'far'" in data["servers"]["far"]["error"]
    assert {a["container"]: a["action"] for a in data["actions"]} == {
        f"{project}-a": "create", f"{project}-b": "unreachable", f"{project}-c": "create", f"{project}-d": "create",
        project: "network create"}  # the project network, on each server that answered
    out = _cli(repo, tmp_path / "s", "apply", "--auto-approve")
    assert out.returncode == 1, out.stdout + out.stderr
    assert _mine(docker_api, project) == {f"{project}-a": "running"}  # d waits for b, which is on far
    assert _mine(remote.api(), project) == {f"{project}-c": "running"}
    assert ("By server: far: unreachable, 1 not planned; local: 2 to create, 1 network(s) to create;"
            " other: 1 to create, 1 network(s) to create.") in out.stdout
    assert out.stdout.splitlines()[-1] == ("Apply finished with failures: 2 deployment(s) succeeded, 1 failed;"
                                           " 1 not applied (1 server(s) unreachable)."), out.stdout
    listed = _cli(repo, tmp_path / "s", "instances", "list", "--json")  # the others' rows; the list is partial
    assert listed.returncode == 1 and sorted(r["name"] for r in json.loads(listed.stdout)) == [
        f"{project}-a", f"{project}-c"]
    assert listed.stderr.startswith("server 'far' did not answer, its instances are not listed: "), listed.stderr


def test_a_kept_client_reaches_the_server_again_after_its_tunnel_ended(remote: Remote,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from syncer.adapters import ssh
    from syncer.adapters.docker import Engine
    from syncer.core.errors import DockerUnavailable
    from syncer.core.model import Server

    monkeypatch.setenv("SYNCER_SSH_CONFIG", str(remote.sshd.config()))
    url = remote.sshd.url(remote.d2.sock) + "&for=kept-client"  # a tunnel of this test's own
    eng = Engine(Server("edge", url))  # the API server keeps its clients like this
    stranger = keygen(remote.sshd.dir / "kept-client-stranger")
    try:
        assert eng.version()["Version"]
        folder = ssh._tunnels[url].dir
        ssh._tunnels[url].close(keep_folder=True)  # ssh ends (network gone, remote restarted)
        assert eng.version()["Version"]  # the same client: the tunnel opened again, the call made again
        ssh._tunnels[url].close(keep_folder=True)
        # while the server is away, opening it again fails (here: refused), once and again: the
        # client keeps its path, and the next tunnel is made there (a new path left it on a
        # deleted socket for good)
        monkeypatch.setenv("SYNCER_SSH_CONFIG", str(remote.sshd.config(identity=stranger)))
        for _ in range(2):
            with pytest.raises(DockerUnavailable, match="^server 'edge': ssh: .*Permission denied"):
                eng.version()
        monkeypatch.setenv("SYNCER_SSH_CONFIG", str(remote.sshd.config()))
        assert eng.version()["Version"]  # back: the same client, through the tunnel opened again
        assert ssh._tunnels[url].dir == folder
    finally:
        eng.close()
        ssh._tunnels.pop(url).close()
        ssh._folders.pop(url, None)


def test_status_shows_the_servers_when_the_key_server_is_away(tmp_path: Path, project: str) -> None:
    """The secret key lives on the default server: while it is away nothing can be rendered,
    and status still says which servers answer (then why there are no rows), exit 1."""
    gone = tmp_path / "nobody-listens.sock"
    repo = simple_repo(tmp_path / "r", project,
                       definitions={"web": f"name: {project}-web\ntemplate: box\nserver: local\n"
                                           "params: {token: {secret: ST}}\n"},
                       extra=f"servers:\n  local: {{}}\n  far: {{docker: 'unix://{gone}'}}\ndefaults: {{server: far}}\n")
    env = {"SYNCER_SECRETS_FILE": str(write_files(tmp_path / "sec", {"s.env": "ST=status-canary-3f\n"}) / "s.env")}
    out = _cli(repo, tmp_path / "s", "status", env=env)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["SERVER", "REACHABLE", "ENGINE", "ERROR"]
    assert lines[1].startswith("far") and "NO" in lines[1] and lines[2].split()[:2] == ["local", "yes"]
    assert out.stderr.startswith("cannot read the project's secret key (kept on the default server 'far';"
                              " no copy on a server that answers): ")
    data = _cli(repo, tmp_path / "s", "status", "--json", env=env)
    assert data.returncode == 1
    assert [(s["name"], s["reachable"]) for s in json.loads(data.stdout)["servers"]] == [("far", False), ("local", True)]
    assert "status-canary-3f" not in out.stdout + out.stderr + data.stdout + data.stderr


def _key_of(api: Any, project: str) -> str | None:
    try:
        env = api.inspect_container(f"{project}.syncer-key")["Config"]["Env"] or []
    except docker.errors.NotFound:
        return None
    return next((e.partition("=")[2] for e in env if e.startswith("SYNCER_KEY=")), None)


def test_a_copy_of_the_key_lets_the_others_be_planned_while_the_default_server_is_away(
        tmp_path: Path, project: str, remote: Remote, docker_api: Any) -> None:
    """An apply leaves a copy of the key where a secret's user runs: a fresh state dir (another
    CI runner) plans that server without a recreate while the default server does not answer,
    and a key published anew replaces the copy at the next apply."""
    env = {"SYNCER_SECRETS_FILE": str(write_files(tmp_path / "sec", {"s.env": "ST=copy-canary-7d\n"}) / "s.env")}
    defs = {"web": f"name: {project}-web\ntemplate: box\nserver: local\nparams: {{token: {{secret: ST}}}}\n",
            "api": f"name: {project}-api\ntemplate: box\nserver: far\n"}

    def repo(far: str) -> Path:
        return simple_repo(tmp_path / "r", project, definitions=defs,
                           extra=f"servers:\n  local: {{}}\n  far: {{docker: '{far}'}}\ndefaults: {{server: far}}\n")

    out = _cli(repo(remote.d2.url), tmp_path / "s1", "apply", "--auto-approve", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _key_of(remote.api(), project) and _key_of(docker_api, project) == _key_of(remote.api(), project)
    remote.api().remove_container(f"{project}.syncer-key")
    # a state dir without a key of its own publishes a new one: web recreated, the copy replaced
    out = _cli(repo(remote.d2.url), tmp_path / "s1b", "apply", "--auto-approve", env=env)
    assert out.returncode == 0 and "(sensitive value changed)" in out.stdout, out.stdout + out.stderr
    key = _key_of(remote.api(), project)
    assert key and _key_of(docker_api, project) == key

    # web moves to far (the default server): its copy on local goes — a key stays only where
    # its secrets' users run, and a copy left behind would be read later, stale after a new key
    defs["web"] = defs["web"].replace("server: local", "server: far")
    assert _cli(repo(remote.d2.url), tmp_path / "s1b", "apply", "--auto-approve", env=env).returncode == 0
    assert _key_of(docker_api, project) is None
    defs["web"] = defs["web"].replace("server: far", "server: local")
    assert _cli(repo(remote.d2.url), tmp_path / "s1b", "apply", "--auto-approve", env=env).returncode == 0
    assert _key_of(docker_api, project) == key
    web = docker_api.inspect_container(f"{project}-web")["Id"]

    away = repo(f"unix://{tmp_path / 'nobody-listens.sock'}")
    for state in ("s2", "s3"):  # a fresh state dir: no secret.key of its own
        plan = _cli(away, tmp_path / state, "plan", "--json", env=env)
        assert plan.returncode == 1, plan.stdout + plan.stderr
        data = json.loads(plan.stdout)
        assert {a["container"]: a["action"] for a in data["actions"]} == {
            f"{project}-web": "noop", f"{project}-api": "unreachable"}
        assert "copy-canary-7d" not in plan.stdout + plan.stderr
    out = _cli(away, tmp_path / "s3", "apply", "--auto-approve", env=env)
    assert out.returncode == 1 and docker_api.inspect_container(f"{project}-web")["Id"] == web
    assert "copy-canary-7d" not in out.stdout + out.stderr

    # no definition has a secret any more: the copy goes too (it stayed while no secret was left)
    defs["web"] = f"name: {project}-web\ntemplate: box\nserver: local\n"
    assert _cli(repo(remote.d2.url), tmp_path / "s1b", "apply", "--auto-approve", env=env).returncode == 0
    assert _key_of(docker_api, project) is None
