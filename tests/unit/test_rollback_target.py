"""Which revision a rollback deploys again, and at which digests its followed tags
(engine/rollback.py: decided from the store's revisions and deployments, newest first)."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.adapters.store import Revision
from syncer.core.errors import NotFound
from syncer.engine.rollback import rollback_target

A, B = {"app:1": "sha256:" + "a" * 64}, {"app:1": "sha256:" + "b" * 64}


def _rev(number: int, def_hash: str) -> Revision:
    return Revision("web", number, def_hash, [], None, "t", None)


def _dep(revision: int, images: dict[str, str], status: str = "success") -> dict[str, Any]:
    return {"revision": revision, "images": images, "status": status}


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
