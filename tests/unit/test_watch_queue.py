"""The one queue of sync requests and the watch loop over it: requests during an apply
coalesce into exactly one follow-up, every request of a batch gets its outcome, and drift
is decided by the kind of request, not by words in its reason."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from syncer.daemon.watch import WatchOptions, Watcher, parse_duration
from syncer.engine import facade as engine
from syncer.engine.requests import Kind, Outcome, RequestQueue
from tests.helpers import wait_until


def _report(run_id: str, held: dict[str, engine.Hold] | None = None) -> Any:
    summary = dict.fromkeys(("create", "recreate", "start", "remove", "conflict", "noop"), 0)
    return SimpleNamespace(ok=True, run_id=run_id, project=None, results=[], held=held or {},
                           plan=SimpleNamespace(summary=lambda: summary, unreachable={}))


def test_triggers_during_an_apply_cause_exactly_one_follow_up(tmp_path: Path) -> None:
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    calls: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def fake_apply(batch: Any, definition: str | None) -> Outcome:
        calls.append(batch.reasons)
        if len(calls) == 1:
            inside.set()
            assert release.wait(10)
        return Outcome("success", (f"run_{len(calls)}",))

    w._apply = fake_apply  # type: ignore[method-assign]
    first = w.request("first", kind=Kind.FILE)
    loop = threading.Thread(target=w.step)
    loop.start()
    assert inside.wait(10)
    during = [w.request(f"during-{i}") for i in range(5)]
    release.set()
    loop.join(10)
    assert w.step(timeout=1) is True
    assert w.step(timeout=0.2) is False
    assert calls[0] == "first"
    assert len(calls) == 2 and all(f"during-{i}" in calls[1] for i in range(5))
    assert w.describe(first)["run_ids"] == ["run_1"]  # type: ignore[index]
    assert {tuple(w.describe(i)["run_ids"]) for i in during} == {("run_2",)}  # type: ignore[index]


def test_one_definition_requests_stay_scoped(tmp_path: Path) -> None:
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    seen: list[str | None] = []

    def fake_apply(batch: Any, definition: str | None) -> Outcome:
        seen.append(definition)
        return Outcome("success")

    w._apply = fake_apply  # type: ignore[method-assign]
    w.request("api", definition="web")
    w.step(timeout=1)
    w.request("api", definition="web")
    w.request("api", definition="db")
    w.step(timeout=1)
    w.request("api", definition="db")
    w.request("api")
    w.step(timeout=1)
    assert seen == ["web", "db", "web", None]


def test_every_request_served_by_one_apply_gets_its_run_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the watch loop gave the run id to the first request of a batch only."""
    monkeypatch.setattr(engine, "apply", lambda ctx, **kw: _report("run_batch"))
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    ids = [w.request(f"api {i}") for i in range(3)]
    assert w.step(timeout=1) is True
    records = [w.describe(i) for i in ids]
    assert [(r or {}).get("status") for r in records] == ["success"] * 3
    assert [(r or {}).get("run_ids") for r in records] == [["run_batch"]] * 3


