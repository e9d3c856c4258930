"""What a plan decides alike on a Docker server and on a Swarm one: a name another holds, a
job's run (once per spec), and the field-level reasons of a spec that changed. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, LiveContainer, Reason
from syncer.stages.files import changed_sources

RUNNING_STATES = ("running", "restarting")


def conflict(other: LiveContainer, what: str, base: dict[str, Any]) -> Action:
    """A name held by `other` (`what`: a container or a service), which is not this spec's:
    nothing is done, and the cause names who holds it."""
    owner = other.labels.get(L.PROJECT)
    who = f"project '{owner}'" if owner else f"{what} syncer does not manage"
    return Action("conflict", cause=f"the name is held by {who} ({other.id[:12]}); nothing will be done",
                  container_id=other.id, **base)


def absent_job(base: dict[str, Any], ran: Mapping[str, int], what: str) -> Action:
    """A job with no container (service): run, unless this revision of it already ran to
    completion (it runs once per spec; its container was removed since, by hand or a prune)."""
    if ran.get(base["definition"]) == base["revision"]:
        return Action("noop", cause=f"job completed (exit 0) at this revision; its {what} was removed since"
                                    " (it runs again when its spec changes)", **base)
    return Action("run", cause="job has not run yet", **base)


def job(c: ContainerSpec, live: LiveContainer, ident: dict[str, Any]) -> Action:
    """A job runs until its spec hash has run successfully once; a finished job is in sync
    (left exited, never self-healed)."""
    if live.labels.get(L.SPEC_HASH) != c.spec_hash:
        return Action("run", cause="job " + changed(live, c), reasons=tuple(spec_reasons(live, c.spec)), **ident)
    if live.state in RUNNING_STATES:
        return Action("noop", cause="job is running", **ident)
    if live.state == "exited" and live.exit_code == 0:
        return Action("noop", cause="job completed (exit 0)", **ident)
    if live.state == "exited":
        return Action("run", cause=f"the job's last run failed (exit {live.exit_code})", **ident)
    return Action("run", cause=f"job has not run (container is {live.state or 'in an unknown state'})", **ident)


def changed(live: LiveContainer, c: ContainerSpec) -> str:
    """"spec changed", naming the repository files whose content changed."""
    names = changed_sources(L.spec_of(live.labels), c.spec)
    return "spec changed" + (f" ({', '.join(names)} changed)" if names else "")


def missing_labels(spec: Mapping[str, Any], live: LiveContainer) -> tuple[Reason, ...]:
    """The spec's labels `live` does not carry as the spec says (made by a syncer that hashed
    them but did not apply them)."""
    wanted = spec.get("labels") or {}
    return tuple(Reason(f"labels.{k}", live.labels.get(k), v) for k, v in sorted(wanted.items())
                 if live.labels.get(k) != v)


def spec_reasons(live: LiveContainer, desired: Mapping[str, Any]) -> list[Reason]:
    """Field-level differences between the spec a container was made from and the desired one."""
    raw = live.labels.get(L.SPEC)
    if raw is None:
        return [Reason("spec_hash", live.labels.get(L.SPEC_HASH), None)]
    try:
        before = json.loads(raw)
    except ValueError:
        return [Reason("spec_hash", live.labels.get(L.SPEC_HASH), None)]
    return list(diff_fields(before, dict(desired)))


def diff_fields(before: Any, after: Any, path: str = "") -> Iterable[Reason]:
    """Changed leaves as dotted paths; lists compare whole; secrets masked."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                yield _reason(sub, None, after[key])
            elif key not in after:
                yield _reason(sub, before[key], None)
            else:
                yield from diff_fields(before[key], after[key], sub)
    elif L.canonical_json(before) != L.canonical_json(after):
        yield _reason(path, before, after)


def _reason(field: str, before: Any, after: Any) -> Reason:
    if L.has_secret(before) or L.has_secret(after):
        return Reason(field, sensitive=True)
    return Reason(field, before, after)
