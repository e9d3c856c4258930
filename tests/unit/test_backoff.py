"""Watch's hold on a spec that failed and was rolled back (stages/backoff.py), and the store's
count of those failures."""

from __future__ import annotations

from pathlib import Path

from syncer.adapters.store import Store
from syncer.core.model import Action, Plan
from syncer.stages.backoff import Hold, holding, mark, wait_after

NOW = 1_000_000.0


def test_the_wait_doubles_from_the_base_up_to_twelve_times_it() -> None:
    assert [wait_after(n, 300) for n in (1, 2, 3, 4, 5, 6, 9)] == [300, 600, 1200, 2400, 3600, 3600, 3600]


def test_a_rolled_back_revision_is_held_at_the_last_good_one_until_its_wait_ends() -> None:
    wanted, good = {"web": 4, "db": 2}, {"web": 3, "db": 2}
    got = holding({"web": (2, NOW - 100)}, wanted, good, now=NOW, base=300)
    assert got == {"web": Hold(3, NOW - 100 + 600, 2)}
    assert holding({"web": (2, NOW - 601)}, wanted, good, now=NOW, base=300) == {}  # the wait is over
    assert holding({"web": (1, NOW)}, wanted, good, now=NOW, base=0) == {}  # --retry-failed 0
    assert holding({"web": (1, NOW)}, wanted, {}, now=NOW, base=300) == {}  # never deployed successfully
    # (the store's last good revision is the wanted one: nothing to go back to)
    assert holding({"db": (1, NOW)}, wanted, good, now=NOW, base=300) == {}


def test_a_held_definitions_actions_name_the_hold_at_its_revision() -> None:
    plan = Plan("p", None, False, "fp", "t", (
        Action("noop", "local", "web", "web", 5, "in sync", container_id="id-web"),
        Action("create", "local", "web", "web-2", 5, "container absent"),
        Action("noop", "local", "db", "db", 1, "in sync")))
    held = mark(plan, {"web": Hold(3, NOW, 2)})
    [web, web2, db] = held.actions
    assert (web.revision, web2.revision, web2.action) == (3, 3, "create") and db == plan.actions[2]
    assert web.cause.startswith("in sync; held at revision 3: the repository's spec failed and was rolled back"
                                " 2 times; watch tries it again at ")
    assert web2.cause.startswith("container absent; held at revision 3")
    assert mark(plan, {}) is plan


def test_the_store_counts_the_failures_of_a_revision_rolled_back_once_since_its_last_success(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        def deploy(revision: int, *, ok: bool, rolled_back: bool = False, definition: str = "web",
                   error: str = "") -> None:
            d = store.add_deployment(run_id=None, definition=definition, server="local", revision=revision,
                                     actions=["recreate"], trigger="watch", commit=None)
            store.deployment_running(d)
            store.finish_deployment(d, ok=ok, rolled_back=rolled_back, error=error)

        deploy(2, ok=False, rolled_back=True)
        deploy(2, ok=True)  # (an earlier try that worked)
        assert store.failures_of({"web": 2}) == {}
        deploy(3, ok=False)  # not rolled back (an image that could not be pulled): nothing stopped
        assert store.failures_of({"web": 3}) == {}
        deploy(3, ok=False, rolled_back=True)
        deploy(2, ok=True)  # the old container started again at its revision: revision 3 still fails
        deploy(3, ok=False)  # a retry whose old container was removed meanwhile: still a failure of it
        deploy(3, ok=False, error="skipped: dependency db failed or is in conflict")
        deploy(3, ok=False, error="interrupted")
        deploy(1, ok=False, rolled_back=True, definition="db")
        got = store.failures_of({"web": 3, "db": 2})
        assert set(got) == {"web"} and got["web"][0] == 3
        assert got["web"][1] == max(d["finished_at"] for d in store.deployments(definition="web")
                                    if d["revision"] == 3 and not d["error"])
    finally:
        store.close()
