"""Self-heal decisions (stages/selfheal) and the plan's part: pause, finished jobs."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.stages import selfheal


def _event(action: str, ident: str = "abc", name: str = "web") -> dict[str, Any]:
    return {"Action": action, "Actor": {"ID": ident, "Attributes": {"name": name, "syncer.definition": "web"}}}


@pytest.mark.parametrize("action,expect", [("die", "stopped"), ("destroy", "gone"), ("pause", "paused")])
def test_each_fault_names_the_state_to_wait_for(action: str, expect: str) -> None:
    v = selfheal.read_event(_event(action), own=set())
    assert (v.what, v.expect, v.container_id, v.definition) == ("heal", expect, "abc", "web")


@pytest.mark.parametrize("action", ["kill", "stop", "oom"])
def test_a_signal_or_a_stop_is_healed_by_the_die_that_follows_it(action: str) -> None:
    """A kill may be survived (`kill -s HUP`); one that ends the container, like a stop or
    an OOM kill, is followed by `die`: one fault, one heal (each of them started a cycle)."""
    v = selfheal.read_event(_event(action), own=set())
    assert (v.what, v.expect) == ("note", None) and "die" in v.why  # logged, not healed


def test_unhealthy_and_other_events() -> None:
    assert selfheal.read_event(_event("health_status: unhealthy"), own=set()).what == "unhealthy"
    assert selfheal.read_event(_event("health_status: healthy"), own=set()).what == "ignore"
    assert selfheal.read_event(_event("start"), own=set()).what == "ignore"
    assert selfheal.read_event(_event("die", ident="mine"), own={"mine"}).why == "syncer's own action"


@pytest.mark.parametrize("expect,row,done", [
    ("stopped", {"State": "running"}, False),  # Docker 20.10: the list lags behind `die`
    ("stopped", {"State": "exited"}, True),
    ("stopped", {"State": "restarting"}, True),
    ("stopped", {"State": "removing"}, False),  # `docker rm -f` under way: wait until it is gone
    ("stopped", None, True),
    ("gone", {"State": "exited"}, False),
    ("gone", None, True),
    ("paused", {"State": "running"}, False),
    ("paused", {"State": "paused"}, True),
])
def test_settled_waits_for_the_list_to_show_the_fault(expect: Any, row: Any, done: bool) -> None:
    assert selfheal.settled(expect, row) is done


def test_unhealthy_policy_defaults_to_report() -> None:
    assert selfheal.unhealthy_policy(None) == "report"
    assert selfheal.unhealthy_policy({}) == "report"
    assert selfheal.unhealthy_policy({"unhealthy": "restart"}) == "restart"


def test_own_actions_last_the_action_and_a_grace_and_a_start_forgets() -> None:
    from syncer.engine.heal import OwnActions

    own = OwnActions(grace=60.0)
    assert "abc" not in own
    with own.acting("abcdef0123"):
        assert "abcdef0123" in own and "abcdef" in own  # events may carry a short id
    assert "abcdef0123" in own  # its events arrive just after the call returns
    own.forget("abcdef0123")
    assert "abcdef0123" not in own
    brief = OwnActions(grace=0.0)
    with brief.acting("x1"):
        pass
    assert "x1" not in brief  # the grace is over: a kill of it now is a fault


def test_a_restarts_events_are_ours_until_its_restart_event_then_a_death_is_a_fault_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart's kill, die and stop may reach the watcher after the call returned (they were
    once read as a fault: the id had been forgotten right after the call); its `restart` event,
    the last, gives the container back, so a crash a moment later is healed, not taken for ours."""
    from syncer.engine import heal

    monkeypatch.setattr(heal, "OWN", heal.OwnActions(grace=60))
    monkeypatch.setattr(heal, "SIGNALLED", heal.OwnActions(grace=60))
    ident = "c0ffee" * 10

    def event(action: str, **attrs: str) -> dict[str, Any]:
        return {"Type": "container", "Action": action, "Actor": {"ID": ident, "Attributes": {"name": "web", **attrs}}}

    with heal.OWN.acting(ident, until="restart"):
        pass  # the call returned; its events come now
    for action in ("kill", "kill", "die", "stop", "start"):
        assert heal.read_event(event(action, exitCode="137")).what == "ignore", action
    assert heal.read_event(event("restart")).what == "ignore"
    assert ident not in heal.OWN  # given back at its last event, not after the 60 s grace
    v = heal.read_event(event("die", exitCode="1"))
    assert (v.what, v.crashed) == ("heal", True)

    # the closing event read before the call returned: given back as the call returns
    with heal.OWN.acting(ident, until="restart"):
        heal.read_event(event("restart"))
        assert ident in heal.OWN
    assert ident not in heal.OWN
    # without `until`, the grace as before
    with heal.OWN.acting(ident):
        pass
    heal.read_event(event("restart"))
    assert ident in heal.OWN


