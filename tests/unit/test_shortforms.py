"""Compose's short forms and syncer's long forms of the spec table give the SAME spec hash
(through validate and render, as a user's files go), and the table renders to the Docker
API arguments it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncer.adapters.container_args import create_args
from syncer.core.errors import InvalidProject
from syncer.core.labels import secret_ref
from syncer.core.model import ContainerSpec
from syncer.stages.load import DirTree
from syncer.stages.render import render
from syncer.stages.validate import build_project
from tests.helpers import write_files

KEY = b"k" * 32

TEMPLATE = """
id: app
version: "1.0"
inputs:
  type: object
  properties:
    port: {{type: integer, default: 8080}}
    flag: {{type: boolean, default: true}}
    token: {{type: string, format: password, writeOnly: true}}
spec:
{spec}
profiles:
  development: {{}}
"""


def _render(tmp: Path, spec: str, params: str = "{}", secrets: dict[str, str] | None = None) -> ContainerSpec:
    if not spec.startswith("image:"):
        spec = "image: syncer-local/busybox:latest\n" + spec
    body = "\n".join("  " + line for line in spec.strip().splitlines())
    write_files(tmp, {
        "syncer.yaml": "project: p\npolicy: {bind_mounts: [/srv, /data], devices: true, privileged: true, cap_add: true, host_network: true, host_pid: true, host_ipc: true}\n",
        "templates/app.yaml": TEMPLATE.format(spec=body),
        "definitions/d.yaml": f"name: web\ntemplate: app\nparams: {params}\n",
    })
    project = build_project(DirTree(tmp), str(tmp))
    return render(project, secrets=secrets or {}, secret_key=KEY).containers[0]


PAIRS = [
    ("image-tagless", 'image: syncer-local/busybox', "image: {repository: syncer-local/busybox, tag: latest}"),
    ("image-digest", "image: repo@sha256:" + "a" * 64, "image: repo@sha256:" + "a" * 64),
    ("command-string", 'command: "sh -c \'echo hi\'"', "command: [sh, -c, echo hi]"),
    ("entrypoint-string", "entrypoint: /bin/sh", "entrypoint: [/bin/sh]"),
    ("env-list", 'env: ["A=1", "B=x=y", "UNSET"]', "env: {A: '1', B: 'x=y', UNSET: null}"),
    ("port-container-only", 'ports: ["80"]', "ports: [{container_port: 80}]"),
    ("port-integer", "ports: [80]", "ports: [{container_port: 80, protocol: tcp}]"),
    ("port-host", 'ports: ["8080:80"]', "ports: [{container_port: 80, host_port: 8080}]"),
    ("port-ip-udp", 'ports: ["127.0.0.1:53:53/udp"]',
     "ports: [{container_port: 53, host_port: 53, protocol: udp, host_ip: 127.0.0.1}]"),
    ("port-ip-no-host-port", 'ports: ["127.0.0.1::80"]', "ports: [{container_port: 80, host_ip: 127.0.0.1}]"),
    ("port-range", 'ports: ["9000-9001:80-81"]',
     "ports: [{container_port: 80, host_port: 9000}, {container_port: 81, host_port: 9001}]"),
    ("port-substituted", 'ports: ["${inputs.port}:80"]', "ports: [{container_port: 80, host_port: 8080}]"),
    ("volume-named", 'volumes: ["data:/var/lib/x"]', "volumes: [{mount_path: /var/lib/x, name: data}]"),
    ("volume-bind-ro", 'volumes: ["/srv/x:/x:ro"]', "volumes: [{mount_path: /x, host_path: /srv/x, read_only: true}]"),
    ("volume-rw", 'volumes: ["/srv/x:/x:rw"]', "volumes: [{mount_path: /x, host_path: /srv/x, read_only: false}]"),
    ("volume-anonymous", 'volumes: ["/cache"]', "volumes: [{mount_path: /cache}]"),
    ("volume-selinux", 'volumes: ["/srv/x:/x:ro,Z", "/data/y:/y:z"]',
     "volumes: [{mount_path: /x, host_path: /srv/x, read_only: true, selinux: Z},"
     " {mount_path: /y, host_path: /data/y, selinux: z}]"),
    ("tmpfs-string", "tmpfs: /run", "tmpfs: [/run]"),
    ("labels-list", 'labels: ["a=1", "b"]', "labels: {a: '1', b: ''}"),
    ("healthcheck-string", 'healthcheck: {test: "wget -q localhost"}', "healthcheck: {test: [CMD-SHELL, wget -q localhost]}"),
    ("healthcheck-disable", "healthcheck: {disable: true}", "healthcheck: {test: [NONE]}"),
    ("healthcheck-disable-over-test", "healthcheck: {test: [CMD, x], interval: 5s, disable: true}",
     "healthcheck: {test: [NONE], retries: 3}"),
    ("flag-substituted", "init: ${inputs.flag}", "init: true"),
    ("dns-string", "dns: 10.0.0.2", "dns: [10.0.0.2]"),
    ("dns-search-string", "dns_search: example.com", "dns_search: [example.com]"),
    ("sysctls-list", 'sysctls: ["net.core.somaxconn=1024"]', "sysctls: {net.core.somaxconn: 1024}"),
    ("extra-hosts-equals", 'extra_hosts: ["db=10.0.0.5"]', 'extra_hosts: ["db:10.0.0.5"]'),
    ("extra-hosts-mapping", "extra_hosts: {db: 10.0.0.5}", 'extra_hosts: ["db:10.0.0.5"]'),
    ("ulimits-single", "ulimits: {nofile: 1024}", "ulimits: {nofile: {soft: 1024, hard: 1024}}"),
    ("devices-short", 'devices: ["/dev/null"]', "devices: [{source: /dev/null, target: /dev/null, permissions: rwm}]"),
    ("devices-full", 'devices: ["/dev/null:/dev/nothing:r"]',
     "devices: [{source: /dev/null, target: /dev/nothing, permissions: r}]"),
    ("gpus-all", "gpus: all", "gpus: [{count: all, capabilities: [gpu]}]"),
    ("logging-options-text", "logging: {driver: json-file, options: {max-file: 3}}",
     "logging: {driver: json-file, options: {max-file: '3'}}"),
    ("pids-text", 'resources: {pids: "${inputs.port}"}', "resources: {pids: 8080}"),
]


@pytest.mark.parametrize("short,long", [(s, lg) for _, s, lg in PAIRS], ids=[i for i, _, _ in PAIRS])
def test_short_form_hashes_like_long_form(tmp_path: Path, short: str, long: str) -> None:
    a = _render(tmp_path / "a", short)
    b = _render(tmp_path / "b", long)
    assert a.spec == b.spec
    assert a.spec_hash == b.spec_hash


def test_env_list_in_template_merges_with_profile_mapping(tmp_path: Path) -> None:
    write_files(tmp_path, {
        "syncer.yaml": "project: p\npolicy: {bind_mounts: [/srv, /data], devices: true, privileged: true, cap_add: true, host_network: true, host_pid: true, host_ipc: true}\n",
        "templates/app.yaml": """
            id: app
            version: "1.0"
            spec: {image: i, env: ["A=1", "B=2"], labels: ["x=1"]}
            profiles:
              development: {env: {B: "3"}, labels: {y: "2"}}
            """,
        "definitions/d.yaml": "name: web\ntemplate: app\noverrides: {env: [\"C=4\"]}\n",
    })
    c = render(build_project(DirTree(tmp_path), str(tmp_path)), secrets={}, secret_key=KEY).containers[0]
    assert c.spec["env"] == {"A": "1", "B": "3", "C": "4"}
    assert c.spec["labels"] == {"x": "1", "y": "2"}


EVERY_FIELD = """
command: [sh, -c, "sleep 1000"]
entrypoint: [/bin/sh]
env: ["TOKEN=${inputs.token}"]
ports: ["127.0.0.1:18080:80/tcp"]
volumes: ["/srv/x:/x:ro"]
tmpfs: ["/run:size=1m"]
labels: {tier: front}
healthcheck: {test: "check ${inputs.token}", interval: 2s, timeout: 1s, retries: 2, start_period: 1s, start_interval: 1s}
restart: on-failure:3
user: "1000:1000"
working_dir: /x
hostname: web
domainname: example.com
init: true
tty: true
stdin_open: true
resources: {memory: 64m, cpus: 0.5, pids: 50, memory_reservation: 32m, shm_size: 16m}
cap_add: [NET_ADMIN]
cap_drop: [MKNOD]
privileged: false
read_only: true
security_opt: [no-new-privileges]
devices: ["/dev/null:/dev/nothing:r"]
ulimits: {nofile: {soft: 100, hard: 200}}
sysctls: {net.core.somaxconn: 1024}
extra_hosts: ["db:10.0.0.5"]
dns: [10.0.0.2]
dns_search: [example.com]
stop_signal: SIGINT
stop_grace_period: 1m30s
logging: {driver: json-file, options: {max-size: 1m}}
pid: host
ipc: shareable
gpus: [{count: 1, driver: nvidia}]
platform: linux/amd64
pull_policy: never
"""


def test_every_field_renders_to_docker_arguments_with_secrets_revealed(tmp_path: Path) -> None:
    c = _render(tmp_path, EVERY_FIELD, params="{token: {secret: TOK}}", secrets={"TOK": "s3cr3t"})
    ref = secret_ref("TOK", "s3cr3t", KEY)
    assert c.spec["healthcheck"]["test"] == ["CMD-SHELL", f"check {ref}"]
    args: dict[str, Any] = create_args(c.spec, {"TOK": "s3cr3t"})
    host = args.pop("host_config")
    assert args["healthcheck"]["test"] == ["CMD-SHELL", "check s3cr3t"]
    assert args["healthcheck"]["start_interval"] == 10**9 and args["healthcheck"]["retries"] == 2
    assert args["environment"] == {"TOKEN": "s3cr3t"}
    assert args["labels"] == {"tier": "front"}
    assert (args["hostname"], args["domainname"], args["user"], args["working_dir"]) == (
        "web", "example.com", "1000:1000", "/x")
    assert (args["tty"], args["stdin_open"], args["stop_signal"], args["stop_timeout"]) == (True, True, "SIGINT", 90)
    assert args["platform"] == "linux/amd64"
    assert host["tmpfs"] == {"/run": "size=1m"}
    assert host["ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert host["extra_hosts"] == ["db:10.0.0.5"]
    assert host["devices"] == ["/dev/null:/dev/nothing:r"]
    assert (host["nano_cpus"], host["pids_limit"]) == (5 * 10**8, 50)
    assert (host["mem_limit"], host["mem_reservation"], host["shm_size"]) == (64 << 20, 32 << 20, 16 << 20)
    assert (host["pid_mode"], host["ipc_mode"], host["init"], host["read_only"], host["privileged"]) == (
        "host", "shareable", True, True, False)
    assert host["log_config"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["device_requests"] == [{"Driver": "nvidia", "Count": 1, "DeviceIDs": [], "Capabilities": [["gpu"]],
                                        "Options": {}}]
    assert host["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["cap_add"], host["cap_drop"], host["security_opt"]) == (["NET_ADMIN"], ["MKNOD"], ["no-new-privileges"])
    assert (host["dns"], host["dns_search"], host["sysctls"]) == (["10.0.0.2"], ["example.com"], {"net.core.somaxconn": "1024"})
    assert host["binds"] == ["/srv/x:/x:ro"] and host["port_bindings"] == {"80/tcp": ("127.0.0.1", 18080)}


def test_demo_spec_hash_is_unchanged_by_the_new_normalisers(tmp_path: Path) -> None:
    """The long forms that existed before keep their hash: no deployed container recreated."""
    from syncer.stages.render import normalise
    from tests.unit.test_labels import FIXED_SPEC, PINNED
    from syncer.core.labels import spec_hash

    assert spec_hash(normalise(FIXED_SPEC)) == PINNED


def test_a_substituted_value_that_is_not_a_port_is_one_clear_error(tmp_path: Path) -> None:
    from syncer.stages.shortforms import SpecError

    write_files(tmp_path, {
        "syncer.yaml": "project: p\npolicy: {bind_mounts: [/srv, /data], devices: true, privileged: true, cap_add: true, host_network: true, host_pid: true, host_ipc: true}\n",
        "templates/app.yaml": 'id: app\nversion: "1.0"\ninputs: {p: string}\n'
                              'spec: {image: i, ports: ["${inputs.p}:80"]}\n',
        "definitions/d.yaml": "name: web\ntemplate: app\nparams: {p: lots}\n",
    })
    with pytest.raises(SpecError, match=r"definitions/d.yaml: definition 'web': ports: cannot read 'lots:80'"):
        render(build_project(DirTree(tmp_path), str(tmp_path)), secrets={}, secret_key=KEY)


def test_labels_keep_secret_references_everything_else_is_revealed() -> None:
    ref = secret_ref("TOK", "s3cr3t", KEY)
    spec = {"image": "i", "labels": {"auth": ref}, "command": ["run", f"--token={ref}"],
            "healthcheck": {"test": ["CMD", "check", ref]}, "extra_hosts": [f"h:{ref}"]}
    args = create_args(spec, {"TOK": "s3cr3t"})
    assert args["labels"] == {"auth": ref}  # read back by observe and the API: never the value
    assert args["command"] == ["run", "--token=s3cr3t"]
    assert args["healthcheck"]["test"] == ["CMD", "check", "s3cr3t"]
    assert args["host_config"]["extra_hosts"] == ["h:s3cr3t"]


def test_a_bind_mount_keeps_its_selinux_label_and_an_option_syncer_cannot_carry_is_refused(tmp_path: Path) -> None:
    c = _render(tmp_path / "a", 'volumes: ["/srv/x:/x:ro,Z", "/data/y:/y:z", "/srv/w:/w"]')
    assert create_args(c.spec, {})["host_config"]["binds"] == ["/srv/x:/x:ro,Z", "/data/y:/y:rw,z", "/srv/w:/w:rw"]
    with pytest.raises(InvalidProject) as info:  # (it was dropped without a word)
        _render(tmp_path / "b", 'volumes: ["/srv/x:/x:ro,nocopy"]')
    assert "volumes[0]" in str(info.value)


@pytest.mark.parametrize("given, size", [
    ("512m", 512 * 1024**2), ("256mb", 256 * 1024**2), ("1GiB", 1024**3), ("1.5g", 1536 * 1024**2), ("100", 100),
    ("64 MB", 64 * 1024**2), (2048, 2048), ("10x", None), ("m", None),
])
def test_a_size_is_read_as_docker_and_compose_read_it(given: Any, size: int | None) -> None:
    from syncer.stages.shortforms import byte_size

    assert byte_size(given) == size


def test_a_memory_limit_in_compose_spelling_validates_and_reaches_docker(tmp_path: Path) -> None:
    c = _render(tmp_path, "resources: {memory: 256mb, memory_reservation: 1GiB, shm_size: 64 m, memory_swap: 512mb}")
    host = create_args(c.spec, {})["host_config"]
    assert (host["mem_limit"], host["mem_reservation"], host["shm_size"], host["memswap_limit"]) == (
        256 * 1024**2, 1024**3, 64 * 1024**2, 512 * 1024**2)
    unlimited = _render(tmp_path / "b", "resources: {memory: 64m, memory_swap: -1}")
    assert create_args(unlimited.spec, {})["host_config"]["memswap_limit"] == -1


def test_a_short_port_is_checked_as_docker_reads_it() -> None:
    """A container port is 1-65535, a host port 0-65535 (0: any free one), a range runs
    upwards; a published range may be wide (a TURN server's), unlike `expose`'s."""
    from syncer.stages.shortforms import SpecError, ports

    assert len(ports(["49152-65535:49152-65535/udp"])) == 16384
    assert ports(["0:80"]) == [{"container_port": 80, "protocol": "tcp", "host_port": 0}]
    assert ports(["[::1]:53:53/udp", "127.0.0.1::80"])[0]["host_ip"] == "::1"
    for bad, why in (("70000:80", "a host port is 0-65535"), ("8080:0", "a container port is 1-65535"),
                     ("9000-8000:80-81", "the range runs backwards"), ("80:90-89", "the range runs backwards")):
        with pytest.raises(SpecError, match=f"ports: '{bad}': {why}"):
            ports([bad])
    with pytest.raises(SpecError, match="ports.container_port: 99999: a container port is 1-65535"):
        ports([{"container_port": "99999"}])


def test_a_binds_propagation_reads_short_or_long_and_reaches_binds_and_the_service_mount() -> None:
    """`/:/rootfs:ro,rslave` (node-exporter's, cAdvisor's) and `{host_path, propagation}` are one
    volume; Docker takes it in the bind's options, Swarm as the mount's BindOptions; a named
    volume has no propagation (an error at the field, not the engine's at apply)."""
    from syncer.stages.shortforms import SpecError, volumes
    from syncer.stages.swarm import _mount

    short, = volumes(["/:/rootfs:ro,rslave"])
    long, = volumes([{"mount_path": "/rootfs", "host_path": "/", "read_only": True, "propagation": "rslave"}])
    assert short == long == {"mount_path": "/rootfs", "host_path": "/", "read_only": True, "propagation": "rslave"}
    assert create_args({"image": "x", "volumes": [short]}, {})["host_config"]["binds"] == ["/:/rootfs:ro,rslave"]
    assert _mount(short)["BindOptions"] == {"Propagation": "rslave"}
    with pytest.raises(SpecError, match="propagation is a host_path bind's"):
        volumes(["data:/data:rshared"])


def test_a_named_volume_made_with_driver_options_is_a_mount_for_docker_and_swarm_alike() -> None:
    """`{name, driver, driver_opts}` (Compose's volumes.<name>.driver_opts: an NFS share, a
    tmpfs) is an Engine API Mount with VolumeOptions.DriverConfig — the engine, or each Swarm
    node, makes the volume with them; its options are strings; without a name it is an error,
    and the local driver's `o: bind` is a bind mount the policy judges like any other."""
    from syncer.stages.policy import bind_source
    from syncer.stages.shortforms import SpecError, volumes
    from syncer.stages.swarm import _mount

    nfs, = volumes([{"name": "shop_nfs", "mount_path": "/nfs", "read_only": True, "driver": "local",
                     "driver_opts": {"type": "nfs", "o": "addr=10.0.0.5", "device": ":/export", "port": 2049}}])
    mount = {"Type": "volume", "Source": "shop_nfs", "Target": "/nfs", "ReadOnly": True, "VolumeOptions": {
        "DriverConfig": {"Name": "local", "Options": {"type": "nfs", "o": "addr=10.0.0.5", "device": ":/export",
                                                      "port": "2049"}}}}
    args = create_args({"image": "x", "volumes": [nfs, {"name": "plain", "mount_path": "/p"}]}, {})
    assert args["host_config"]["mounts"] == [mount] and args["host_config"]["binds"] == ["plain:/p:rw"]
    assert args["volumes"] == ["/p"]  # (a Mount declares its own target)
    assert _mount(nfs) == mount
    for made in ({"driver_opts": {"type": "tmpfs"}}, {"labels": {"backup": "yes"}}):
        with pytest.raises(SpecError, match="driver, driver_opts and labels are a named volume's"):
            volumes([{"mount_path": "/x", **made}])
    # labels too (Compose's volumes.<name>.labels), as strings: the volume is made with them
    tagged, = volumes([{"name": "shop_db", "mount_path": "/db", "labels": {"backup": True, "tier": 1}}])
    assert _mount(tagged) == create_args({"image": "x", "volumes": [tagged]}, {})["host_config"]["mounts"][0] == {
        "Type": "volume", "Source": "shop_db", "Target": "/db", "ReadOnly": False, "VolumeOptions": {
            "DriverConfig": {"Name": "local"}, "Labels": {"backup": "true", "tier": "1"}}}
    assert bind_source({"name": "v", "mount_path": "/v", "driver_opts": {"type": "none", "o": "rbind,ro",
                                                                          "device": "/etc"}}) == ("driver_opts", "/etc")
    assert bind_source(nfs) is None
