"""`ipam` on a network of syncer.yaml (Compose's: its address pools, which a container's
`ipv4_address` needs), on data: validation, the plan's `network create` carrying the pools and
its `conflict` for a network of other subnets, and the import of Compose's `ipam`. On the real
engine: tests/integration/test_network_ipam.py."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, Desired, LiveNetwork, Observed, ServerState
from syncer.stages import networks
from syncer.stages.compose import import_compose
from syncer.stages.plan import plan
from syncer.stages.planfile import to_dict
from syncer.stages.validate import build_project
from tests.unit.test_internal_networks import _build, _diagnostics

POOL = {"subnet": "172.28.0.0/16", "gateway": "172.28.0.1", "ip_range": "172.28.5.0/24"}


def test_the_pools_of_a_network_are_read_from_syncer_yaml() -> None:
    project = build_project(_build("""
        project: p
        networks:
          dns: {ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1, ip_range: 172.28.5.0/24}]}}
          plain: {}
          edge: {external: true}
        """), "/repo")
    assert networks.pools_of(project.config.raw.get("networks")) == {"dns": (POOL,)}


@pytest.mark.parametrize(("networks_yaml", "want"), [
    ("edge: {external: true, ipam: {config: [{subnet: 10.0.0.0/8}]}}",
     "syncer.yaml:3:26: networks.edge: `ipam` is for a network syncer makes; an external one is never created"
     " or changed by syncer (drop `ipam`, or `external: true`)"),
    ("dns: {ipam: {config: [{gateway: 10.0.0.1}]}}",
     "syncer.yaml:3:25: missing required field 'networks.dns.ipam.config[0].subnet'"),
    ("dns: {ipam: {config: [{subnet: 'ten/8'}]}}", "syncer.yaml:3:34: networks.dns.ipam.config[0].subnet: \"ten/8\""),
    ("dns: {ipam: {driver: x, config: [{subnet: 10.0.0.0/8}]}}",
     "syncer.yaml:3:16: unknown field 'networks.dns.ipam.driver'"),
])
def test_what_syncer_cannot_make_is_a_located_error(networks_yaml: str, want: str) -> None:
    [line] = _diagnostics(f"project: p\nnetworks:\n  {networks_yaml}\n")
    assert line.startswith(want), line


SPEC = {"image": "busybox", "networks": {"p": {"aliases": ["web"]}, "p_dns": {"aliases": ["web"]}}}
DEFAULT = LiveNetwork("n1", "p", {L.PROJECT: "p", L.NETWORK: "default"})


def _observed(*nets: LiveNetwork, kind: str = "docker") -> Observed:
    return Observed("p", {"local": ServerState("local", True, networks=(DEFAULT, *nets), kind=kind)})


def _dns(*subnets: str) -> LiveNetwork:
    return LiveNetwork("n2", "p_dns", {L.PROJECT: "p", L.NETWORK: "dns"}, False, subnets)


def _actions(observed: Observed) -> list[Action]:
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", SPEC, L.spec_hash(SPEC)),), ("web",))
    return networks.actions(desired, observed, declared={"dns": False}, prune=True, ipam={"dns": (POOL,)})


def test_an_absent_network_is_created_with_its_pools_which_the_action_carries() -> None:
    [a] = _actions(_observed())
    assert (a.action, a.container, a.cause) == ("network create", "p_dns", "network absent (subnet 172.28.0.0/16)")
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("ipam", None, [POOL])]


def test_a_network_of_other_subnets_is_a_conflict_and_one_of_these_is_left_alone() -> None:
    assert _actions(_observed(_dns("172.28.0.0/16"))) == []
    [a] = _actions(_observed(_dns("172.18.0.0/16")))
    assert (a.action, a.container, a.container_id) == ("conflict", "p_dns", "n2")
    assert a.cause.startswith("the network's subnets are 172.18.0.0/16 but syncer.yaml gives it 172.28.0.0/16:"
                              " Docker cannot change that in place.")
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", SPEC, L.spec_hash(SPEC)),), ("web",))
    p = plan(desired, _observed(_dns("172.18.0.0/16")), prune=True, created_at="t", declared={"dns": False},
             ipam={"dns": (POOL,)})
    assert [a["action"] for a in to_dict(p)["actions"] if a["container"] == "p_dns"] == ["conflict"]


def test_on_a_swarm_server_an_overlay_takes_swarms_pools() -> None:
    [a] = _actions(_observed(kind="swarm"))
    assert (a.action, a.cause, a.reasons) == ("network create", "network absent", ())
    assert _actions(_observed(_dns("10.0.1.0/24"), kind="swarm")) == []


def test_the_import_carries_compose_ipam_and_a_fixed_address() -> None:
    text = b"""
services:
  pihole:
    image: pihole/pihole
    networks:
      dns: {ipv4_address: 172.28.0.10}
networks:
  dns:
    ipam:
      driver: default
      config:
        - {subnet: 172.28.0.0/16, gateway: 172.28.0.1, aux_addresses: {host: 172.28.1.5}}
      options: {foo: bar}
"""
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")
    assert sorted(str(p) for p in got.problems) == [
        "compose.yaml:12:56: networks: dns: ipam.config.aux_addresses: not carried (a pool is its subnet, gateway"
        " and ip_range)",
        "compose.yaml:13:7: networks: dns: ipam.options: not carried (syncer carries the pools of config:)"]
    syncer_yaml = YAML(typ="safe").load(str(got.files["syncer.yaml"]))
    assert syncer_yaml["networks"] == {"dns": {"ipam": {"config": [{"subnet": "172.28.0.0/16",
                                                                    "gateway": "172.28.0.1"}]}}}
    assert YAML(typ="safe").load(str(got.files["templates/pihole.yaml"]))["spec"]["networks"] == {
        "dns": {"ipv4_address": "172.28.0.10"}}