def test_only_a_sync_someone_called_for_tries_a_held_spec_and_each_wait_is_queued_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stages/backoff.py: watch's own cycles hold a rolled-back spec (the base wait goes to the
    apply); POST /sync does not. The held definition's next try is queued for when its wait
    ends, once however many cycles saw it held."""
    import time

    holds: list[float] = []
    until = time.time() + 0.3
    monkeypatch.setattr(engine, "apply", lambda ctx, **kw: holds.append(kw["hold_failed"]) or
                        _report("r", {"web": engine.Hold(3, until, 1)} if kw["hold_failed"] else {}))
    later: list[tuple[str, float, str | None]] = []
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions(retry_failed=42.0))
    w.state = tmp_path  # (where the holds are remembered for `status`)
    monkeypatch.setattr(w, "later", lambda reason, delay, **kw: later.append((reason, delay, kw.get("definition"))))
    for kind in (Kind.TIMER, Kind.FILE, Kind.DOCKER, Kind.API):
        w.request(str(kind), kind=kind)
        assert w.step(timeout=1) is True
    assert holds == [42.0, 42.0, 42.0, 0.0]
    [(reason, delay, definition)] = later
    assert definition == "web" and 0.3 < delay <= 0.8 and "rolled-back" in reason
    from syncer.adapters.store import Store

    store = Store(tmp_path)
    try:  # remembered for `status`; the last cycle (POST /sync) holds nothing and forgets nothing
        from syncer.core.clock import iso

        assert store.get_meta("held") == {"web": iso(until)}
    finally:
        store.close()


def test_a_deferred_job_is_tried_again_by_a_sync_of_everything_a_first_deployment_by_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """stages/backoff.py: a deferred definition's next try is queued for when its wait ends; a
    job's as a sync of the whole project (one of its definition alone would be a heal, which
    never runs a job). The plan line and `status` show them."""
    import logging
    import time

    until = time.time() + 0.3
    held = {"job": engine.Hold(None, until, 2, job=True), "web": engine.Hold(None, until, 1),
            "svc": engine.Hold(4, until, 1)}
    monkeypatch.setattr(engine, "apply", lambda ctx, **kw: _report("r", held))
    later: list[tuple[str, str | None]] = []
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions(retry_failed=42.0))
    w.state = tmp_path
    monkeypatch.setattr(w, "later", lambda reason, delay, **kw: later.append((reason, kw.get("definition"))))
    with caplog.at_level(logging.INFO, logger="syncer.daemon.watch"):
        w.request("resync", kind=Kind.TIMER)
        assert w.step(timeout=1) is True
    assert sorted(later, key=str) == sorted([
        ("retry job: its wait after a failed deployment ended", None),
        ("retry web: its wait after a failed deployment ended", "web"),
        ("retry svc: its wait after a rolled-back deployment ended", "svc")], key=str)
    assert "(1 held, 2 deferred)" in caplog.text
    assert "job: deferred: its job failed, nothing earlier to hold it at; tried again at " in caplog.text
    assert "web: deferred: its first deployment failed, nothing earlier" in caplog.text
    assert set(w.shown) == {"job", "web", "svc"}


def test_a_deferred_definition_others_wait_for_is_tried_by_a_sync_of_everything_they_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its dependents (deferred after it) follow it in their waves: its try is the project's,
    and they queue none of their own (one of a dependent alone would make it without `db`)."""
    import time

    until = time.time() + 0.3
    held = {"db": engine.Hold(None, until, 1), "app": engine.Hold(None, until, 0, after="db")}
    monkeypatch.setattr(engine, "apply", lambda ctx, **kw: _report("r", held))
    later: list[tuple[str, str | None]] = []
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions(retry_failed=42.0))
    w.state = tmp_path
    monkeypatch.setattr(w, "later", lambda reason, delay, **kw: later.append((reason, kw.get("definition"))))
    w.request("resync", kind=Kind.TIMER)
    assert w.step(timeout=1) is True
    assert later == [("retry db: its wait after a failed deployment ended", None)]
    assert set(w.shown) == {"db", "app"}


