"""Which revision a rollback deploys again, and at which digests its followed tags
(engine/rollback.py: decided from the store's revisions and deployments, newest first)."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.adapters.store import Revision
from syncer.core.errors import Conflict, NotFound
from syncer.engine.rollback import rollback_target, undo_target

A, B = {"app:1": "sha256:" + "a" * 64}, {"app:1": "sha256:" + "b" * 64}


def _rev(number: int, def_hash: str) -> Revision:
    return Revision("web", number, def_hash, [], None, "t", None)


def _dep(revision: int, images: dict[str, str], status: str = "success", ident: str = "") -> dict[str, Any]:
    return {"id": ident or f"dep-{revision}-{status}-{sorted(images.values())}", "definition": "web",
            "revision": revision, "images": images, "status": status}


def test_a_tag_that_moved_under_one_revision_goes_back_to_the_digest_before() -> None:
    revisions = [_rev(1, "h1")]
    target, images = rollback_target(revisions, [_dep(1, B), _dep(1, A)], None)
    assert (target.number, images) == (1, A)


def test_a_self_heal_which_records_no_digest_does_not_stand_for_what_ran() -> None:
    revisions = [_rev(1, "h1")]
    target, images = rollback_target(revisions, [_dep(1, {}), _dep(1, B), _dep(1, A)], None)
    assert (target.number, images) == (1, A)


def test_another_revision_goes_back_with_the_digests_it_last_ran() -> None:
    revisions = [_rev(2, "h2"), _rev(1, "h1")]
    deployments = [_dep(2, B), _dep(1, B), _dep(1, A)]
    assert rollback_target(revisions, deployments, None) == (revisions[1], B)
    assert rollback_target(revisions, deployments, 1) == (revisions[1], B)
    assert rollback_target(revisions, [_dep(2, {}), _dep(1, {})], None) == (revisions[1], {})


def test_a_failed_latest_revision_goes_back_to_what_ran_before_it() -> None:
    revisions = [_rev(3, "h3"), _rev(2, "h2"), _rev(1, "h1")]
    deployments = [_dep(3, {}, "failed"), _dep(2, A), _dep(1, B)]
    assert rollback_target(revisions, deployments, None) == (revisions[1], A)


def test_without_a_history_of_images_the_revision_before_the_latest_as_always() -> None:
    revisions = [_rev(2, "h2"), _rev(1, "h1")]
    assert rollback_target(revisions, [], None) == (revisions[1], {})
    with pytest.raises(NotFound, match="nothing to roll back to"):
        rollback_target([_rev(1, "h1")], [_dep(1, A)], None)
    with pytest.raises(NotFound, match="has no revision 7"):
        rollback_target(revisions, [], 7)


def test_undoing_a_tag_roll_goes_back_to_the_digest_it_replaced() -> None:
    revisions = [_rev(1, "h1")]
    history = [_dep(1, A, ident="d3"), _dep(1, B, ident="d2"), _dep(1, A, ident="d1")]
    assert undo_target(revisions, history, history[1]) == (revisions[0], A)  # d2 rolled A → B
    assert undo_target(revisions, history, history[0]) == (revisions[0], B)  # d3 rolled B → A
    with pytest.raises(Conflict, match="nothing ran before it"):
        undo_target(revisions, history, history[2])


def test_undoing_a_revision_goes_back_to_what_ran_before_it_not_to_what_runs_now() -> None:
    revisions = [_rev(3, "h3"), _rev(2, "h2"), _rev(1, "h1")]
    history = [_dep(3, {}, ident="d3"), _dep(2, {}, ident="d2"), _dep(1, {}, ident="d1")]
    assert undo_target(revisions, history, history[1]) == (revisions[2], {})
    failed = _dep(2, {}, "failed", ident="d2f")  # a failed deployment is undone as well
    assert undo_target(revisions, [history[0], failed, history[2]], failed) == (revisions[2], {})


def test_an_undone_self_heal_stands_for_what_its_revision_ran_and_an_old_one_falls_back_to_revisions() -> None:
    revisions = [_rev(2, "h2"), _rev(1, "h1")]
    history = [_dep(2, {}, ident="heal"), _dep(2, B, ident="d2"), _dep(1, A, ident="d1")]
    assert undo_target(revisions, history, history[0]) == (revisions[1], A)
    gone = _dep(2, B, ident="beyond-the-history")  # older than the deployments looked through
    assert undo_target(revisions, history, gone) == (revisions[1], A)
