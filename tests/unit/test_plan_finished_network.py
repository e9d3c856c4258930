"""A container that ran to its end (exit 0 under `restart: "no"` or `on-failure`: finished, left
exited) on a network removed by hand since, or removed and made again: it could never start on
it (`instances start` failed with "run syncer apply", and the apply planned a noop). It is made
again on its spec's networks and left stopped — a one-shot that completed does not run again
because a network went — and the container made in its place stays so until started through
syncer. A job keeps its own rule: completed once per spec, never run again for a network."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, Desired, LiveContainer, LiveNetwork, Observed, ServerState
from syncer.stages import outside, planfile
from syncer.stages.plan import plan

NETS = {"p": {"aliases": ["once"]}, "p_front": {"aliases": ["once"]}}
ON_BOTH = {"p": "net-p", "p_front": "net-front"}  # the endpoints' network ids, as the container list has them


def spec(**extra: Any) -> dict[str, Any]:
    return {"image": "busybox:latest", "restart": "no", "networks": NETS, **extra}


def want(s: dict[str, Any]) -> ContainerSpec:
    return ContainerSpec("p", "local", "once", 1, "once", "box@1", s, L.spec_hash(s))


def live(s: dict[str, Any], *, name: str = "once", state: str = "exited", status: str = "Exited (0) 1 minute ago",
         ids: dict[str, str] = ON_BOTH) -> LiveContainer:
    lab = L.container_labels(project="p", definition="once", replica=1, revision=1, spec_hash_=L.spec_hash(s),
                             template_ref="box@1", commit=None, spec=s)
    return LiveContainer(f"id-{name}", name, "local", state, None, lab, status=status, networks=tuple(sorted(ids)),
                         network_ids=ids)


def network(name: str, ident: str) -> LiveNetwork:
    return LiveNetwork(ident, name, {L.PROJECT: "p"})


ONLY_FRONT = (network("p_front", "net-front"),)  # `p` removed by hand
REMADE = (network("p", "net-p-again"), network("p_front", "net-front"))  # `p` removed and made again
SAME = (network("p", "net-p"), network("p_front", "net-front"))


def plan_of(s: dict[str, Any], c: LiveContainer, nets: tuple[LiveNetwork, ...], **kw: Any) -> Action:
    observed = Observed("p", {"local": ServerState("local", True, managed=(c,), networks=nets)})
    p = plan(Desired("p", (want(s),), ("once",)), observed, prune=True, created_at="t", **kw)
    return next(a for a in p.actions if a.container == "once")


def test_a_finished_container_on_a_removed_network_is_made_again_left_stopped() -> None:
    for restart in ("no", "on-failure", "on-failure:3"):
        s, c = spec(restart=restart), live(spec(restart=restart))
        for nets in (ONLY_FRONT, REMADE):
            a = plan_of(s, c, nets, finished={"once": c.id})
            assert (a.action, a.container_id, a.stay_stopped) == ("recreate", "id-once", True), (restart, nets)
            assert a.cause == ("not connected to network p (changed outside syncer): made again on its spec's"
                               " networks" + outside.LEFT_FINISHED)
            assert [(r.field, r.before, r.after) for r in a.reasons] == [("networks", ["p_front"], ["p", "p_front"])]


def test_the_plan_file_keeps_it_left_stopped() -> None:
    c = live(spec())
    observed = Observed("p", {"local": ServerState("local", True, managed=(c,), networks=ONLY_FRONT)})
    p = plan(Desired("p", (want(spec()),), ("once",)), observed, prune=True, created_at="t", finished={"once": c.id})
    assert [a.stay_stopped for a in planfile.from_dict(planfile.to_dict(p)).actions if a.container == "once"] == [True]


def test_the_container_made_in_its_place_is_left_unstarted_until_started_through_syncer() -> None:
    made = replace(live(spec(), state="created", status="Created", ids={"p": "", "p_front": ""}), id="id-new")
    a = plan_of(spec(), made, SAME, finished={"once": "id-new"})  # (the apply carried the mark over)
    assert (a.action, a.cause) == ("noop", ("made again for a network removed since, after it ran to completion"
                                            " (exit 0), and never started (start it through syncer to run it again)"))
    assert plan_of(spec(), made, SAME).action == "start"  # one made and not started for another cause: started
    # its network removed again before anyone started it: made again, still left stopped
    again = replace(made, network_ids=ON_BOTH)
    b = plan_of(spec(), again, ONLY_FRONT, finished={"once": "id-new"})
    assert (b.action, b.stay_stopped) == ("recreate", True) and b.cause.endswith(outside.LEFT_FINISHED)


def test_on_its_networks_or_only_disconnected_a_finished_container_is_left_as_it_is() -> None:
    c = live(spec())
    assert plan_of(spec(), c, SAME, finished={"once": c.id}).action == "noop"
    off = live(spec(), ids={"p_front": "net-front"})  # `docker network disconnect p once`: it can still start
    assert plan_of(spec(), off, SAME, finished={"once": off.id}).action == "noop"


def test_one_not_seen_finishing_is_started_as_before_and_a_held_one_keeps_its_cause() -> None:
    c = live(spec(), status="Exited (0) 1 minute ago")
    a = plan_of(spec(), c, ONLY_FRONT)  # (stopped by someone: not finished, to be started: made again and started)
    assert (a.action, a.stay_stopped) == ("recreate", False)
    held = plan_of(spec(), c, ONLY_FRONT, finished={"once": c.id}, held=frozenset({"once"}))
    assert (held.action, held.stay_stopped) == ("recreate", True) and held.cause.endswith(outside.LEFT_STOPPED)


def test_a_finished_container_renamed_by_hand_is_made_again_under_its_name_left_stopped() -> None:
    c = live(spec(), name="once-old")
    a = plan_of(spec(), c, SAME, finished={"once": c.id})  # (a rename keeps the id the mark names)
    assert (a.action, a.container_id, a.stay_stopped) == ("recreate", "id-once-old", True)
    assert a.cause == "renamed to once-old outside syncer: made again as once" + outside.LEFT_FINISHED + \
        " (the renamed container goes)"
    changed = plan_of(spec(command=["true"]), c, SAME, finished={"once": c.id})  # a new spec runs, as any recreate
    assert (changed.action, changed.stay_stopped) == ("recreate", False)


def test_a_completed_job_is_not_run_again_for_a_removed_network() -> None:
    job = spec(kind="job")
    done = live(job)
    for marks in ({}, {"once": done.id}):
        for nets in (ONLY_FRONT, REMADE):
            a = plan_of(job, done, nets, finished=marks)
            assert (a.action, a.cause) == ("noop", "job completed (exit 0)"), nets