def test_an_invalid_repository_only_reports_unhealthy(tmp_path: Any) -> None:
    """The event stream must outlive a repository that does not load."""
    from syncer.engine import facade as engine
    from syncer.engine.heal import unhealthy_policy

    (tmp_path / "syncer.yaml").write_text("project: [not, a, name]\n")
    assert unhealthy_policy(engine.Context(repo=tmp_path), "web") == "report"


def test_a_job_ending_is_never_a_fault_to_heal() -> None:
    from syncer.stages.selfheal import read_event

    event = {"Action": "die", "Actor": {"ID": "abc", "Attributes": {"name": "migrate", "syncer.kind": "job"}}}
    assert read_event(event, set()).what == "ignore"
    service = {"Action": "die", "Actor": {"ID": "abc", "Attributes": {"name": "web"}}}
    assert read_event(service, set()).what == "heal"


def test_a_swarm_service_removed_or_changed_behind_syncers_back_is_a_fault_and_swarms_own_moves_are_not() -> None:
    def service(action: str, **attrs: str) -> dict[str, Any]:
        return {"Type": "service", "Action": action,
                "Actor": {"ID": "svc1", "Attributes": {"name": "web", "syncer.definition": "web-def", **attrs}}}

    v = selfheal.read_event(service("remove"), own=set())
    assert (v.what, v.expect, v.name, v.definition) == ("heal", "gone", "web", "web-def")
    # `docker service update --env-add` / `scale` (the attributes as Docker 20.10 sends them)
    for changed in (service("update"), service("update", **{"replicas.new": "3", "replicas.old": "1"})):
        v = selfheal.read_event(changed, own=set())
        assert (v.what, v.why, v.definition, v.expect) == ("drift", "changed outside syncer", "web-def", None)
        assert selfheal.read_event(changed, own={"svc1"}).why == "syncer's own action"
    # a roll moving on, and Swarm rolling back a failed update: Swarm's own, never re-planned
    for new, old in (("updating", None), ("completed", "updating"), ("rollback_started", "updating"),
                     ("rollback_completed", "rollback_started"), ("paused", "updating")):
        moved = {"updatestate.new": new, **({"updatestate.old": old} if old else {})}
        assert selfheal.read_event(service("update", **moved), own=set()).what == "ignore", moved
    assert selfheal.read_event(service("create"), own=set()).what == "ignore"
    assert selfheal.read_event(service("remove"), own={"svc1"}).why == "syncer's own action"
    # syncer's own write to the service (a service it creates gets an update as the manager
    # gives it its endpoint), told by name and the event's time
    mine = {**service("update"), "timeNano": 7}
    assert selfheal.read_event(mine, own=set(), writes=lambda name, at: (name, at) == ("web", 7)).what == "ignore"
    assert selfheal.read_event(mine, own=set(), writes=lambda name, at: name == "we").what == "drift"
    # (a removal is no write's: a service removed by hand just after syncer made it is a fault)
    assert selfheal.read_event(service("remove"), own=set(), writes=lambda name, at: True).what == "heal"
    # `docker service rollback` (asked for: from no roll, or a finished one) is someone's; Swarm's
    # rollback of a failed roll is Swarm's own, even when it puts the replicas back
    for old in ({}, {"updatestate.old": "completed"}, {"updatestate.old": "rollback_completed"}):
        asked = service("update", **{"updatestate.new": "rollback_started", "replicas.new": "3", "replicas.old": "1"}, **old)
        assert selfheal.read_event(asked, own=set()).what == "drift", old
        assert selfheal.read_event(asked, own=set(), writes=lambda name, at: True).what == "drift", old
    own_rollback = service("update", **{"updatestate.new": "rollback_started", "updatestate.old": "updating",
                                        "replicas.new": "1", "replicas.old": "3"})
    assert selfheal.read_event(own_rollback, own=set()).what == "ignore"


