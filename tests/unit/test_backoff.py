"""Watch's hold on a spec that failed and was rolled back (stages/backoff.py), and the store's
count of those failures."""

from __future__ import annotations

from pathlib import Path

from syncer.adapters.store import Store
from syncer.core.model import Action, LiveContainer, Observed, Plan, ServerState
from syncer.stages.backoff import hold_failed, wait_after

NOW = 1_000_000.0


def _live(name: str, spec_hash: str, *, state: str = "running", definition: str = "web") -> LiveContainer:
    return LiveContainer(f"id-{name}", name, "local", state, None,
                         {"syncer.definition": definition, "syncer.spec-hash": spec_hash})


def _plan(*actions: Action) -> Plan:
    return Plan("p", None, False, "fp", "t", actions)


def _recreate(name: str, *, definition: str = "web", action: str = "recreate") -> Action:
    return Action(action, "local", definition, name, 2, "spec changed", spec_hash="new", container_id=f"id-{name}")


def _observed(*live: LiveContainer) -> Observed:
    return Observed("p", {"local": ServerState("local", True, managed=live)})


def test_the_wait_doubles_from_the_base_up_to_twelve_times_it() -> None:
    assert [wait_after(n, 300) for n in (1, 2, 3, 4, 5, 6, 9)] == [300, 600, 1200, 2400, 3600, 3600, 3600]


def test_a_rolled_back_spec_is_held_until_its_wait_ends() -> None:
    plan = _plan(_recreate("web"), Action("noop", "local", "db", "db", 1, "in sync", container_id="id-db"))
    observed = _observed(_live("web", "old"), _live("db", "x", definition="db"))
    held, until = hold_failed(plan, observed, {"web": (2, NOW - 100)}, now=NOW, base=300)
    assert until == {"web": NOW - 100 + 600}
    [web, db] = held.actions
    assert web.action == "noop" and web.cause.startswith("held: this spec failed and was rolled back 2 times")
    assert db == plan.actions[1]
    assert not held.has_changes
    # the wait is over: tried again
    again, none = hold_failed(plan, observed, {"web": (2, NOW - 601)}, now=NOW, base=300)
    assert again is plan and none == {}


def test_nothing_is_held_without_a_failure_or_with_a_base_of_zero() -> None:
    plan = _plan(_recreate("web"))
    observed = _observed(_live("web", "old"))
    assert hold_failed(plan, observed, {}, now=NOW, base=300) == (plan, {})
    assert hold_failed(plan, observed, {"web": (1, NOW)}, now=NOW, base=0) == (plan, {})


def test_self_heal_does_not_wait() -> None:
    """A held definition's container that stopped meanwhile (killed behind syncer's back) is
    started again as it ran, at its own revision; one that is gone, or a replica to add, lifts
    the hold: its actions run, whatever failed before."""
    failures = {"web": (1, NOW)}
    killed = LiveContainer("id-web", "web", "local", "exited", None,
                           {"syncer.definition": "web", "syncer.spec-hash": "old", "syncer.revision": "1"})
    plan = _plan(_recreate("web"), _recreate("web-2"))
    held, until = hold_failed(plan, _observed(killed, _live("web-2", "old")), failures, now=NOW, base=300)
    [start, noop] = held.actions
    assert (start.action, start.revision, start.spec_hash, start.container_id) == ("start", 1, "old", "id-web")
    assert start.cause.endswith("; started again as it ran") and noop.action == "noop" and until == {"web": NOW + 300}
    # gone (the id is another's), or a create: not held
    plan = _plan(_recreate("web"))
    assert hold_failed(plan, _observed(_live("other", "old")), failures, now=NOW, base=300) == (plan, {})
    plan = _plan(_recreate("web"), Action("create", "local", "web", "web-3", 2, "missing", spec_hash="new"))
    assert hold_failed(plan, _observed(_live("web", "old")), failures, now=NOW, base=300) == (plan, {})


def test_a_live_object_already_at_the_spec_is_not_held() -> None:
    """A Swarm service changed by hand (its label names the repository's spec): rolled back at once."""
    plan = _plan(_recreate("web", action="update"))
    assert hold_failed(plan, _observed(_live("web", "new")), {"web": (1, NOW)}, now=NOW, base=300) == (plan, {})
    held, until = hold_failed(plan, _observed(_live("web", "old")), {"web": (1, NOW)}, now=NOW, base=300)
    assert held.actions[0].action == "noop" and until == {"web": NOW + 300}


def test_the_store_counts_rolled_back_failures_of_a_revision_since_the_last_success(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        def deploy(revision: int, *, ok: bool, rolled_back: bool = False, definition: str = "web") -> None:
            d = store.add_deployment(run_id=None, definition=definition, server="local", revision=revision,
                                     actions=["recreate"], trigger="watch", commit=None)
            store.deployment_running(d)
            store.finish_deployment(d, ok=ok, rolled_back=rolled_back)

        deploy(2, ok=False, rolled_back=True)
        deploy(2, ok=True)  # (an earlier try that worked)
        assert store.rolled_back_failures({"web": 2}) == {}
        deploy(3, ok=False, rolled_back=True)
        deploy(3, ok=False)  # not rolled back (an image that could not be pulled): nothing stopped
        deploy(2, ok=True)  # the old container started again as it ran: revision 3 still fails
        deploy(3, ok=False, rolled_back=True)
        deploy(1, ok=False, rolled_back=True, definition="db")
        got = store.rolled_back_failures({"web": 3, "db": 2})
        assert set(got) == {"web"} and got["web"][0] == 2
        assert got["web"][1] == max(d["finished_at"] for d in store.deployments(definition="web")
                                    if d["revision"] == 3 and d["rolled_back"])
    finally:
        store.close()
