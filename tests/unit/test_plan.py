"""Plan on data: every action, revisions, reasons, and the golden text form."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from syncer.core import labels as L
from syncer.core.model import ContainerSpec, Desired, LiveContainer, Observed, ServerState
from syncer.stages.plan import plan
from syncer.stages.planfile import from_dict, to_dict
from syncer.cli.views import plan_text

GOLDEN = Path(__file__).resolve().parent.parent / "cases" / "plan_text"
SECRET = "<<secret:TOKEN:0123456789abcdef0123456789abcdef>>"
ROTATED = "<<secret:TOKEN:fedcba9876543210fedcba9876543210>>"


def spec(**env: str) -> dict[str, object]:
    return {"image": "busybox:latest", "env": dict(env)}


def want(name: str, s: dict[str, object], *, definition: str | None = None, replica: int = 1,
         server: str = "local") -> ContainerSpec:
    return ContainerSpec("p", server, definition or name, replica, name, "box@1", s, L.spec_hash(s))


def live(name: str, s: dict[str, object], *, state: str = "running", definition: str | None = None,
         replica: int = 1, revision: int = 1, server: str = "local", health: str | None = None) -> LiveContainer:
    lab = L.container_labels(project="p", definition=definition or name, replica=replica, revision=revision,
                             spec_hash_=L.spec_hash(s), template_ref="box@1", commit=None, spec=s)
    return LiveContainer(f"id-{name}", name, server, state, health, lab)


def scenario() -> tuple[Desired, Observed]:
    desired = Desired("p", (
        want("api", spec(LEVEL="debug", TOKEN=ROTATED)),
        want("cache", spec()),
        want("db", spec(A="1")),
        want("new", spec()),
        want("taken", spec()),
        want("worker", spec(), definition="worker"),
        want("worker-2", spec(), definition="worker", replica=2),
        want("edge", spec(), server="remote"),
    ), ("api", "cache", "db", "new", "taken", "worker", "edge"))
    local = ServerState("local", True, managed=(
        live("api", spec(LEVEL="info", TOKEN=SECRET), revision=3),
        live("cache", spec(), state="exited"),
        live("db", spec(A="1"), revision=2),
        live("worker", spec()), live("worker-2", spec(), definition="worker", replica=2),
        live("worker-3", spec(), definition="worker", replica=3),
        live("gone", spec()),
    ), name_holders=(LiveContainer("id-foreign", "taken", "local", "running", None, {}),))
    remote = ServerState("remote", True, managed=(live("edge", spec(), server="remote", health="unhealthy"),))
    return desired, Observed("p", {"local": local, "remote": remote})


def make_plan():  # type: ignore[no-untyped-def]
    desired, observed = scenario()
    return plan(desired, observed, prune=True, created_at="2026-11-22T12:00:00Z")


def test_every_action_kind() -> None:
    actions = {a.container: a.action for a in make_plan().actions}
    assert actions == {"api": "recreate", "cache": "start", "db": "noop", "new": "create", "taken": "conflict",
                       "worker": "noop", "worker-2": "noop", "worker-3": "remove", "gone": "remove",
                       "edge": "noop"}


def test_a_recreate_of_a_container_that_does_not_run_says_so() -> None:
    """QA: after an apply killed in a recreate's health wait, the plan read `recreate: spec
    changed` for a container it had stopped: that its service was down did not show."""
    desired = Desired("p", (want("web", spec(A="2")), want("db", spec(A="2"))), ("web", "db"))
    observed = Observed("p", {"local": ServerState("local", True, managed=(
        live("web", spec(A="1"), state="exited"), live("db", spec(A="1"))))})
    causes = {a.container: a.cause for a in plan(desired, observed, prune=True, created_at="t").actions}
    assert causes == {"web": "spec changed (the container is exited)", "db": "spec changed"}
    held = plan(desired, observed, prune=True, created_at="t", held=frozenset({"web"}))  # (stopped through syncer)
    assert {a.container: a.cause for a in held.actions}["web"] == "spec changed"


def test_revisions_bump_only_when_the_spec_changed() -> None:
    revs = {a.container: a.revision for a in make_plan().actions}
    assert revs["api"] == 4 and revs["db"] == 2 and revs["new"] == 1 and revs["cache"] == 1


def test_known_revisions_from_the_store_win() -> None:
    from syncer.stages.plan import definition_hash

    desired, observed = scenario()
    db = [c for c in desired.containers if c.definition == "db"]
    p = plan(desired, observed, prune=True, created_at="t", known={"db": (9, definition_hash(db)), "api": (7, "x")})
    revs = {a.container: a.revision for a in p.actions}
    assert revs["db"] == 9 and revs["api"] == 8


def test_secret_reasons_are_masked() -> None:
    api = next(a for a in make_plan().actions if a.container == "api")
    fields = {r.field: r for r in api.reasons}
    assert fields["env.TOKEN"].sensitive and fields["env.TOKEN"].before is None
    assert (fields["env.LEVEL"].before, fields["env.LEVEL"].after) == ("info", "debug")
    assert "secret" not in json.dumps(to_dict(make_plan()))


def test_prune_false_keeps_removed_definitions_but_not_surplus_replicas() -> None:
    desired, observed = scenario()
    p = plan(desired, observed, prune=False, created_at="t")
    removed = {a.container for a in p.actions if a.action == "remove"}
    assert removed == {"worker-3"}


def unreachable_plan():  # type: ignore[no-untyped-def]
    desired, observed = scenario()
    down = ServerState("remote", False, error="server 'remote': cannot reach Docker: boom")
    return plan(desired, Observed("p", {**observed.servers, "remote": down}), prune=True, created_at="t")


def test_an_unreachable_server_blocks_its_own_containers_only() -> None:
    p = unreachable_plan()
    remote = [(a.action, a.container) for a in p.actions if a.server == "remote"]
    assert remote == [("unreachable", "edge")]
    assert p.unreachable == {"remote": "server 'remote': cannot reach Docker: boom"}
    local = {a.container: a.action for a in p.actions if a.server == "local"}
    assert local["new"] == "create" and local["api"] == "recreate"  # the other server is planned as usual
    assert p.by_server()["remote"]["unreachable"] == 1 and p.by_server()["local"]["create"] == 1


def test_no_server_answering_is_one_error_naming_each() -> None:
    from syncer.core.errors import DockerUnavailable

    desired, _ = scenario()
    with pytest.raises(DockerUnavailable, match="^server 'remote': boom$"):
        plan(desired, Observed("p", {"remote": ServerState("remote", False, error="server 'remote': boom")}),
             prune=True, created_at="t")


def test_unreachable_servers_round_trip_through_json() -> None:
    p = unreachable_plan()
    data = json.loads(json.dumps(to_dict(p)))
    assert data["servers"]["remote"] == {"reachable": False, "error": "server 'remote': cannot reach Docker: boom",
                                         "kind": "docker", "summary": {**{k: 0 for k in data["summary"]}, "unreachable": 1}}
    assert data["servers"]["local"]["reachable"] is True
    assert from_dict(data) == p


def test_json_round_trip() -> None:
    p = make_plan()
    data = json.loads(json.dumps(to_dict(p)))
    assert from_dict(data) == p
    assert data["summary"] == {"create": 1, "recreate": 1, "start": 1, "remove": 2, "conflict": 1, "unreachable": 0,
                               "run": 0, "network create": 0, "network remove": 0, "noop": 4}


def test_fingerprint_moves_with_live_state_only() -> None:
    desired, observed = scenario()
    a = plan(desired, observed, prune=True, created_at="t1")
    b = plan(desired, observed, prune=True, created_at="t2")
    assert a.fingerprint == b.fingerprint
    local = observed.servers["local"]
    changed = Observed("p", {**observed.servers, "local": ServerState("local", True, local.managed[1:],
                                                                      local.name_holders)})
    assert plan(desired, changed, prune=True, created_at="t").fingerprint != a.fingerprint


@pytest.mark.parametrize("name", ["every-action", "no-changes", "unreachable-server"])
def test_golden_plan_text(name: str) -> None:
    if name == "every-action":
        text = plan_text(make_plan())
    elif name == "unreachable-server":
        text = plan_text(unreachable_plan())
    else:
        desired, observed = scenario()
        only = Desired("p", tuple(c for c in desired.containers if c.definition == "db"), ("db",))
        local = observed.servers["local"]
        obs = Observed("p", {"local": ServerState("local", True, tuple(c for c in local.managed if c.name == "db"))})
        text = plan_text(plan(only, obs, prune=True, created_at="t"))
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_held_containers_stay_stopped() -> None:
    desired, observed = scenario()
    p = plan(desired, observed, prune=True, created_at="t", held=frozenset({"cache"}))
    cache = next(a for a in p.actions if a.container == "cache")
    assert cache.action == "noop" and "held stopped" in cache.cause


def test_a_container_watch_saw_finish_on_its_own_stays_exited_while_it_is_that_container() -> None:
    from dataclasses import replace

    desired, observed = scenario()
    local = observed.servers["local"]
    done = tuple(replace(c, status="Exited (0) 3 seconds ago") if c.name == "cache" else c for c in local.managed)
    exited = Observed("p", {**observed.servers, "local": replace(local, managed=done)})

    def cache(obs: Observed, finished: dict[str, str]) -> tuple[str, str]:
        a = next(a for a in plan(desired, obs, prune=True, created_at="t", finished=finished).actions
                 if a.container == "cache")
        return a.action, a.cause

    assert cache(exited, {"cache": "id-cache"}) == (
        "noop", "exited 0 on its own, as its restart policy allows (start it through syncer to run it again)")
    assert cache(exited, {"cache": "id-an-earlier-cache"})[0] == "start"  # another container under the name
    assert cache(exited, {})[0] == "start"
    crashed = tuple(replace(c, status="Exited (3) 1 second ago") if c.name == "cache" else c for c in local.managed)
    assert cache(Observed("p", {**observed.servers, "local": replace(local, managed=crashed)}),
                 {"cache": "id-cache"})[0] == "start"  # its last end was not a clean one


def test_spec_labels_missing_from_an_in_sync_container_recreate_it() -> None:
    # issue 10: labels were hashed but never applied; such a container must get them
    s = {"image": "busybox:latest", "labels": {"traefik.enable": "true"}}
    old = live("web", s)  # the syncer labels only, as the old create left it
    applied = LiveContainer(old.id, "web", "local", "running", None, {**old.labels, "traefik.enable": "true"})
    desired = Desired("p", (want("web", s),), ("web",))
    for container, kind in ((old, "recreate"), (applied, "noop")):
        observed = Observed("p", {"local": ServerState("local", True, managed=(container,))})
        [action] = plan(desired, observed, prune=True, created_at="t").actions
        assert action.action == kind
    observed = Observed("p", {"local": ServerState("local", True, managed=(old,))})
    [action] = plan(desired, observed, prune=True, created_at="t").actions
    assert [(r.field, r.before, r.after) for r in action.reasons] == [("labels.traefik.enable", None, "true")]


def _one(state: str, *, labels: dict[str, str] | None = None, status: str = "") -> str:
    s = spec()
    c = live("web", s, state=state)
    c = LiveContainer(c.id, c.name, c.server, state, None, {**c.labels, **(labels or {})}, status=status)
    p = plan(Desired("p", (want("web", s),), ("web",)), Observed("p", {"local": ServerState("local", True, (c,))}),
             prune=True, created_at="t")
    return f"{p.actions[0].action}: {p.actions[0].cause}"


def test_a_paused_container_is_started_not_recreated() -> None:
    assert _one("paused") == "start: container is paused"


def test_only_a_restore_of_the_deployed_revision_counts_as_a_self_heal() -> None:
    from syncer.stages.plan import definition_hash, restores_only

    cache = [want("cache", spec())]
    fresh = [want("fresh", spec())]
    desired = Desired("p", (*cache, *fresh), ("cache", "fresh"))
    stopped = Observed("p", {"local": ServerState("local", True, managed=(
        live("cache", spec(), state="exited"), live("fresh", spec())))})
    known = {"cache": (1, definition_hash(cache)), "fresh": (1, definition_hash(fresh))}
    healed = plan(desired, stopped, prune=True, created_at="t", known=known)
    assert [a.action for a in healed.actions if a.action != "noop"] == ["start"] and restores_only(healed, known)
    gone = Observed("p", {"local": ServerState("local", True, managed=(live("fresh", spec()),))})
    assert restores_only(plan(desired, gone, prune=True, created_at="t", known=known), known)  # rm -f: create
    changed = {**known, "cache": (1, "an older definition")}  # the definition changed: a new revision
    assert not restores_only(plan(desired, stopped, prune=True, created_at="t", known=changed), changed)
    assert not restores_only(plan(desired, gone, prune=True, created_at="t", known={}), {})  # never deployed
    assert not restores_only(plan(desired, Observed("p", {"local": ServerState("local", True, managed=(
        live("cache", spec()), live("fresh", spec())))}), prune=True, created_at="t", known=known), known)  # nothing
    extra = Observed("p", {"local": ServerState("local", True, managed=(
        live("cache", spec(), state="exited"), live("fresh", spec()), live("old", spec())))})
    assert not restores_only(plan(desired, extra, prune=True, created_at="t", known=known), known)  # a removal


def test_a_plan_of_one_definition_is_the_whole_plans_part_for_it() -> None:
    """`only` (a self-heal, a sync of one definition) plans from that definition's part of
    both states: the same actions the whole plan has for it, nothing of the others, and no
    network removal (whether the others still use one is not in that part)."""
    from syncer.core.model import LiveNetwork

    desired, observed = scenario()
    orphan = LiveNetwork("n-1", "p_old", {L.PROJECT: "p"})
    local = observed.servers["local"]
    # `cache`'s name held by a container of the project under another definition: recreated
    local = ServerState("local", True, managed=(*[c for c in local.managed if c.name != "cache"],
                                                live("cache", spec(), definition="old-cache")),
                        name_holders=local.name_holders, networks=(orphan,))
    observed = Observed("p", {**observed.servers, "local": local})
    whole = plan(desired, observed, prune=True, created_at="t")
    assert any(a.action == "network remove" for a in whole.actions)
    for definition in ("api", "cache", "new", "taken", "worker", "edge", "gone"):
        part = plan(desired, observed, prune=True, created_at="t", only=definition)
        assert part.actions == tuple(a for a in whole.actions if a.definition == definition), definition
    cache = plan(desired, observed, prune=True, created_at="t", only="cache").actions
    assert [(a.action, a.cause) for a in cache] == [("recreate", "the name is held by definition 'old-cache'")]


def test_a_container_sharing_anothers_network_is_made_again_with_it() -> None:
    """`network_mode: container:db`: Docker joins the namespace of the db container of the
    moment; a db made again left `app` in the namespace of one that is gone, planned noop."""
    from dataclasses import replace

    app_spec = {"image": "busybox:latest", "network_mode": "container:db"}
    desired = Desired("p", (want("db", spec(A="2")), want("app", app_spec)), ("db", "app"))
    db_live = live("db", spec(A="1"))
    app_live = replace(live("app", app_spec), network_mode=f"container:{db_live.id}")

    def actions(db: LiveContainer, app: LiveContainer, wanted: Desired = desired) -> dict[str, tuple[str, str]]:
        obs = Observed("p", {"local": ServerState("local", True, (db, app))})
        return {a.container: (a.action, a.cause) for a in plan(wanted, obs, prune=True, created_at="t").actions}

    assert actions(db_live, app_live)["app"] == ("recreate", "it shares the network of db, which is made again")
    in_sync = Desired("p", (want("db", spec(A="1")), want("app", app_spec)), ("db", "app"))
    assert actions(db_live, app_live, in_sync)["app"] == ("noop", "in sync")
    # db was made again by an earlier apply: app still holds the namespace of the one before
    stale = replace(app_live, network_mode="container:0123456789ab")
    assert actions(db_live, stale, in_sync)["app"] == ("recreate", "it shares the network of a db container that is gone")
    # db started again (Docker gave it a new namespace): app, running, has the old one
    later = replace(db_live, started_at="2026-12-01T10:00:05.1Z")
    early = replace(app_live, started_at="2026-12-01T10:00:05.09999Z")
    assert actions(later, early, in_sync)["app"][0] == "recreate"
    assert actions(replace(later, started_at="2026-12-01T10:00:05.0999Z"), early, in_sync)["app"][0] == "noop"
    stopped = replace(db_live, state="exited")
    assert actions(stopped, app_live, in_sync)["app"] == ("recreate", "it shares the network of db, which starts again")
    # an exited app starts after db: it joins the namespace db has then
    assert actions(stopped, replace(app_live, state="exited"), in_sync)["app"][0] == "start"
    # a plan of db alone (db's heal) judges app too: it would be left with the old namespace
    healed = plan(in_sync, Observed("p", {"local": ServerState("local", True, (stopped, app_live))}), prune=True,
                  created_at="t", only="db")
    assert [(a.container, a.action) for a in healed.actions] == [("app", "recreate"), ("db", "start")]
    # ... and when db is running again already (a `docker restart` the heal came after)
    restarted = plan(in_sync, Observed("p", {"local": ServerState("local", True, (later, early))}), prune=True,
                     created_at="t", only="db")
    assert [(a.container, a.action) for a in restarted.actions] == [("app", "recreate"), ("db", "noop")]
    # a plan of app alone (a heal) does not see db: it judges nothing about it
    alone = plan(in_sync, Observed("p", {"local": ServerState("local", True, (db_live, stale))}), prune=True,
                 created_at="t", only="app")
    assert [(a.container, a.action) for a in alone.actions] == [("app", "noop")]


def test_a_dependent_with_restart_true_is_restarted_after_its_dependency_is_updated() -> None:
    """Compose's `depends_on: {db: {restart: true}}`: the plan restarts each running container
    of the dependent that it leaves alone, once the dependency is created, recreated or run
    again; a dependent the plan changes anyway, one that is stopped, or one whose dependency
    is in sync stays as it was."""
    from dataclasses import replace

    def dependent(name: str, restarts: tuple[str, ...] = ("db",)) -> ContainerSpec:
        return replace(want(name, spec()), depends_on=("db",), restarts_with=restarts)

    desired = Desired("p", (want("db", spec(A="2")), dependent("web"), dependent("stopped"),
                            replace(dependent("changed"), spec=spec(B="2"), spec_hash=L.spec_hash(spec(B="2"))),
                            dependent("plain", ())), ("db", "web", "stopped", "changed", "plain"))
    local = ServerState("local", True, managed=(
        live("db", spec(A="1")), live("web", spec()), live("stopped", spec(), state="exited"),
        live("changed", spec()), live("plain", spec())))
    p = plan(desired, Observed("p", {"local": local}), prune=True, created_at="now")
    got = {a.container: a.action for a in p.actions}
    assert got == {"db": "recreate", "web": "restart", "stopped": "start", "changed": "recreate", "plain": "noop"}
    web = next(a for a in p.actions if a.container == "web")
    assert web.cause == "restarted after its dependency db (recreate): depends_on restart: true"
    assert web.container_id == "id-web" and web.revision == 1  # the same container, the same revision
    text = plan_text(p)
    assert "@ restart  web" in text and "1 to restart after a dependency" in text, text
    assert from_dict(to_dict(p)).actions == p.actions

    # the dependency in sync: nothing restarts
    same = replace(desired, containers=(want("db", spec(A="1")), *desired.containers[1:]))
    assert {a.container: a.action for a in plan(same, Observed("p", {"local": local}), prune=True,
                                                created_at="now").actions}["web"] == "noop"
    # a Swarm service held at 0 replicas by an operator stays held
    from syncer.stages.restarts import after_dependencies
    from syncer.core.model import Action

    held = ServerState("local", True, kind="swarm", managed=(replace(live("web", spec()), replicas=0),))
    acts = [Action("update", "local", "db", "db", 2, "spec changed"),
            Action("noop", "local", "web", "web", 1, "held", container_id="id-web")]
    assert [a.action for a in after_dependencies(acts, desired, Observed("p", {"local": held}))] == ["update", "noop"]


def test_a_restart_left_undone_is_planned_again_from_when_the_dependency_was_made() -> None:
    """A dependency made after its dependent last started (a restart an earlier apply skipped,
    a rollback of the dependency alone, a self-heal that made it anew) restarts the dependent on
    the next plan; one that only started again (Docker's restart policy) restarts nothing."""
    from dataclasses import replace

    desired = Desired("p", (want("db", spec()), replace(want("web", spec()), depends_on=("db",),
                                                          restarts_with=("db",))), ("db", "web"))

    def observed(db_made: str, db_started: str, web_started: str) -> Observed:
        db = replace(live("db", spec()), made_at=db_made, started_at=db_started)
        web = replace(live("web", spec()), made_at="2026-12-02T10:00:00.1Z", started_at=web_started)
        return Observed("p", {"local": ServerState("local", True, managed=(db, web))})

    def web_action(o: Observed) -> tuple[str, str]:
        a = next(a for a in plan(desired, o, prune=True, created_at="now").actions if a.container == "web")
        return a.action, a.cause

    # made at 10:05:00.5, web started 10:05:00.25 (the same second: nanoseconds compared)
    assert web_action(observed("2026-12-02T10:05:00.5Z", "2026-12-02T10:05:00.6Z", "2026-12-02T10:05:00.25Z")) == (
        "restart", "restarted after its dependency db (made after it started): depends_on restart: true")
    # web restarted after db was made: done
    assert web_action(observed("2026-12-02T10:05:00.5Z", "2026-12-02T10:05:00.6Z", "2026-12-02T10:05:01Z"))[0] == "noop"
    # db only started again (made long before web started): nothing
    assert web_action(observed("2026-12-02T09:00:00Z", "2026-12-02T10:06:00Z", "2026-12-02T10:05:01Z"))[0] == "noop"
    # not inspected (no times): nothing
    assert web_action(observed("", "", ""))[0] == "noop"
