"""`pull_policy: always` follows the tag: the plan's decision, from what observe found in
the registry (ServerState.registry) and on the running image (LiveContainer.digests)."""

from __future__ import annotations

from dataclasses import replace

from syncer.core.model import Desired, LiveContainer, Observed, RegistryAnswer, ServerState
from syncer.stages.plan import fingerprint, plan
from tests.unit.test_plan import live, want

REF = "registry.example:5000/app:1"
OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def _spec(policy: str = "always") -> dict[str, object]:
    return {"image": REF, "pull_policy": policy}


def _plan(s: dict[str, object], c: LiveContainer, answer: RegistryAnswer, *, kind: str = "docker",
          held: frozenset[str] = frozenset()) -> tuple[str, str, list[tuple[str, object, object]]]:
    state = ServerState("local", True, managed=(c,), kind=kind, registry={REF: answer})
    [a] = plan(Desired("p", (want("web", s),), ("web",)), Observed("p", {"local": state}),
               prune=True, created_at="t", held=held).actions
    return a.action, a.cause, [(r.field, r.before, r.after) for r in a.reasons]


def _running(s: dict[str, object], digest: str, *, state: str = "running") -> LiveContainer:
    return replace(live("web", s, state=state), image="sha256:" + "9" * 64,
                   digests=(f"registry.example:5000/app@{digest}",))


def test_a_container_whose_tag_moved_in_the_registry_is_recreated_naming_both_digests() -> None:
    s = _spec()
    action, cause, reasons = _plan(s, _running(s, OLD), RegistryAnswer(digest=NEW))
    assert (action, cause) == ("recreate", f"{REF} names another image in its registry now")
    assert reasons == [("image", OLD[:19], NEW[:19])]


def test_a_container_running_what_the_tag_names_is_in_sync() -> None:
    s = _spec()
    assert _plan(s, _running(s, NEW), RegistryAnswer(digest=NEW))[:2] == ("noop", "in sync")


def test_a_stopped_container_whose_tag_moved_is_recreated_not_started_but_an_operators_hold_stands() -> None:
    s = _spec()
    assert _plan(s, _running(s, OLD, state="exited"), RegistryAnswer(digest=NEW))[0] == "recreate"
    held = _plan(s, _running(s, OLD, state="exited"), RegistryAnswer(digest=NEW), held=frozenset({"web"}))
    assert held[0] == "noop" and "held stopped" in held[1]


def test_an_image_built_here_with_no_registry_digest_counts_as_moved() -> None:
    s = _spec()
    c = replace(live("web", s), image="sha256:" + "9" * 64)
    assert _plan(s, c, RegistryAnswer(digest=NEW))[2] == [("image", "sha256:" + "9" * 12, NEW[:19])]


def test_a_registry_that_did_not_answer_changes_nothing_and_the_cause_says_why() -> None:
    s = _spec()
    action, cause, _ = _plan(s, _running(s, OLD), RegistryAnswer(error="ask the registry for x: refused"))
    assert action == "noop" and cause == "in sync; the tag was not checked: ask the registry for x: refused"


def test_other_pull_policies_never_follow_the_tag() -> None:
    s = _spec("missing")
    assert _plan(s, _running(s, OLD), RegistryAnswer(digest=NEW))[0] == "noop"


def test_a_service_whose_tag_moved_rolls_and_one_pinned_to_it_is_in_sync() -> None:
    s = _spec()
    service = replace(live("web", s), image=f"{REF}@{OLD}", digests=(f"{REF}@{OLD}",), replicas=1)
    action, cause, reasons = _plan(s, service, RegistryAnswer(digest=NEW), kind="swarm")
    assert (action, cause) == ("update", f"{REF} names another image in its registry now: Swarm rolls the service")
    assert reasons == [("image", OLD[:19], NEW[:19])]
    pinned = replace(service, image=f"{REF}@{NEW}", digests=(f"{REF}@{NEW}",))
    assert _plan(s, pinned, RegistryAnswer(digest=NEW), kind="swarm")[0] == "noop"


