"""`internal: true` on a network of syncer.yaml (Compose's meaning: no route out of the host),
on data: validation, and the plan's `network create` / `conflict` on the project's networks.
On the real engine: tests/integration/test_internal_networks.py."""

from __future__ import annotations

import pytest

from syncer.cli.views import plan_text
from syncer.core import labels as L
from syncer.core.errors import InvalidProject
from syncer.core.model import (
    Action,
    ContainerSpec,
    Desired,
    LiveNetwork,
    Observed,
    Reason,
    ServerState,
)
from syncer.stages import networks
from syncer.stages.plan import plan
from syncer.stages.planfile import to_dict
from syncer.stages.validate import build_project
from tests.unit.test_validate import MemTree, repo

TEMPLATE = "id: box\nversion: '1'\nspec: {image: busybox}\n"


def _build(syncer_yaml: str) -> MemTree:
    return repo({"syncer.yaml": syncer_yaml, "templates/box.yaml": TEMPLATE,
                 "definitions/d.yaml": "name: dd\ntemplate: box\n"})


def _diagnostics(syncer_yaml: str) -> list[str]:
    with pytest.raises(InvalidProject) as info:
        build_project(_build(syncer_yaml), "/repo")
    return info.value.lines()


def test_the_networks_made_internal_are_carried_beside_the_declared_ones() -> None:
    project = build_project(_build("""
        project: p
        networks:
          front: {}
          back: {internal: true}
          open: {internal: false}
          edge: {external: true}
          plain:
        """), "/repo")
    assert project.config.internal_networks == ("back",)
    assert project.config.networks == {"front": False, "back": False, "open": False, "edge": True, "plain": False}


def test_internal_on_an_external_network_is_a_located_error() -> None:
    message = ("`internal` is for a network syncer makes; an external one is never created or changed by syncer"
               " (drop `internal`, or `external: true`)")
    assert _diagnostics("""
        project: p
        networks:
          back: {internal: true}
          edge: {external: true, internal: true}
          proxy:
            internal: false
            external: true
        """) == [f"syncer.yaml:4:26: networks.edge: {message}", f"syncer.yaml:6:5: networks.proxy: {message}"]


def test_internal_is_a_boolean() -> None:
    assert _diagnostics("project: p\nnetworks:\n  back: {internal: 'yes'}\n") == [
        "syncer.yaml:3:20: networks.back.internal: expected boolean, got string"]


# --- the plan ------------------------------------------------------------------------------

SPEC = {"image": "busybox", "networks": {"p": {"aliases": ["web"]}, "p_back": {"aliases": ["web"]}}}
DEFAULT = LiveNetwork("n1", "p", {L.PROJECT: "p", L.NETWORK: "default"})


def _observed(*nets: LiveNetwork) -> Observed:
    return Observed("p", {"local": ServerState("local", True, networks=(DEFAULT, *nets))})


def _back(*, internal: bool) -> LiveNetwork:
    return LiveNetwork("n2", "p_back", {L.PROJECT: "p", L.NETWORK: "back"}, internal)


def _actions(observed: Observed, internal: tuple[str, ...]) -> list[Action]:
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", SPEC, L.spec_hash(SPEC)),), ("web",))
    return networks.actions(desired, observed, declared={"back": False}, prune=True, internal=internal)


def test_an_absent_network_is_created_saying_it_is_internal() -> None:
    [a] = _actions(_observed(), ("back",))
    assert (a.action, a.container, a.cause) == ("network create", "p_back",
                                                "network absent (internal: no route out of the host)")
    [a] = _actions(_observed(), ())
    assert (a.action, a.container, a.cause) == ("network create", "p_back", "network absent")


def test_a_network_as_syncer_yaml_says_is_left_alone() -> None:
    assert _actions(_observed(_back(internal=True)), ("back",)) == []
    assert _actions(_observed(_back(internal=False)), ()) == []


@pytest.mark.parametrize(("live", "wanted", "words"), [
    (False, ("back",), "the network is not internal but syncer.yaml makes it internal"),
    (True, (), "the network is internal but syncer.yaml makes it not internal"),
])
def test_a_network_made_with_another_internal_flag_is_a_conflict(live: bool, wanted: tuple[str, ...],
                                                                 words: str) -> None:
    [a] = _actions(_observed(_back(internal=live)), wanted)
    assert (a.action, a.server, a.definition, a.container, a.container_id) == ("conflict", "local", "", "p_back", "n2")
    assert a.reasons == (Reason("internal", live, not live),)
    assert a.cause.startswith(words + ": Docker cannot change that in place.")
    assert "`docker network rm p_back`" in a.cause and "then apply again" in a.cause


