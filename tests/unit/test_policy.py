"""The host policy (issue 12, point 6): what a repository may ask of the host.

On data, with the spec table's field names (DESIGN.md): `privileged`, `network_mode`,
`pid`, `ipc`, `devices`, `cap_add`, `volumes` in long and short forms. Through validate
with the fields main's spec schema accepts today (`volumes[].host_path`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.core.errors import InvalidProject
from syncer.stages.load import DirTree
from syncer.stages.policy import (
    DEFAULT,
    Policy,
    combine,
    from_raw,
    loosening,
    operator_policy,
    violations,
)
from syncer.stages.validate import build_project


def _paths(spec: dict[str, object], policy: Policy = DEFAULT) -> list[tuple[object, ...]]:
    return [path for path, _ in violations(spec, policy)]


def test_default_policy_refuses_everything_that_reaches_the_host() -> None:
    spec = {
        "privileged": True, "network_mode": "host", "pid": "host", "ipc": "host",
        "devices": ["/dev/sda:/dev/sda"], "cap_add": ["SYS_ADMIN"],
        "volumes": [{"host_path": "/", "mount_path": "/host"}, "/srv/x:/x:ro", "data:/var/lib/x",
                    {"mount_path": "/data"}, {"type": "bind", "source": "/etc", "target": "/e"}],
    }
    assert _paths(spec) == [
        ("privileged",), ("network_mode",), ("pid",), ("ipc",), ("devices",), ("cap_add", 0),
        ("volumes", 0, "host_path"), ("volumes", 1), ("volumes", 4, "source"),
    ]


def test_allowed_fields_pass() -> None:
    spec = {"privileged": False, "network_mode": "bridge", "pid": "container:x", "cap_add": [],
            "volumes": ["named:/x", "./conf:/conf:ro", {"name": "v", "mount_path": "/v"}]}
    assert _paths(spec) == []


def test_bind_prefixes_are_path_prefixes_not_string_prefixes() -> None:
    policy = Policy(bind_mounts=("/srv/app",))
    assert _paths({"volumes": ["/srv/app/data:/d", "/srv/app:/a"]}, policy) == []
    assert _paths({"volumes": ["/srv/application:/x"]}, policy) == [("volumes", 0)]
    assert _paths({"volumes": ["/srv/app/../../etc:/x"]}, policy) == [("volumes", 0)]


@pytest.mark.parametrize("host", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/", "//run/./docker.sock"])
def test_docker_socket_never_even_under_an_allowed_prefix(host: str) -> None:
    policy = Policy(bind_mounts=("/",))
    ((path, message),) = violations({"volumes": [f"{host}:/s"]}, policy)
    assert path == ("volumes", 0) and "Docker socket" in message
    assert _paths({"volumes": [f"{host}:/s"]}, Policy(bind_mounts=("/",), docker_socket=True)) == []


def test_capabilities_by_name_with_or_without_prefix() -> None:
    policy = from_raw({"cap_add": ["net_admin"]})
    assert _paths({"cap_add": ["NET_ADMIN", "CAP_NET_ADMIN", "SYS_ADMIN"]}, policy) == [("cap_add", 2)]
    assert _paths({"cap_add": ["SYS_ADMIN"]}, from_raw({"cap_add": True})) == []


def test_repository_can_only_tighten_the_operators_policy() -> None:
    outer = from_raw({"bind_mounts": ["/srv"], "host_network": True, "cap_add": ["NET_ADMIN"]})
    raw = {"bind_mounts": ["/srv/app", "/etc"], "privileged": True, "host_network": False, "cap_add": True}
    assert [p for p, _ in loosening(outer, raw)] == [("privileged",), ("bind_mounts", 1), ("cap_add",)]
    both = combine(outer, raw)
    assert both.bind_mounts == ("/srv/app",) and not both.privileged and not both.host_network
    assert both.cap_add == ("NET_ADMIN",)
    assert combine(outer, None) == outer
    assert combine(None, {"privileged": True}).privileged  # without an operator, the repo's own


def test_operator_policy_file_is_checked_and_located() -> None:
    policy, problems = operator_policy("/etc/p.yaml", b"bind_mounts: [/srv]\nprivileged: false\n")
    assert policy == Policy(bind_mounts=("/srv",)) and problems == []
    policy, problems = operator_policy("/etc/p.yaml", b"bind_mounts: [srv]\nhost_net: true\n")
    assert policy is None
    assert [str(p) for p in problems] == [
        '/etc/p.yaml:1:15: bind_mounts[0]: "srv" does not match ^/',
        "/etc/p.yaml:2:1: unknown field 'host_net' (did you mean 'host_network'?)",
    ]


TEMPLATE = """\
id: web
version: "1"
inputs:
  type: object
  properties:
    dir: {type: string, default: /srv/data}
spec:
  image: busybox
  volumes: [{host_path: /srv/data, mount_path: /d}]
"""


def _repo(tmp_path: Path, syncer_yaml: str, definition: str) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "definitions").mkdir()
    (tmp_path / "syncer.yaml").write_text(syncer_yaml)
    (tmp_path / "templates/web.yaml").write_text(TEMPLATE)
    (tmp_path / "definitions/web.yaml").write_text(definition)
    return tmp_path


def _problems(root: Path, outer: Policy | None = None) -> list[str]:
    with pytest.raises(InvalidProject) as info:
        build_project(DirTree(root), str(root), policy=outer)
    return [str(d) for d in info.value.diagnostics]


def test_violation_is_located_in_the_template_or_the_override(tmp_path: Path) -> None:
    root = _repo(tmp_path, "project: demo\n",
                 "name: web\ntemplate: web\noverrides:\n  volumes: [{host_path: /, mount_path: /h}]\n")
    assert _problems(root) == [
        ("definitions/web.yaml:4:25: definition 'web': volumes[0]: bind mount of / holds the Docker socket,"
         " which gives root on the host: not allowed (policy.docker_socket)"),
    ]
    (root / "definitions/web.yaml").write_text("name: web\ntemplate: web\n")
    assert _problems(root) == [
        ("templates/web.yaml:9:25: definition 'web': volumes[0]: bind mount of /srv/data is not under an"
         " allowed prefix (policy.bind_mounts: none)"),
    ]
    (root / "syncer.yaml").write_text("project: demo\npolicy: {bind_mounts: [/srv]}\n")
    assert build_project(DirTree(root), str(root)).definitions[0].name == "web"


def test_operator_policy_wins_over_the_repository(tmp_path: Path) -> None:
    root = _repo(tmp_path, "project: demo\npolicy: {bind_mounts: [/srv], docker_socket: true}\n",
                 "name: web\ntemplate: web\n")
    outer = Policy(bind_mounts=("/opt",))
    assert _problems(root, outer) == [
        "syncer.yaml:2:24: policy.bind_mounts[0]: /srv is not under a prefix the operator's policy allows",
        "syncer.yaml:2:46: policy.docker_socket: the operator's policy forbids it; the repository cannot allow it",
        ("templates/web.yaml:9:25: definition 'web': volumes[0]: bind mount of /srv/data is not under an"
         " allowed prefix (policy.bind_mounts: none)"),
    ]