def test_a_swarm_tasks_container_ending_is_swarms_to_replace_and_its_health_is_reported() -> None:
    def task(action: str) -> dict[str, Any]:
        return {"Type": "container", "Action": action, "Actor": {"ID": "c1", "Attributes": {
            "name": "web.1.x", "syncer.definition": "web", "com.docker.swarm.task.id": "t1"}}}

    for action in ("die", "destroy", "pause"):
        assert selfheal.read_event(task(action), own=set()).what == "note"
    assert selfheal.read_event(task("health_status: unhealthy"), own=set()).what == "unhealthy"


def _die(code: str | None, restart: str | None, ident: str = "abc") -> dict[str, Any]:
    import json

    attrs: dict[str, Any] = {"name": "web", "syncer.definition": "web"}
    if code is not None:
        attrs["exitCode"] = code
    if restart is not None:
        attrs["syncer.spec"] = json.dumps({"image": "x", "restart": restart})
    return {"Action": "die", "Actor": {"ID": ident, "Attributes": attrs}}


@pytest.mark.parametrize("restart", ["no", "on-failure", "on-failure:3"])
def test_a_container_that_exits_0_on_its_own_under_a_policy_that_allows_it_has_finished(restart: str) -> None:
    v = selfheal.read_event(_die("0", restart), own=set())
    assert (v.what, v.exit_code, v.expect) == ("finished", 0, None)
    assert f"restart policy is {restart}" in v.why


@pytest.mark.parametrize("code,restart", [("0", None), ("0", "always"), ("0", "unless-stopped"),
                                          ("3", "no"), ("137", "on-failure"), (None, "no")])
def test_any_other_end_on_its_own_is_a_crash_to_heal(code: str | None, restart: str | None) -> None:
    """Issue 11: a main process that exits is healed whatever its code, unless the spec's
    own restart policy says a clean exit is the end (and the event says it was clean)."""
    v = selfheal.read_event(_die(code, restart), own=set())
    assert (v.what, v.expect, v.crashed) == ("heal", "stopped", True)


def test_a_die_after_someones_kill_or_stop_is_their_fault_and_healed_at_once() -> None:
    v = selfheal.read_event(_die("0", "no"), own=set(), signalled={"abc"})
    assert (v.what, v.expect, v.crashed) == ("heal", "stopped", False)


def test_the_engine_remembers_who_was_signalled_by_someone_else(monkeypatch: pytest.MonkeyPatch) -> None:
    from syncer.engine import heal

    monkeypatch.setattr(heal, "SIGNALLED", heal.OwnActions(grace=60))
    kill = {"Type": "container", "Action": "kill", "Actor": {"ID": "theirs", "Attributes": {"signal": "15"}}}
    assert heal.read_event(kill).what == "note"
    assert heal.read_event(_die("0", "no", ident="theirs")).what == "heal"
    assert heal.read_event(_die("0", "no", ident="theirs")).what == "finished"  # its next end is its own
    with heal.OWN.acting("ours"):  # syncer's own stop: its die is syncer's, not anyone's fault
        heal.read_event({**kill, "Actor": {"ID": "ours"}})
    assert "ours" not in heal.SIGNALLED
    heal.read_event({**kill, "Action": "stop"})  # a stop event comes after the die: it signals nothing
    assert "theirs" not in heal.SIGNALLED
    assert heal.read_event(_die("0", "no", ident="other")).what == "finished"