def test_an_external_network_and_one_no_container_joins_are_not_judged() -> None:
    spec = {"image": "busybox", "networks": {"p": {"aliases": ["web"]}, "edge": {"aliases": ["web"]}}}
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", spec, L.spec_hash(spec)),), ("web",))
    edge = LiveNetwork("n3", "edge", {}, True)
    assert networks.actions(desired, _observed(edge), declared={"edge": True}, prune=True, internal=()) == []
    # no longer joined: removed with prune, whatever its flag
    [a] = networks.actions(desired, _observed(edge, _back(internal=True)), declared={"edge": True, "back": False},
                           prune=True)
    assert (a.action, a.container) == ("network remove", "p_back")


def test_the_plan_shows_the_conflict_on_the_networks_line_and_counts_it() -> None:
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", SPEC, L.spec_hash(SPEC)),), ("web",))
    p = plan(desired, _observed(_back(internal=False)), prune=True, created_at="t", declared={"back": False},
             internal=("back",))
    assert p.has_changes and p.summary()["conflict"] == 1
    text = plan_text(p)
    assert "  ! network conflict p_back  the network is not internal but syncer.yaml makes it internal: " in text
    assert "1 conflict(s): resolve them by hand; syncer will not touch those networks." in text
    [conflict] = [a for a in to_dict(p)["actions"] if a["action"] == "conflict"]
    assert conflict["container"] == "p_back" and conflict["definition"] == ""
    assert conflict["reasons"] == [{"field": "internal", "before": False, "after": True}]


def test_default_internal_makes_the_project_network_internal() -> None:
    """Compose's `networks: {default: {internal: true}}`: the network every container joins."""
    spec = {"image": "busybox", "networks": {"p": {"aliases": ["web"]}}}
    desired = Desired("p", (ContainerSpec("p", "local", "web", 1, "web", "box@1", spec, L.spec_hash(spec)),), ("web",))
    empty = Observed("p", {"local": ServerState("local", True)})
    [a] = networks.actions(desired, empty, declared={"default": False}, prune=True, internal=("default",))
    assert (a.action, a.container, a.cause) == ("network create", "p", "network absent (internal: no route out of the host)")
    [a] = networks.actions(desired, _observed(), declared={"default": False}, prune=True, internal=("default",))
    assert (a.action, a.container, a.reasons) == ("conflict", "p", (Reason("internal", False, True),))


@pytest.mark.parametrize("given, joined", [
    (["back"], ["p_back"]),  # internal networks only: no route out, as a Compose service on them
    (["back", "default"], ["p", "p_back"]),  # the project network asked for: kept
    (["back", "front"], ["p", "p_back", "p_front"]),  # a network with a route out: the project network too
    ([], ["p"]),
])
def test_a_container_on_internal_networks_only_is_left_off_the_project_network(given: list[str],
                                                                              joined: list[str]) -> None:
    spec = networks.normalise({"image": "busybox", "networks": given}, project="p", definition="web",
                              declared={"back": False, "front": False}, internal=("back",))
    assert sorted(spec["networks"]) == joined
    assert all(v["aliases"] == ["web"] for v in spec["networks"].values())


@pytest.mark.parametrize("given, joined", [
    (["front"], ["p_front"]),  # as a Compose service that lists networks but not `default`
    (["default", "front"], ["p", "p_front"]),  # `default` listed: the project network is a listed one
])
def test_project_network_false_leaves_a_container_on_the_networks_it_lists_only(given: list[str],
                                                                               joined: list[str]) -> None:
    spec = networks.normalise({"image": "busybox", "networks": given, "project_network": False}, project="p",
                              definition="web", declared={"front": False})
    assert sorted(spec["networks"]) == joined


def test_project_network_false_on_no_network_is_an_error_at_the_definition() -> None:
    from syncer.stages.render import render
    from syncer.stages.shortforms import SpecError

    project = build_project(repo({"syncer.yaml": "project: p\n", "templates/box.yaml": TEMPLATE,
                                  "definitions/d.yaml": "name: dd\ntemplate: box\noverrides: {project_network: false}\n"}),
                            "/repo")
    with pytest.raises(SpecError) as info:
        render(project, secrets={}, secret_key=b"k")
    assert str(info.value) == ("definitions/d.yaml: definition 'dd': project_network: false leaves it on no network:"
                               " list its `networks` (or set `network_mode`)")
