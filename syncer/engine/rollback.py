"""Rollback: an earlier revision recorded again as a new one, pinned, and applied alone.

The definition stays pinned to the rolled-back revision until git next changes it (the pin
records the definition's hash in git at the time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from syncer.adapters.lock import ApplyLock
from syncer.adapters.store import Revision, Store
from syncer.core.errors import NotFound
from syncer.core.model import Plan
from syncer.engine.deploy import ApplyReport, Progress, apply_locked, quiet
from syncer.engine.events import EventSink, no_events, webhook_sink
from syncer.engine.project import Context, desired_state, load, secrets_for
from syncer.stages.plan import definition_hash

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory
    from syncer.engine.options import ApplyOptions


def rollback(ctx: Context, definition: str, *, to: int | None, options: ApplyOptions,
             confirm: Callable[[Plan], bool], progress: Progress = quiet,
             events: EventSink = no_events, engines: EngineFactory | None = None) -> ApplyReport:
    """Deploy revision `to` (default: the one before the latest) again, as a new revision.

    The definition stays pinned to it until git next changes that definition.
    """
    root = ctx.root()
    state = ctx.state(root)
    with ApplyLock(state, "syncer rollback"):
        project = load(ctx)
        if project.definition(definition) is None:
            raise NotFound(f"no definition '{definition}' in the project")
        store = Store(state)
        try:
            events = webhook_sink(ctx, project, store, events)
            store.recover()
            revisions = store.revisions(definition)
            if not revisions:
                raise NotFound(f"definition '{definition}' has no revisions yet (apply it first)")
            latest = revisions[0]
            target = _rollback_target(revisions, to)
            secrets = secrets_for(ctx, project)
            git_side = [c for c in desired_state(ctx, project, secrets=secrets, engines=engines).containers
                        if c.definition == definition]
            number = latest.number + 1
            with store.transaction():
                store.add_revision(definition, number, target.def_hash, target.specs, project.commit,
                                   rollback_of=target.number)
                store.pin(definition, number, definition_hash(git_side))
            progress(definition, f"revision {number} rolls back to revision {target.number}")
            events("deployment.rolled_back", {"definition": definition, "revision": number,
                                              "rollback_of": target.number})
            events("definition.updated", {"definition": definition, "revision": number,
                                          "rollback_of": target.number, "commit": project.commit})
            return apply_locked(ctx, project, store, options=options, confirm=confirm, plan_file=None,
                                 trigger="rollback", progress=progress, events=events, engines=engines,
                                 only=definition)
        finally:
            store.close()


def _rollback_target(revisions: list[Revision], to: int | None) -> Revision:
    if to is None:
        if len(revisions) < 2:
            raise NotFound(f"definition '{revisions[0].definition}' has only revision "
                           f"{revisions[0].number}: nothing to roll back to")
        latest = revisions[0]
        older = [r for r in revisions[1:] if r.def_hash != latest.def_hash]
        return older[0] if older else revisions[1]
    for r in revisions:
        if r.number == to:
            return r
    raise NotFound(f"definition '{revisions[0].definition}' has no revision {to}"
                   f" (revisions: {', '.join(str(r.number) for r in reversed(revisions))})")
