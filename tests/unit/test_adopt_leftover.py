"""A recreate killed in its health wait leaves `<name>_syncer-new`: the next plan adopts it
when it runs the wanted spec at the planned revision (QA F7), else removes it first as before
(stages/interrupted.adopt)."""

from __future__ import annotations

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, Desired, LiveContainer, Observed, Reason, ServerState
from syncer.engine.containers import _stopped_after
from syncer.stages.interrupted import adopts
from syncer.stages.plan import definition_hash, plan

OLD: dict[str, object] = {"image": "busybox:latest", "env": {"V": "a"}}
NEW: dict[str, object] = {"image": "busybox:latest", "env": {"V": "b"}}
TEMP = f"web{L.TEMP_SUFFIX}"
ADOPTED = f"finishing an interrupted recreate: {TEMP} already runs the wanted spec"


def _want() -> ContainerSpec:
    return ContainerSpec("p", "local", "web", 1, "web", "box@1", NEW, L.spec_hash(NEW))


def _live(name: str, spec: dict[str, object], *, state: str = "running", revision: int = 2,
          health: str | None = "starting") -> LiveContainer:
    labels = L.container_labels(project="p", definition="web", replica=1, revision=revision,
                                spec_hash_=L.spec_hash(spec), template_ref="box@1", commit=None, spec=spec)
    return LiveContainer(f"id-{name}", name, "local", state, health, labels)


def _plan(*live: LiveContainer) -> dict[str, Action]:
    desired = Desired("p", (_want(),), ("web",))
    observed = Observed("p", {"local": ServerState("local", True, managed=live)})
    known = {"web": (2, definition_hash([_want()]))}  # the interrupted apply recorded revision 2
    return {a.container: a for a in plan(desired, observed, prune=True, created_at="t", known=known).actions}


def test_a_leftover_running_the_wanted_spec_is_adopted_by_the_recreate_not_removed() -> None:
    got = _plan(_live("web", OLD, state="exited", revision=1), _live(TEMP, NEW))
    assert set(got) == {"web"}  # no `remove web_syncer-new`
    web = got["web"]
    assert (web.action, web.container_id, web.revision) == ("recreate", "id-web", 2)
    assert web.cause == f"spec changed (the container is exited); {ADOPTED}"
    assert web.reasons[0] == Reason("name", TEMP, "web") and adopts(web)
    assert [r.field for r in web.reasons[1:]] == ["env.V"]


def test_with_the_old_container_gone_already_the_create_adopts_it() -> None:
    web = _plan(_live(TEMP, NEW, health="healthy"))["web"]
    assert (web.action, web.cause, web.container_id) == ("create", f"container absent; {ADOPTED}", "")
    assert adopts(web)


def test_a_leftover_of_another_spec_revision_state_or_health_is_removed_first_as_before() -> None:
    old = _live("web", OLD, state="exited", revision=1)
    for left in (_live(TEMP, OLD, revision=1), _live(TEMP, NEW, revision=3), _live(TEMP, NEW, state="created"),
                 _live(TEMP, NEW, health="unhealthy")):
        got = _plan(old, left)
        assert got[TEMP].action == "remove" and got[TEMP].cause == "left over from an interrupted recreate"
        assert got["web"].action == "recreate" and not adopts(got["web"]), left
        assert "interrupted" not in got["web"].cause


def test_the_old_container_is_restored_only_when_the_recreate_stopped_it() -> None:
    made = {"Created": "2026-12-03T19:00:01.5Z"}
    stopped = {"State": {"Running": False, "FinishedAt": "2026-12-03T19:00:01.75Z"}}
    before = {"State": {"Running": False, "FinishedAt": "2026-12-03T19:00:01.123456789Z"}}
    never = {"State": {"Running": False, "FinishedAt": "0001-01-01T00:00:00Z"}}
    assert _stopped_after(stopped, made)
    assert not _stopped_after(before, made) and not _stopped_after(never, made) and not _stopped_after({}, made)