def test_a_plan_saved_before_the_tag_moved_is_stale() -> None:
    state = ServerState("local", True, registry={REF: RegistryAnswer(digest=OLD)})
    moved = replace(state, registry={REF: RegistryAnswer(digest=NEW)})
    assert fingerprint(Observed("p", {"local": state})) != fingerprint(Observed("p", {"local": moved}))


class _Asker:
    """A connection of its own to a fake engine: each question waits at a barrier that only
    opens when two questions are under way at once (asked one at a time, it breaks)."""

    def __init__(self, barrier: object, log: list[str]) -> None:
        self.barrier, self.log, self.api_version = barrier, log, ""

    def twin(self) -> _Asker:
        self.log.append("twin")
        return _Asker(self.barrier, self.log)

    def inspect_distribution(self, ref: str) -> dict[str, object]:
        self.barrier.wait()  # type: ignore[attr-defined]
        return {"Descriptor": {"digest": NEW if ref.endswith("api:1") else OLD}}

    def close(self) -> None:
        self.log.append("closed")


def test_several_followed_refs_are_asked_at_once_each_on_a_connection_of_its_own(
        tmp_path: object, monkeypatch: object) -> None:
    """A registry question is a round trip to a registry (~0.3-1 s to a public one): a plan
    with several followed images must not pay them one after the other."""
    import threading
    from types import SimpleNamespace

    from syncer.adapters.images import registry_digests

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # type: ignore[attr-defined]  # no docker login
    log: list[str] = []
    light = _Asker(threading.Barrier(2, timeout=10), log)
    engine = SimpleNamespace(light=light, reads=light, _call=lambda what, fn, *a: fn(*a))
    refs = ["reg:5000/web:1", "reg:5000/api:1", "reg:5000/web:1"]
    answers = registry_digests(engine, refs)  # type: ignore[arg-type]
    assert answers == {"reg:5000/api:1": RegistryAnswer(digest=NEW), "reg:5000/web:1": RegistryAnswer(digest=OLD)}
    assert sorted(log) == ["closed", "closed", "twin", "twin"]  # each its own, and each closed


def test_a_deployment_records_what_each_followed_tag_named_when_planned_and_nothing_else() -> None:
    from syncer.stages.tags import heard

    other = "registry.example:5000/db:2"
    desired = [want("web", _spec()), want("web-2", _spec(), definition="web", replica=2),
               want("db", {"image": other, "pull_policy": "always"}),
               want("cache", _spec("missing")),  # not followed: its revision says what runs
               want("job", {**_spec(), "kind": "job"}),  # a job runs once: not followed
               want("far", _spec(), server="far")]
    answers = {"local": {REF: RegistryAnswer(digest=NEW), other: RegistryAnswer(error="registry down")},
               "far": {REF: RegistryAnswer(digest=OLD)}}
    assert heard(desired, answers) == {("web", "local"): {REF: NEW}, ("far", "far"): {REF: OLD}}
    assert heard(desired, {}) == {}


def test_a_rollback_pins_each_followed_tag_to_the_digest_its_deployment_ran() -> None:
    from syncer.core import labels as L
    from syncer.stages.tags import pin_digests, repository

    assert [repository(r) for r in (REF, "app", "app:1", "host:5000/app", f"host:5000/a/app:1@{OLD}")] \
        == ["registry.example:5000/app", "app", "app", "host:5000/app", "host:5000/a/app"]
    followed_, fixed, job = want("web", _spec()), want("db", _spec("missing")), want("job", {**_spec(), "kind": "job"})
    web, db, j = pin_digests([followed_, fixed, job], {REF: OLD})
    assert web.spec["image"] == f"registry.example:5000/app@{OLD}" and web.spec_hash == L.spec_hash(web.spec)
    assert (db, j) == (fixed, job)  # not followed: the revision says what runs
    assert pin_digests([followed_], {}) == [followed_]
    # pinned, it follows nothing: no registry question (observe asks for followed specs only),
    # no roll when the tag moves, and no digest recorded for a tag it no longer names
    from syncer.stages.tags import followed, heard

    assert followed(followed_) and not followed(web)
    assert heard([web], {"local": {web.spec["image"]: RegistryAnswer(digest=NEW)}}) == {}
