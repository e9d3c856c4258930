"""The revisions a plan is made at besides the repository's: a rollback's pins (a definition
kept at a recorded revision until git changes it), the holds of instances stopped through
syncer, a recorded revision's containers as render makes them, and the number of a
rollback's new revision. Reads only, but for `forget_lapsed`, which the apply that acts on a
plan calls under its lock."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING

from syncer.adapters.store import Revision, Store
from syncer.core.model import ContainerSpec, Desired, Project
from syncer.stages.plan import definition_hash, next_revision

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory
    from syncer.engine.project import Planned


def _by_definition(desired: Desired) -> dict[str, list[ContainerSpec]]:
    out: dict[str, list[ContainerSpec]] = {}
    for c in desired.containers:
        out.setdefault(c.definition, []).append(c)
    return out


def pinned(store: Store, desired: Desired) -> tuple[Desired, list[str]]:
    """Definitions pinned by a rollback keep the pinned revision until git changes them.
    Returns the desired state and the pins that lapsed (git changed their definition)."""
    pins = store.pins()
    if not pins:
        return desired, []
    kept, lapsed = {}, []
    for name, containers in _by_definition(desired).items():
        if name in pins:
            if definition_hash(containers) == pins[name][1]:
                kept[name] = pins[name][0]
            else:
                lapsed.append(name)
    return at_revisions(store, desired, kept), lapsed


def at_revisions(store: Store, desired: Desired, revisions: Mapping[str, int]) -> Desired:
    """`desired` with the containers of each definition named those of its recorded revision."""
    if not revisions:
        return desired
    out: list[ContainerSpec] = []
    for name, containers in _by_definition(desired).items():
        out.extend(from_revision(store.revision(name, revisions[name]), desired.project) if name in revisions
                   else containers)
    return Desired(desired.project, tuple(out), desired.definitions, desired.commit)


def held(store: Store, desired: Desired) -> tuple[frozenset[str], list[str]]:
    """Containers held stopped whose definition has not changed since, and the holds that
    lapsed (their definition changed or is gone)."""
    holds = store.holds()
    if not holds:
        return frozenset(), []
    by_def = _by_definition(desired)
    kept, lapsed = set(), []
    for container, (definition, def_hash) in holds.items():
        if definition in by_def and definition_hash(by_def[definition]) == def_hash:
            kept.add(container)
        else:
            lapsed.append(container)
    return frozenset(kept), lapsed


def forget_lapsed(store: Store, p: Planned) -> None:
    """Drop the pins and holds that lapsed: done by an apply, under its lock, never by a read."""
    for name in p.lapsed_pins:
        store.unpin(name)
    for container in p.lapsed_holds:
        store.release(container)


def next_number(project: Project, definition: str, stored: int, engines: EngineFactory | None = None) -> int:
    """A rollback's new revision: numbered as a plan numbers one (`stages.plan.next_revision`),
    above the store's `stored` and what the definition's containers (services) carry on the
    servers that answer: a state dir restored from an older copy must not reuse a number a
    live container already means another spec by."""
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import observe

    observed = observe(project.config.name, project.config.servers, None, engines=engines or Engine,
                       definition=definition, tags=False)
    return next_revision(stored, [c for s in observed.servers.values() for c in s.managed
                                  if c.definition == definition])


def from_revision(rev: Revision, project: str) -> list[ContainerSpec]:
    """A recorded revision's containers, as render makes them."""
    return [ContainerSpec(project, s["server"], rev.definition, int(s["replica"]), s["name"], s["template_ref"],
                          s["spec"], s["spec_hash"], tuple(s.get("depends_on", ())),
                          {k: base64.b64decode(v) for k, v in (s.get("payload") or {}).items()})
            for s in rev.specs]