def test_a_failed_deployment_no_hold_covers_is_tried_again_soon_with_a_doubling_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI saw it: a heal of a container taken off a network that was removed meanwhile failed
    (its plan was made while the network existed) and nothing came to try it again until the
    resync. A failure no hold or deferral covers is tried again after 2 s, 4 s ... at most
    60 s; a success resets the wait; a held definition is left to its hold."""
    def result(name: str, ok: bool) -> Any:
        return SimpleNamespace(definition=name, ok=ok, deployment="d", error="" if ok else "network not found")

    reports = [[result("web", False), result("db", False)], [result("web", False)], [result("web", True)],
               [result("web", False)]]
    held = {"db": engine.Hold(3, 9e9, 1)}

    def apply(ctx: Any, **kw: Any) -> Any:
        r = _report("r", held)
        return SimpleNamespace(**{**vars(r), "ok": False, "results": reports.pop(0)})

    monkeypatch.setattr(engine, "apply", apply)
    later: list[tuple[str, float, str | None]] = []
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions(retry_failed=42.0))
    w.state = tmp_path
    monkeypatch.setattr(w, "later", lambda reason, delay, **kw: later.append((reason, delay, kw.get("definition"))))
    for _ in range(4):
        w.request("resync", kind=Kind.TIMER)
        assert w.step(timeout=1) is True
    retries = [(delay, d) for reason, delay, d in later if "its deployment failed" in reason]
    assert retries == [(2.0, "web"), (4.0, "web"), (2.0, "web")]  # (db is held: its hold's retry, not this)
    w.heal_backoff["web"] = 60.0
    w._retry_failed_heals(SimpleNamespace(results=[result("web", False)], held={}))
    assert later[-1][1:] == (60.0, "web")


@pytest.mark.parametrize("name", ["git-api", "startup-commit", "files-changed"])
def test_a_docker_trigger_reports_drift_whatever_the_containers_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Regression: drift was decided by words in the reason, so a container named `git-api`
    (its name is in the reason) suppressed drift.detected."""
    drift: list[str | None] = []

    def fake_apply(ctx: Any, **kw: Any) -> Any:
        drift.append(kw.get("drift"))  # the engine queues drift.detected when this is given
        return _report("run_heal")

    monkeypatch.setattr(engine, "apply", fake_apply)
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w.faults.event(SimpleNamespace(name="local"), _Settled(), {"Action": "die", "Actor": {
        "ID": f"id-{name}", "Attributes": {"name": name}}})
    assert w.step(timeout=5) is True
    assert len(drift) == 1 and drift[0] is not None and name in drift[0]
    w.request("files changed: web.yaml", kind=Kind.FILE)  # a change someone asked for: no drift
    assert w.step(timeout=5) is True
    assert drift[1:] == [None]


class _Settled:
    """An Observer whose container list shows the announced state at once (or never)."""

    def __init__(self, settles: bool = True) -> None:
        self.settles = settles
        self.asked: list[tuple[str, str]] = []

    def settle(self, ident: str, expect: str, **kw: Any) -> bool:
        self.asked.append((ident, expect))
        return self.settles


def _die(ident: str, name: str = "web", action: str = "die") -> dict[str, Any]:
    return {"Action": action, "Actor": {"ID": ident, "Attributes": {"name": name, "syncer.definition": name}}}


def test_a_fault_during_a_cycle_is_healed_by_one_follow_up(tmp_path: Path) -> None:
    """Regression (issue 11): an event that arrived while a cycle ran was dropped, so a
    `docker kill` whose `die` came during the cycle it started was never healed."""
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    calls: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def fake_apply(batch: Any, definition: str | None) -> Outcome:
        calls.append(batch.reasons)
        if len(calls) == 1:
            inside.set()
            assert release.wait(10)
        return Outcome("success")

    w._apply = fake_apply  # type: ignore[method-assign]
    w.request("docker: web kill", kind=Kind.DOCKER)
    loop = threading.Thread(target=w.step)
    loop.start()
    assert inside.wait(10)
    observer = _Settled()
    for action in ("die", "pause"):
        w.faults.event(SimpleNamespace(name="local"), observer, _die("c1", action=action))
    assert len(w.queue._pending) == 2  # queued at once: the cycle waits for the settling itself
    release.set()
    loop.join(10)
    assert w.step(timeout=5) is True and w.step(timeout=0.2) is False
    assert len(calls) == 2 and "web die" in calls[1] and "web pause" in calls[1]
    wait_until(lambda: len(observer.asked) == 2, 5, interval=0.01, message="both settled")
    assert sorted(observer.asked) == [("c1", "paused"), ("c1", "stopped")]


