"""The order an apply acts in, decided without Docker: definitions in waves by
`depends_on` (wave n depends only on waves before it), and each definition's actions in the
order they must run (a renamed-aside leftover first, removals last)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from syncer.core import labels as L
from syncer.core.model import Action, Desired, Plan

ACTING = ("create", "recreate", "start", "remove", "run", "update", "restart")  # the actions that change something
# (`update`: a Swarm service rolled in place; `restart`: after a dependency, stages/restarts.py)


def waves(desired: Desired, groups: Mapping[str, Sequence[Action]]) -> list[list[str]]:
    """Definition names in dependency order: wave n depends only on waves before it."""
    deps = {c.definition: c.depends_on for c in desired.containers}
    level: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in level:
            inner = [depth(d, seen | {name}) for d in deps.get(name, ()) if d not in seen]
            level[name] = 1 + max(inner, default=-1)
        return level[name]

    out: dict[int, list[str]] = defaultdict(list)
    for name in groups:
        out[depth(name)].append(name)
    return [sorted(out[k]) for k in sorted(out)]


def group_actions(plan: Plan) -> dict[str, list[Action]]:
    """The acting actions of each definition, in the order they must run."""
    groups: dict[str, list[Action]] = defaultdict(list)
    for a in plan.actions:
        if a.action in ACTING:
            groups[a.definition].append(a)
    for actions in groups.values():
        actions.sort(key=lambda a: (not a.container.endswith(L.TEMP_SUFFIX), a.action == "remove", a.replica))
    return dict(groups)
