"""The plan file: the JSON form of a plan that DESIGN.md fixes (`plan --json` prints it,
`--out` saves it, `apply PLAN` reads it back).

`to_dict` is the one writer and `read` the one reader: it reads strictly, with the JSON
Schema schemas/plan.schema.json (a field missing, of the wrong type or unknown is a
`Malformed` naming its path, e.g. `actions[0].revision: expected integer, got "x"`), since
`apply PLAN` must apply exactly the plan the file holds or refuse it. `refusal` then says why
a well-formed saved plan is not the plan syncer makes now (pure: the caller plans).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from syncer.core import labels as L
from syncer.core.model import ACTION_KINDS, Action, Plan, Reason
from syncer.stages.guard import MAX_DEPTH

FORMAT_VERSION = 1
SENSITIVE = L.SENSITIVE
KINDS = (*ACTION_KINDS, "update", "restart")  # (update: a Swarm service rolled; restart: after a dependency)
AGAIN = "run `syncer plan --out FILE` again"
DEPTH = MAX_DEPTH + 8  # a reason's value is a spec's (no deeper than its YAML file), in a reason, in an action


def to_dict(p: Plan, *, desired_hash: str = "") -> dict[str, Any]:
    """The JSON form of DESIGN.md (what `plan --json` prints and `--out` saves)."""
    return {
        "format_version": FORMAT_VERSION, "project": p.project, "commit": p.commit, "dirty": p.dirty,
        "fingerprint": p.fingerprint, "desired": desired_hash, "created_at": p.created_at,
        "actions": [_action_dict(a) for a in p.actions], "summary": p.summary(),
        "servers": {name: {"reachable": name not in p.unreachable, "error": p.unreachable.get(name),
                           "kind": "swarm" if name in p.swarm else "docker", "summary": counts}
                    for name, counts in p.by_server().items()},
    }


def _action_dict(a: Action) -> dict[str, Any]:
    reasons = []
    for r in a.reasons:
        if r.sensitive:
            reasons.append({"field": r.field, "sensitive": True, "note": SENSITIVE})
        else:
            reasons.append({"field": r.field, "before": r.before, "after": r.after})
    out = {"action": a.action, "server": a.server, "definition": a.definition, "container": a.container,
           "revision": a.revision, "replica": a.replica, "cause": a.cause, "reasons": reasons,
           "spec_hash": a.spec_hash, "container_id": a.container_id}
    return {**out, "stay_stopped": True} if a.stay_stopped else out


class Malformed(ValueError):
    """What makes data not a syncer plan: the path of the field and what is wrong with it."""


@dataclass(frozen=True)
class SavedPlan:
    """A plan read back from its file, with the hash of the desired state it was made for."""

    plan: Plan
    desired: str
    source: str = ""  # the file it came from, for messages


def from_dict(data: object) -> Plan:
    """A plan read back from its JSON form (`read`); Malformed on anything else."""
    return read(data).plan


def read(data: object, *, source: str = "") -> SavedPlan:
    """The saved plan `data` (parsed JSON) holds, read strictly: Malformed, naming the field,
    when it is not exactly what `to_dict` writes (schemas/plan.schema.json; `stay_stopped` may
    also be false), or when its summary does not count its actions."""
    if _deeper_than(data, DEPTH):  # (before the schema, whose messages quote values)
        raise Malformed(f"nested too deep (over {DEPTH} levels)")
    problem = _problem(data)
    if problem is not None:
        raise Malformed(problem)
    top = cast("dict[str, Any]", data)  # (an object of the schema's fields: checked above)
    actions = tuple(Action(a["action"], a["server"], a["definition"], a["container"], a["revision"], a["cause"],
                           tuple(map(_reason, a["reasons"])), a["replica"], a["spec_hash"], a["container_id"],
                           a.get("stay_stopped", False)) for a in top["actions"])
    servers = top["servers"]
    p = Plan(top["project"], top["commit"], top["dirty"], top["fingerprint"], top["created_at"], actions,
             {name: s["error"] or "unreachable" for name, s in servers.items() if not s["reachable"]},
             frozenset(name for name, s in servers.items() if s["kind"] == "swarm"))
    if top["summary"] != p.summary():
        raise Malformed("summary: does not count the plan's actions")
    return SavedPlan(p, top["desired"], source)


def _problem(data: object) -> str | None:
    """The first way `data` is not a plan file, in one line; None when it is one. (A file of
    another format_version is told so before anything else: its other fields may differ.)"""
    from syncer.stages import schema  # (jsonschema: only `apply PLAN` reads a plan file)

    for _, _, message in schema.iter_problems(schema.validator("plan", exact=True), data, quoted=True):
        return message  # (the first only: a huge file of bad fields costs no more than one)
    return None


def _deeper_than(data: object, limit: int) -> bool:
    """True when `data` nests lists and objects more than `limit` deep. Walked without recursion:
    json reads values deeper than what recurses over them later (`refusal` compares them) can go."""
    todo: list[tuple[object, int]] = [(data, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _reason(r: dict[str, Any]) -> Reason:
    if r.get("sensitive"):
        return Reason(r["field"], sensitive=True)
    return Reason(r["field"], r["before"], r["after"])


def refusal(saved: SavedPlan, current: Plan, desired: str) -> str | None:
    """Why `saved` is not to be applied, `current` being the plan made now (and `desired` the
    hash of the desired state it was made from); None when it is that plan. The repository or
    the live containers moved (stale), or its actions are not what they give (edited)."""
    p = saved.plan
    if p.project != current.project:
        return f"the plan is for project '{p.project}', not '{current.project}'"
    if p.commit != current.commit or saved.desired != desired:
        moved = (f"plan commit {str(p.commit)[:12]}, now {str(current.commit)[:12]}" if p.commit != current.commit
                 else "its files, at the same commit" if p.commit else "its files")
        return f"the plan is stale: the repository changed since it was made ({moved}); {AGAIN}"
    if p.fingerprint != current.fingerprint:
        return f"the plan is stale: the live containers changed since it was made; {AGAIN}"
    edit = _edit(p, current)
    if edit is not None:
        return f"its actions are not the plan of its commit and live state (edited? {edit}); {AGAIN}"
    return None


def _edit(saved: Plan, current: Plan) -> str | None:
    """The first difference between the two plans' actions and servers, in words (their
    order and `created_at` aside: what the apply would do is compared, in the file's form)."""
    mine = Counter(L.canonical_json(_action_dict(a)) for a in saved.actions)
    now = Counter(L.canonical_json(_action_dict(a)) for a in current.actions)
    for p, extra, words in ((saved, mine - now, "the file has {} that is not planned"),
                            (current, now - mine, "{} is planned but not in the file")):
        for a in p.actions:  # (the first in its order)
            if L.canonical_json(_action_dict(a)) in extra:
                return words.format(f"{a.action} {a.container}")
    if _servers_of(saved) != _servers_of(current):
        return "its servers are not the plan's"
    return None


def _servers_of(p: Plan) -> dict[str, tuple[bool, bool]]:
    return {name: (name in p.unreachable, name in p.swarm) for name in p.by_server()}