def test_own_actions_are_known_by_id_not_by_name(tmp_path: Path) -> None:
    from syncer.engine.heal import OWN

    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w._apply = lambda batch, definition: Outcome("success")  # type: ignore[method-assign]
    observer = _Settled()
    with OWN.acting("ours123"):
        w.faults.event(SimpleNamespace(name="local"), observer, _die("ours123", "web_syncer-new"))
        w.faults.event(SimpleNamespace(name="local"), observer, _die("ours123", "web"))
    assert w.step(timeout=0.3) is False and observer.asked == []
    # a fault on a container whose name looks like syncer's temporary one is still a fault
    w.faults.event(SimpleNamespace(name="local"), observer, _die("theirs456", "web_syncer-new"))
    assert w.step(timeout=5) is True


def test_a_kill_or_a_stop_is_left_to_the_die_that_follows(tmp_path: Path) -> None:
    """A kill the container survives heals nothing; one that ends it is one fault (its
    `die`), not two cycles."""
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    observer = _Settled(settles=False)
    for action in ("kill", "stop", "oom"):
        w.faults.event(SimpleNamespace(name="local"), observer, _die("c2", action=action))
    assert w.step(timeout=0.3) is False and observer.asked == []


def test_a_faults_cycle_loads_at_once_and_observes_once_the_list_shows_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle of a `die` starts before the container list shows the container stopped
    (its load and render overlap Docker's exit handling); it reads Docker only after."""
    order: list[str] = []
    settle = threading.Event()

    class Slow(_Settled):
        def settle(self, ident: str, expect: str, **kw: Any) -> bool:
            settle.wait(10)
            order.append("settled")
            return True

    def fake_apply(ctx: Any, **kw: Any) -> Any:
        order.append("cycle started")
        settle.set()  # Docker finishes the exit while the cycle loads
        kw["ready"]()
        order.append("observed")
        return _report("run_heal")

    monkeypatch.setattr(engine, "apply", fake_apply)
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w.faults.event(SimpleNamespace(name="local"), Slow(), _die("c3"))
    assert w.step(timeout=5) is True
    assert order == ["cycle started", "settled", "observed"]


def test_a_change_someone_asked_for_is_no_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drift: list[str | None] = []
    monkeypatch.setattr(engine, "apply", lambda ctx, **kw: (drift.append(kw.get("drift")), _report("r"))[1])
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w.request("docker: web-1 die", kind=Kind.DOCKER)
    w.request("new commit", kind=Kind.GIT)
    assert w.step(timeout=1) is True and drift == [None]


def test_the_queue_answers_for_every_id_of_a_batch() -> None:
    q = RequestQueue()
    ids = [q.put(Kind.API, "a"), q.put(Kind.HOOK, "b", fetch=True), q.put(Kind.TIMER, "c")]
    assert all((q.describe(i) or {})["status"] == "queued" for i in ids)
    batch = q.take(0.1)
    assert batch is not None and batch.ids == ids and batch.fetch and not batch.drift and batch.targets == [None]
    assert q.take(0.01) is None
    q.serve(batch, lambda target: Outcome("success", ("run_x",), "abc123"))
    assert [(q.describe(i) or {})["run_ids"] for i in ids] == [["run_x"]] * 3
    assert {(q.describe(i) or {})["commit"] for i in ids} == {"abc123"}
    assert q.describe("req_nope") is None


def test_kinds_that_ask_for_a_change() -> None:
    assert {k for k in Kind if k.asked} == {Kind.FILE, Kind.GIT, Kind.HOOK, Kind.API, Kind.STARTUP}


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("250ms", 0.25), ("2", 2)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_fault_of_a_definition_the_repository_no_longer_has_heals_nothing_and_fails_nothing() -> None:
    """With `prune: false` a removed definition's container stays; when it dies, its plan of
    that definition alone has nothing to do (the engine says so: no error in the watch's log,
    no failed request). Someone asking to apply an unknown definition is told it does not exist."""
    from syncer.core.errors import NotFound
    from syncer.core.model import Action, Plan
    from syncer.engine.deploy import _only

    net = Action("network create", "local", "", "p", 0, "absent")
    web = Action("noop", "local", "web", "web", 1, "in sync")
    whole = Plan("p", "c", False, "f", "now", (net, web), ())
    healed = _only(whole, "old", heal=True)
    assert healed.actions == () and not healed.has_changes
    with pytest.raises(NotFound, match="no definition 'old'"):
        _only(whole, "old")
    assert _only(whole, "web", heal=True).actions == (net, web)  # (its networks come along)


def test_a_heal_that_met_an_unreachable_server_is_tried_again_with_backoff(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a fault whose apply found its server away (one of several: the apply goes
    on for the others) was dropped; with `--resync 0` the container stayed dead. It is tried
    again, as after a Docker error, until the server answers."""
    calls: list[str | None] = []

    def fake_apply(ctx: Any, **kw: Any) -> Any:
        calls.append(kw.get("only"))
        report = _report(f"run_{len(calls)}")
        report.plan.unreachable = {"edge": "ssh: Connection refused"} if len(calls) < 3 else {}
        return report

    monkeypatch.setattr(engine, "apply", fake_apply)
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w.docker_backoff = 0.05  # (1 s, then doubling, in a watch)
    w.faults.event(SimpleNamespace(name="edge"), _Settled(), _die("id-web"))
    assert w.step(timeout=5) is True
    assert w.step(timeout=3) is True  # the retry, 0.05 s later
    assert w.step(timeout=3) is True  # and again, 0.1 s later: now it answers
    assert w.step(timeout=1) is False  # and nothing more
    assert calls == ["web", "web", "web"] and w.docker_backoff == 1.0


def test_watch_plans_on_any_file_of_the_work_tree_the_specs_may_read_not_git_state_or_editor_files() -> None:
    """QA: an edit of `files/web.env` (an env file the spec reads, part of its hash) triggered
    nothing: watch followed `.yaml` files only, so the edit was applied unannounced at a resync."""
    from syncer.engine.sources import watched

    state = "/repo/.syncer"
    for path in ("/repo/definitions/web.yaml", "/repo/files/web.env", "/repo/files/nginx.conf",
                 "/repo/secrets.sops.json", "/repo/.env"):
        assert watched(path, state), path
    for path in ("/repo/.git/index", "/repo/.syncer/state.db", "/repo/files/.web.env.swp", "/repo/files/web.env~",
                 "/repo/files/.#web.env"):
        assert not watched(path, state), path


def test_a_cycle_the_store_failed_is_tried_again_and_one_a_missing_secret_failed_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a self-heal whose cycle met the store locked past its busy timeout was dropped: the
    killed container stayed down after the store was writable again (until the next resync)."""
    from syncer.adapters.store.db import StoreError
    from syncer.core.errors import SecretError

    failure: list[Exception] = [StoreError("state database /x/state.db: database is locked")]

    def apply(ctx: Any, **kw: Any) -> Any:
        raise failure[0]

    monkeypatch.setattr(engine, "apply", apply)
    later: list[tuple[str, float, str | None]] = []
    w = Watcher(engine.Context(repo=tmp_path), WatchOptions())
    w.state = tmp_path
    monkeypatch.setattr(w, "later", lambda reason, delay, **kw: later.append((reason, delay, kw.get("definition"))))
    monkeypatch.setattr(w.faults, "heal_as_it_ran", lambda: None)
    w.request("docker: web die", kind=Kind.DOCKER, definition="web")
    assert w.step(timeout=1) is True
    w.request("docker: web die", kind=Kind.DOCKER, definition="web")
    assert w.step(timeout=1) is True
    assert later == [("retry after an error", 1.0, "web"), ("retry after an error", 2.0, "web")]  # (doubling)
    failure[0] = SecretError("secret TOKEN is not set")  # (a change of the repository or env is needed)
    w.request("resync", kind=Kind.TIMER)
    assert w.step(timeout=1) is True and len(later) == 2
