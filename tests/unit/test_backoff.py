"""Watch's back-off on a spec that failed (stages/backoff.py): held at the last good revision
after a rollback, deferred for a failed job or first deployment; and the store's count of
those failures."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from syncer.adapters.store import Store
from syncer.core.model import Action, Plan
from syncer.stages.backoff import CAP, Hold, holding, mark, wait_after

NOW = 1_000_000.0


def test_the_wait_doubles_from_the_base_up_to_twelve_times_it() -> None:
    assert [wait_after(n, 300) for n in (1, 2, 3, 4, 5, 6, 9)] == [300, 600, 1200, 2400, 3600, 3600, 3600]


def test_a_rolled_back_revision_is_held_at_the_last_good_one_until_its_wait_ends() -> None:
    wanted, good = {"web": 4, "db": 2}, {"web": 3, "db": 2}
    got = holding({"web": (2, True, NOW - 100)}, wanted, good, now=NOW, base=300)
    assert got == {"web": Hold(3, NOW - 100 + 600, 2)}
    assert holding({"web": (2, True, NOW - 601)}, wanted, good, now=NOW, base=300) == {}  # the wait is over
    assert holding({"web": (1, True, NOW)}, wanted, good, now=NOW, base=0) == {}  # --retry-failed 0
    # (the store's last good revision is the wanted one: nothing to go back to)
    assert holding({"db": (1, True, NOW)}, wanted, good, now=NOW, base=300) == {}
    # none rolled back (an image that could not be pulled): what ran was never stopped
    assert holding({"web": (1, False, NOW)}, wanted, good, now=NOW, base=300) == {}


def test_a_failed_job_or_first_deployment_is_deferred_for_the_same_wait() -> None:
    """Nothing earlier to hold at: each cycle ran the job again, or created the container
    again and waited out its health timeout. Deferred (revision None) as long as a rolled-back
    spec would be held."""
    wanted, good = {"job": 2, "web": 1, "new-job": 1}, {"job": 1}
    got = holding({"job": (1, False, NOW - 100), "web": (3, False, NOW - 100), "new-job": (2, False, NOW)},
                  wanted, good, now=NOW, base=300, jobs={"job", "new-job"})
    assert got == {"job": Hold(None, NOW + 200, 1, job=True), "web": Hold(None, NOW - 100 + 1200, 3),
                   "new-job": Hold(None, NOW + 600, 2, job=True)}
    assert holding({"web": (3, False, NOW - 1200)}, wanted, good, now=NOW, base=300) == {}  # the wait is over
    assert holding({"job": (1, False, NOW)}, wanted, good, now=NOW, base=0, jobs={"job"}) == {}  # --retry-failed 0


@given(count=st.integers(1, 40), back=st.booleans(), good=st.none() | st.integers(1, 9), job=st.booleans(),
       ago=st.floats(0, 50_000), base=st.floats(0, 1000))
def test_a_spec_is_held_or_deferred_exactly_while_its_wait_runs(count: int, back: bool, good: int | None, job: bool,
                                                                ago: float, base: float) -> None:
    """Whatever the failures: nothing is held once the wait (`base` doubling, at most CAP times
    it) has passed, or with a base of 0; a job, or a definition never deployed, is deferred
    while it runs; anything else only held when rolled back, at its last good revision."""
    got = holding({"d": (count, back, NOW - ago)}, {"d": 10}, {} if good is None else {"d": good}, now=NOW,
                  base=base, jobs={"d"} if job else ())
    assert wait_after(count, base) == min(base * 2 ** (count - 1), base * CAP)
    until = NOW - ago + wait_after(count, base)
    if base <= 0 or NOW >= until:
        assert got == {}
    elif job or good is None:
        assert got == {"d": Hold(None, until, count, job=job)}
    else:
        assert got == ({"d": Hold(good, until, count)} if back else {})


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


def test_a_deferred_definitions_actions_are_noops_naming_the_wait() -> None:
    plan = Plan("p", None, False, "fp", "t", (
        Action("run", "local", "job", "job", 2, "the job's last run failed (exit 3)", container_id="id-job"),
        Action("create", "local", "web", "web", 1, "container absent"),
        Action("noop", "local", "db", "db", 1, "in sync")))
    held = mark(plan, {"job": Hold(None, NOW, 2, job=True), "web": Hold(None, NOW, 1)})
    [job, web, db] = held.actions
    assert (job.action, job.revision, job.container_id, web.action, web.revision) == ("noop", 2, "id-job", "noop", 1)
    assert job.cause.startswith("the job's last run failed (exit 3); deferred: the job failed 2 times;"
                                " watch tries it again at ")
    assert web.cause.startswith("container absent; deferred: its first deployment failed once; watch tries it")
    assert db == plan.actions[2] and not held.has_changes


def test_what_depends_on_a_deferred_definition_waits_for_it_but_is_still_healed() -> None:
    """A dependent of a deferred definition was made without it at every cycle (and, when the
    dependency failed in the same apply, recorded `skipped` each time). It waits, also through
    another dependent, until the same moment; a held (rolled-back) dependency runs its old
    revision, so its dependents go on; a dependent's own hold stands; and what runs of a
    dependent is still started again (self-heal never waits)."""
    deps = {"app": ("db",), "web": ("app",), "cache": ("old",), "mine": ("db",), "free": ()}
    got = holding({"db": (2, False, NOW), "old": (1, True, NOW), "mine": (1, True, NOW)},
                  {"db": 1, "old": 4, "mine": 3}, {"old": 3, "mine": 2}, now=NOW, base=300, deps=deps)
    assert got == {"db": Hold(None, NOW + 600, 2), "old": Hold(3, NOW + 300, 1), "mine": Hold(2, NOW + 300, 1),
                   "app": Hold(None, NOW + 600, 0, after="db"), "web": Hold(None, NOW + 600, 0, after="db")}
    plan = Plan("p", None, False, "fp", "t", (
        Action("create", "local", "app", "app", 1, "container absent"),
        Action("start", "local", "web", "web", 1, "container is exited"),
        Action("recreate", "local", "web", "web-2", 2, "spec changed")))
    [app, web, web2] = mark(plan, got).actions
    assert (app.action, web.action, web2.action) == ("noop", "start", "noop") and web == plan.actions[1]
    assert app.cause.startswith("container absent; deferred: it depends on db, whose deployment failed; watch tries")


def test_the_store_counts_the_failures_of_a_revision_since_its_last_success_and_if_one_rolled_back(tmp_path: Path) -> None:
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
        deploy(3, ok=False)  # not rolled back (an image that could not be pulled): counted, said so
        assert [v[:2] for v in store.failures_of({"web": 3}).values()] == [(1, False)]
        deploy(3, ok=False, rolled_back=True)
        deploy(2, ok=True)  # the old container started again at its revision: revision 3 still fails
        deploy(3, ok=False)  # a retry whose old container was removed meanwhile: still a failure of it
        deploy(3, ok=False, error="skipped: dependency db failed or is in conflict")
        deploy(3, ok=False, error="interrupted")
        deploy(1, ok=False, rolled_back=True, definition="db")
        got = store.failures_of({"web": 3, "db": 2})
        assert set(got) == {"web"} and got["web"][:2] == (3, True)  # (db's revision 2 never failed)
        assert got["web"][2] == max(d["finished_at"] for d in store.deployments(definition="web")
                                    if d["revision"] == 3 and not d["error"])
    finally:
        store.close()
