"""What someone changes by hand that the spec hash does not show (QA F2, F3, F9): a container
taken off its networks, a container renamed, and a state dir restored from an older copy."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from syncer.core import labels as L
from syncer.core.model import ContainerSpec, Desired, LiveContainer, LiveNetwork, Observed, ServerState
from syncer.stages import outside, selfheal
from syncer.stages.plan import definition_hash, plan

NETS = {"p": {"aliases": ["web"]}, "p_front": {"aliases": ["web"]}}


def spec(**extra: Any) -> dict[str, Any]:
    return {"image": "busybox:latest", "networks": NETS, **extra}


def want(s: dict[str, Any], *, name: str = "web", replica: int = 1) -> ContainerSpec:
    return ContainerSpec("p", "local", "web", replica, name, "box@1", s, L.spec_hash(s))


def live(s: dict[str, Any], *, name: str = "web", networks: tuple[str, ...] = ("p", "p_front"),
         state: str = "running", replica: int = 1, revision: int = 1, created: int = 1,
         ids: dict[str, str] | None = None) -> LiveContainer:
    lab = L.container_labels(project="p", definition="web", replica=replica, revision=revision,
                             spec_hash_=L.spec_hash(s), template_ref="box@1", commit=None, spec=s)
    return LiveContainer(f"id-{name}", name, "local", state, None, lab, created=created, networks=networks,
                         network_ids=ids or {})


def plan_of(desired: list[ContainerSpec], managed: list[LiveContainer], *, nets: tuple[LiveNetwork, ...] = (),
            **kw: Any) -> dict[str, Any]:
    observed = Observed("p", {"local": ServerState("local", True, managed=tuple(managed), networks=nets)})
    p = plan(Desired("p", tuple(desired), ("web",)), observed, prune=True, created_at="t", **kw)
    return {a.container: a for a in p.actions if not a.action.startswith("network")}


# --- F2: networks ---------------------------------------------------------------------------


def test_a_container_taken_off_a_network_of_its_spec_is_recreated_with_the_network_named() -> None:
    for networks in (("p_front",), ("bridge", "p_front")):  # off the project network; on bridge instead
        a = plan_of([want(spec())], [live(spec(), networks=networks)])["web"]
        assert (a.action, a.container_id) == ("recreate", "id-web"), networks
        assert a.cause.startswith("not connected to network p ") and "outside syncer" in a.cause, a.cause
        assert [(r.field, r.before, r.after) for r in a.reasons] == [("networks", list(networks), ["p", "p_front"])]
    both = plan_of([want(spec())], [live(spec(), networks=())])["web"]
    assert both.cause.startswith("not connected to networks p, p_front ")


def test_a_stopped_container_off_its_network_is_recreated_not_started() -> None:
    a = plan_of([want(spec())], [live(spec(), networks=("p",), state="exited")])["web"]
    assert a.action == "recreate" and "p_front" in a.cause


def test_a_network_added_by_hand_is_no_drift_as_under_compose() -> None:
    a = plan_of([want(spec())], [live(spec(), networks=("bridge", "p", "p_front"))])["web"]
    assert (a.action, a.cause) == ("noop", "in sync")


def test_network_mode_and_an_operators_hold_are_left_as_they_are() -> None:
    shared = {"image": "busybox:latest", "network_mode": "host"}  # (render drops `networks` there)
    assert plan_of([want(shared)], [live(shared, networks=("host",))])["web"].action == "noop"
    none = {"image": "busybox:latest", "network_mode": "container:db"}
    assert plan_of([want(none)], [live(none, networks=())])["web"].action == "noop"
    held = plan_of([want(spec())], [live(spec(), networks=(), state="exited")], held=frozenset({"web"}))["web"]
    assert held.action == "noop" and held.cause.startswith("held stopped")


def test_the_fingerprint_moves_when_a_container_leaves_a_network() -> None:
    def fp(networks: tuple[str, ...]) -> str:
        observed = Observed("p", {"local": ServerState("local", True, managed=(live(spec(), networks=networks),))})
        return plan(Desired("p", (want(spec()),), ("web",)), observed, prune=True, created_at="t").fingerprint

    assert fp(("p", "p_front")) != fp(("p",))


def network(name: str, ident: str) -> LiveNetwork:
    return LiveNetwork(ident, name, {L.PROJECT: "p"})


ON_BOTH = {"p": "net-p", "p_front": "net-front"}  # the endpoints' network ids, as the container list has them


def test_a_stopped_container_whose_network_was_removed_and_made_again_is_recreated_not_started() -> None:
    # QA s6b: it keeps its endpoint on the removed network (by name: `p`); starting it fails for ever
    remade = (network("p", "net-p-again"), network("p_front", "net-front"))
    a = plan_of([want(spec())], [live(spec(), state="exited", ids=ON_BOTH)], nets=remade)["web"]
    assert (a.action, a.container_id, a.stay_stopped) == ("recreate", "id-web", False)
    assert a.cause == "not connected to network p (changed outside syncer): made again on its spec's networks"
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("networks", ["p_front"], ["p", "p_front"])]
    gone = plan_of([want(spec())], [live(spec(), state="exited", ids=ON_BOTH)], nets=remade[1:])["web"]
    assert gone.action == "recreate" and gone.cause.startswith("not connected to network p ")  # (not made again yet)
    same = (network("p", "net-p"), network("p_front", "net-front"))
    assert plan_of([want(spec())], [live(spec(), state="exited", ids=ON_BOTH)], nets=same)["web"].action == "start"


def test_a_held_stopped_container_whose_network_is_gone_is_made_again_left_stopped() -> None:
    exited = live(spec(), state="exited", ids=ON_BOTH)
    a = plan_of([want(spec())], [exited], nets=(network("p_front", "net-front"),), held=frozenset({"web"}))["web"]
    assert (a.action, a.stay_stopped) == ("recreate", True)
    assert a.cause == ("not connected to network p (changed outside syncer): made again on its spec's networks,"
                       " left stopped: held stopped by an operator")
    # a network added by hand and removed since: it cannot start on it either
    extra = live(spec(), state="exited", networks=("dbg", "p", "p_front"), ids={**ON_BOTH, "dbg": "net-dbg"})
    nets = (network("p", "net-p"), network("p_front", "net-front"))
    b = plan_of([want(spec())], [extra], nets=nets, held=frozenset({"web"}))["web"]
    assert (b.action, b.stay_stopped) == ("recreate", True) and b.cause.startswith("not connected to network dbg ")


def test_a_held_or_finished_container_on_its_networks_or_only_disconnected_is_left_as_it_is() -> None:
    nets = (network("p", "net-p"), network("p_front", "net-front"))
    held = frozenset({"web"})
    on = plan_of([want(spec())], [live(spec(), state="exited", ids=ON_BOTH)], nets=nets, held=held)["web"]
    off = plan_of([want(spec())], [live(spec(), state="exited", networks=("p",), ids={"p": "net-p"})], nets=nets,
                  held=held)["web"]
    assert (on.action, off.action) == ("noop", "noop") and off.cause.startswith("held stopped")
    # one made and never started has no endpoint yet ("" network id): on its networks by name
    made = live(spec(), state="created", ids={"p": "", "p_front": ""})
    assert plan_of([want(spec())], [made], nets=nets, held=held)["web"].action == "noop"
    ended = replace(live(spec(), state="exited", ids=ON_BOTH), status="Exited (0) 1 minute ago")  # on its own
    finished = {"web": ended.id}
    assert plan_of([want(spec())], [ended], nets=nets, finished=finished)["web"].action == "noop"
    # (on a network removed since, it is made again left stopped: tests/unit/test_plan_finished_network.py)


def test_starting_a_container_whose_network_is_gone_says_what_to_do_in_one_line() -> None:
    c = live(spec(), name="web", state="exited", ids=ON_BOTH)
    nets = [network("p", "net-p-again")]
    assert outside.start_blocked(c, nets) == ("web is attached to networks p, p_front, which were removed since it"
                                              " stopped: run `syncer apply` to make it again on its spec's networks")
    assert outside.start_blocked(c, [network("p", "net-p"), network("p_front", "net-front")]) == ""


# --- F3: a container renamed by hand ----------------------------------------------------------


def test_a_renamed_container_is_its_replicas_and_is_made_again_under_its_name_in_one_recreate() -> None:
    s = spec(ports=[{"container_port": 80, "host_port": 8080}])
    actions = plan_of([want(s)], [live(s, name="web-old")])
    assert set(actions) == {"web"}, actions  # no create beside it, no remove after it: the recreate does both
    a = actions["web"]
    assert (a.action, a.container_id, a.replica) == ("recreate", "id-web-old", 1)
    assert a.cause == "renamed to web-old outside syncer: made again as web (the renamed container goes)"
    assert [(r.field, r.before, r.after) for r in a.reasons] == [("name", "web-old", "web")]


def test_a_renamed_container_of_an_older_spec_carries_its_changes_too() -> None:
    a = plan_of([want(spec(env={"A": "2"}))], [live(spec(env={"A": "1"}), name="web-old")])["web"]
    assert a.action == "recreate"
    assert [r.field for r in a.reasons] == ["name", "env.A"]


def test_a_second_container_of_a_replica_is_removed_as_renamed_not_as_beyond_replicas() -> None:
    actions = plan_of([want(spec())], [live(spec()), live(spec(), name="web-old")])
    assert actions["web"].action == "noop"
    gone = actions["web-old"]
    assert (gone.action, gone.container_id) == ("remove", "id-web-old")
    assert gone.cause == "replica 1 renamed to web-old outside syncer (web is that replica now)"
    # a replica truly beyond replicas keeps its cause
    extra = plan_of([want(spec())], [live(spec()), live(spec(), name="web-3", replica=3)])["web-3"]
    assert extra.cause == "replica 3 is beyond replicas=1"


def test_of_two_renamed_the_running_one_is_made_again_and_the_other_removed() -> None:
    actions = plan_of([want(spec())], [live(spec(), name="web-a", state="exited", created=5),
                                       live(spec(), name="web-b", created=1)])
    assert (actions["web"].action, actions["web"].container_id) == ("recreate", "id-web-b")
    assert actions["web-a"].action == "remove" and "renamed" in actions["web-a"].cause


def test_a_renamed_job_container_is_not_taken_for_its_run() -> None:
    s = {"image": "busybox:latest", "command": ["true"], "kind": "job"}
    actions = plan_of([want(s)], [live(s, name="web-old", state="exited")])
    assert actions["web"].action == "run" and actions["web-old"].action == "remove"


def test_a_name_held_by_someone_else_leaves_the_renamed_container_alone_to_be_judged_as_before() -> None:
    observed = Observed("p", {"local": ServerState("local", True, managed=(live(spec(), name="web-old"),),
                                                   name_holders=(LiveContainer("x", "web", "local", "running",
                                                                               None, {}),))})
    p = plan(Desired("p", (want(spec()),), ("web",)), observed, prune=True, created_at="t")
    kinds = {a.container: a.action for a in p.actions if not a.action.startswith("network")}
    assert kinds == {"web": "conflict", "web-old": "remove"}


# --- F9: revisions above the labels -----------------------------------------------------------


def test_a_new_revision_goes_above_the_labels_when_the_store_is_behind_them() -> None:
    old, running, new = spec(env={"V": "1"}), spec(env={"V": "2"}), spec(env={"V": "3"})
    store = {"web": (1, definition_hash([want(old)]))}  # a state dir restored from before rev 2
    a = plan_of([want(new)], [live(running, revision=2)], known=store)["web"]
    assert (a.action, a.revision) == ("recreate", 3)
    # the store ahead of the labels, or the spec the store knows: as before
    assert plan_of([want(new)], [live(running, revision=2)], known={"web": (5, "other")})["web"].revision == 6
    assert plan_of([want(old)], [live(running, revision=2)], known=store)["web"].revision == 1


def test_what_already_runs_the_wanted_spec_keeps_its_labels_revision_when_the_store_is_behind() -> None:
    """QA: a state dir restored from before revisions 3 and 4; the containers run git's spec at
    rev 4: the plan said `noop rev 5` and status `REV 5 active`, a number history never recorded
    (and the next rollback gave 5 to another spec)."""
    old, running = spec(env={"V": "1"}), spec(env={"V": "2"})
    store = {"web": (2, definition_hash([want(old)]))}
    a = plan_of([want(running)], [live(running, revision=4)], known=store)["web"]
    assert (a.action, a.revision) == ("noop", 4)


# --- the watch's events ---------------------------------------------------------------------


def _event(kind: str, action: str, ident: str, **attrs: str) -> dict[str, Any]:
    return {"Type": kind, "Action": action, "Actor": {"ID": ident, "Attributes": attrs}}


def test_a_rename_by_hand_is_drift_and_syncers_own_rename_is_not() -> None:
    labels = {"syncer.definition": "web", "syncer.project": "p"}
    v = selfheal.read_event(_event("container", "rename", "c1", name="web-old", oldName="/web", **labels), own=set())
    assert (v.what, v.definition, v.expect) == ("drift", "web", None)
    assert v.why == "renamed outside syncer (it was web)"
    mine = _event("container", "rename", "c2", name="web", oldName=f"/web{L.TEMP_SUFFIX}", **labels)
    assert selfheal.read_event(mine, own=set()).what == "ignore"


def test_a_network_disconnect_names_the_container_and_the_network_and_syncers_own_are_not_faults() -> None:
    off = _event("network", "disconnect", "net1", container="c1", name="p", type="bridge")
    v = selfheal.read_event(off, own=set())
    assert (v.what, v.container_id, v.name) == ("detached", "c1", "p")
    assert selfheal.read_event(off, own={"c1"}).what == "ignore"
    for action in ("connect", "create"):  # (a network removed: tests/unit/test_network_bursts.py)
        assert selfheal.read_event(replace_action(off, action), own=set()).what == "ignore"


def replace_action(event: dict[str, Any], action: str) -> dict[str, Any]:
    return {**event, "Action": action}


def test_a_held_stopped_container_renamed_by_hand_is_made_again_left_stopped() -> None:
    held = frozenset({"web"})
    a = plan_of([want(spec())], [live(spec(), name="web-old", state="exited")], held=held)["web"]
    assert (a.action, a.container_id, a.stay_stopped) == ("recreate", "id-web-old", True)
    assert a.cause == ("renamed to web-old outside syncer: made again as web, left stopped: held stopped by an"
                       " operator (the renamed container goes)")
    from syncer.stages import planfile
    old = live(spec(), name="web-old", state="exited")
    observed = Observed("p", {"local": ServerState("local", True, managed=(old,))})
    p = plan(Desired("p", (want(spec()),), ("web",)), observed, prune=True, created_at="t", held=held)
    assert [x.stay_stopped for x in planfile.from_dict(planfile.to_dict(p)).actions if x.container == "web"] == [True]
    # started by hand meanwhile (`docker start`): no longer held in fact, made again running
    running = plan_of([want(spec())], [live(spec(), name="web-old")], held=held)["web"]
    assert (running.action, running.stay_stopped) == ("recreate", False)