def test_a_crash_loop_backs_off_and_starts_over_once_the_container_stayed_up() -> None:
    state, delays = None, []
    now = 1000.0
    for _ in range(11):
        delay, state = selfheal.crash_delay(state, now)
        delays.append(delay)
        now += delay + 1.0  # it crashes a second after each heal
    assert delays == [0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0]
    delay, state = selfheal.crash_delay(state, now + selfheal.CRASH_RESET_S)  # it ran a while
    assert (delay, state[0]) == (0.0, 1)


def test_a_services_writes_are_its_writers_while_under_way_shortly_after_and_by_the_events_own_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from syncer.engine import heal

    now = [1000.0]
    monkeypatch.setattr(heal.time, "time", lambda: now[0])
    writes = heal.ServiceWrites()
    assert not writes.covers("web")
    with writes.writing("web"):
        now[0] += 0.5
        assert writes.covers("web") and not writes.covers("webapp")
    now[0] += heal.WRITE_GRACE_S - 0.1
    assert writes.covers("web")  # read at once
    now[0] += 10
    assert not writes.covers("web")  # a change someone made later
    assert writes.covers("web", int(1000.2 * 1e9))  # an event of the write, read late
    assert not writes.covers("web", int(1010.0 * 1e9))
    now[0] += heal.WRITE_KEEP_S
    assert not writes.covers("web", int(1000.2 * 1e9)) and writes._windows == {}  # (forgotten)


def test_a_roll_replaced_by_someone_elses_write_is_seen_and_swarms_rollback_is_not_that() -> None:
    from syncer.stages.swarm_tasks import superseded

    ours = "2026-12-03T09:00:00Z"
    assert not superseded("", {})  # (not seen yet)
    assert not superseded(ours, {"State": "updating", "StartedAt": ours})
    assert not superseded(ours, {"State": "rollback_started", "StartedAt": "2026-12-03T09:00:05Z"})
    assert superseded(ours, {})  # a scale: Swarm dropped the status
    assert superseded(ours, {"State": "updating", "StartedAt": "2026-12-03T09:00:07Z"})  # another roll
    assert superseded(ours, {"State": "completed", "StartedAt": "2026-12-03T09:00:07Z"})  # (over before a look)
    assert not superseded(ours, {"State": "completed", "StartedAt": ours})


def test_an_apply_counts_a_one_shot_finished_only_if_it_exited_0_with_no_ones_kill_before() -> None:
    """engine/readiness.ended_on_its_own: what the apply asks at its end of a container it saw
    running under `restart: "no"`; a `docker stop` meanwhile is no completion (self-heal starts it)."""
    from typing import Any

    from syncer.engine.readiness import ended_on_its_own

    class Engine:
        def __init__(self, state: dict[str, Any], signals: list[dict[str, Any]]) -> None:
            self.state, self.signals = state, signals
            self.asked: list[Any] = []

        def inspect(self, ident: str) -> dict[str, Any]:
            return {"State": self.state}

        def events(self, project: str, **kw: Any) -> Any:
            self.asked.append(kw)
            return iter(self.signals)

    ended = Engine({"Running": False, "ExitCode": 0}, [])
    assert ended_on_its_own(ended, "p", "c1", 100)  # type: ignore[arg-type]
    assert ended.asked[0]["since"] == 100
    assert ended.asked[0]["also"] == {"container": ["c1"], "event": ["kill", "stop"]}
    assert ended.asked[0]["until"] > 100  # (a bounded query: it returns)
    stopped = Engine({"Running": False, "ExitCode": 0}, [{"Action": "kill"}])
    assert not ended_on_its_own(stopped, "p", "c1", 100)  # type: ignore[arg-type]
    assert not ended_on_its_own(Engine({"Running": True}, []), "p", "c1", 100)  # type: ignore[arg-type]
    assert not ended_on_its_own(Engine({"Running": False, "ExitCode": 1}, []), "p", "c1", 100)  # type: ignore[arg-type]
