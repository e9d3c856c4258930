"""Rollback: what ran before recorded again as a new revision, pinned, and applied alone.

What ran before is an earlier revision, or the same one while its followed tags named other
images (`deployments.images`): those tags are pinned to the digests recorded then. The
definition stays pinned to the new revision until git next changes it (the pin records the
definition's hash in git at the time). The new revision is numbered as a plan numbers one:
above the store's latest and the labels of the definition's live containers
(`revisions.next_number`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from syncer.adapters.lock import ApplyLock
from syncer.adapters.store import Revision, Store
from syncer.core.errors import Conflict, NotFound, SecretError
from syncer.core.labels import changed_secrets
from syncer.core.model import Plan
from syncer.engine.deploy import ApplyReport, Progress, apply_locked, quiet, specs_of
from syncer.engine.events import EventSink, no_events, webhook_sink
from syncer.engine.project import Context, hash_key, load, rendered, secrets_for
from syncer.engine.revisions import from_revision, next_number
from syncer.stages.plan import definition_hash
from syncer.stages.tags import pin_digests

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory
    from syncer.engine.options import ApplyOptions


def rollback(ctx: Context, definition: str, *, to: int | None, options: ApplyOptions,
             confirm: Callable[[Plan], bool], progress: Progress = quiet,
             events: EventSink = no_events, engines: EngineFactory | None = None,
             undo: Mapping[str, Any] | None = None) -> ApplyReport:
    """Deploy revision `to`, or by default what ran before (`rollback_target`), again as a
    new revision; `undo` (one of the definition's deployments): what that deployment replaced
    (`undo_target`). The definition stays pinned to it until git next changes that definition.
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
            history = store.deployments(definition=definition, limit=HISTORY)
            target, images = (undo_target(revisions, history, undo) if undo is not None
                              else rollback_target(revisions, history, to))
            secrets = secrets_for(ctx, project)
            key = hash_key(ctx, project, engines)  # (once: it may ask the servers for it)
            if changed := changed_secrets(target.specs, secrets, key):
                # (its old value is nowhere: deploying the revision would write today's under its name)
                raise SecretError(f"rollback of '{definition}' to revision {target.number}: secret"
                                  f" {', '.join(sorted(changed))} changed since, and syncer never keeps a secret's"
                                  " old value: set it back to that value to roll back, or apply the current one")
            git_side = [c for c in rendered(ctx, project, secrets, key).containers if c.definition == definition]
            def_hash, specs = target.def_hash, target.specs
            if images:  # each followed tag back at the digest that deployment ran
                containers = pin_digests(from_revision(target, project.config.name), images)
                def_hash, specs = definition_hash(containers), specs_of(containers)
            number, before = next_number(project, definition, latest.number, engines), store.pins().get(definition)
            with store.transaction():
                store.add_revision(definition, number, def_hash, specs, project.commit, rollback_of=target.number)
                store.pin(definition, number, definition_hash(git_side))
            progress(definition, f"revision {number} rolls back to revision {target.number}"
                     + "".join(f"; {ref} at {digest}" for ref, digest in sorted(images.items())))
            report = None
            try:
                report = apply_locked(ctx, project, store, options=options, confirm=confirm, plan_file=None,
                                      trigger="rollback", progress=progress, events=events, engines=engines,
                                      only=definition)
            finally:
                if report is None or not_applied(report, definition):
                    # declined, or nothing of it could run (its server away): the revision and the pin
                    # go, or the next apply (or watch's resync) would carry out what was not
                    with store.transaction():
                        store.drop_revision(definition, number)
                        if before is not None:
                            store.pin(definition, *before)
                        else:
                            store.unpin(definition)
                    progress(definition, f"revision {number} not applied: dropped")
            if not not_applied(report, definition):
                events("deployment.rolled_back", {"definition": definition, "revision": number,
                                                  "rollback_of": target.number})
                events("definition.updated", {"definition": definition, "revision": number,
                                              "rollback_of": target.number, "commit": project.commit})
            return report
        finally:
            store.close()


def not_applied(report: ApplyReport, definition: str) -> bool:
    """True when the rollback's plan would change the definition and none of it ran (not
    confirmed, or blocked): a plan with nothing to do keeps the pin (what runs is the target)."""
    changes = [a for a in report.plan.actions if a.definition == definition and a.action != "noop"]
    return bool(changes) and not any(r.definition == definition for r in report.results)


HISTORY = 200  # the deployments a rollback looks back through


def rollback_target(revisions: list[Revision], deployments: list[dict[str, Any]], to: int | None
                    ) -> tuple[Revision, dict[str, str]]:
    """The revision to deploy again, and the digests its followed tags go back to (tag →
    digest, as `deployments.images` recorded them; `{}` when nothing was followed).

    With `to`: that revision, at the digests its last successful deployment ran. Without:
    the last successful deployment that ran something else than the latest revision does now
    (another revision, or the same one while its tags named other images: a tag that moved
    makes no new revision); without one, the revision before the latest (as always)."""
    by_number = {r.number: r for r in revisions}
    done = _ran(deployments, by_number)
    if to is not None:
        target = _rollback_target(revisions, to)
        return target, next((dict(d["images"]) for d in done if d["revision"] == to), {})
    latest = revisions[0]
    now: tuple[str, dict[str, str]] = (latest.def_hash,
                                       next((d["images"] for d in done if d["revision"] == latest.number), {}))
    for d in done:
        if (by_number[d["revision"]].def_hash, d["images"]) != now:
            return by_number[d["revision"]], dict(d["images"])
    return _rollback_target(revisions, None), {}


def undo_target(revisions: list[Revision], deployments: list[dict[str, Any]], undone: Mapping[str, Any]
                ) -> tuple[Revision, dict[str, str]]:
    """What the deployment `undone` replaced, as `rollback_target` answers: the last successful
    deployment before it that ran something else than it did (another revision, or the same
    one while its tags named other images); without one in `deployments` (newest first), the
    newest revision before its own that renders differently, at its last digests."""
    by_number = {r.number: r for r in revisions}
    ids = [d["id"] for d in deployments]
    earlier = set(ids[ids.index(undone["id"]) + 1:]) if undone["id"] in ids else set()
    done = [d for d in _ran(deployments, by_number) if d["id"] in earlier]
    number = int(undone["revision"])
    mine = by_number.get(number)
    # a deployment that recorded no digest (a self-heal) ran what the one before it at its revision did
    images: dict[str, str] = undone["images"] or next((d["images"] for d in done if d["revision"] == number), {})
    for d in done:
        if mine is None or (by_number[d["revision"]].def_hash, d["images"]) != (mine.def_hash, images):
            return by_number[d["revision"]], dict(d["images"])
    older = [r for r in revisions if r.number < number and (mine is None or r.def_hash != mine.def_hash)]
    if not older:
        raise Conflict(f"deployment {undone['id']} put definition '{undone['definition']}' at revision {number};"
                       " nothing ran before it to roll back to")
    return rollback_target(revisions, deployments, older[0].number)


def _ran(deployments: list[dict[str, Any]], by_number: Mapping[int, Revision]) -> list[dict[str, Any]]:
    """The successful deployments of known revisions (newest first) that say what ran: once a
    definition follows tags, one that recorded no digest (a self-heal, which asks no registry)
    does not."""
    done = [d for d in deployments if d["status"] == "success" and d["revision"] in by_number]
    return [d for d in done if d["images"]] if any(d["images"] for d in done) else done


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
