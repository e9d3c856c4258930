"""The plan file: the JSON form of a plan that DESIGN.md fixes (`plan --json` prints it,
`--out` saves it, `apply PLAN` reads it back).

`to_dict` is the one writer and `read` the one reader: it reads strictly (a field missing,
of the wrong type or unknown is a `Malformed` naming its path, e.g. `actions[0].revision`),
since `apply PLAN` must apply exactly the plan the file holds or refuse it. `refusal` then
says why a well-formed saved plan is not the plan syncer makes now (pure: the caller plans).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncer.core import labels as L
from syncer.core.model import ACTION_KINDS, Action, Plan, Reason

FORMAT_VERSION = 1
SENSITIVE = L.SENSITIVE
KINDS = (*ACTION_KINDS, "update", "restart")  # (update: a Swarm service rolled; restart: after a dependency)
AGAIN = "run `syncer plan --out FILE` again"


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
    when it is not exactly what `to_dict` writes (`stay_stopped` may also be false)."""
    version = _object(data, "", required=("format_version",), optional=None)["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:  # (first: another version has other fields)
        raise Malformed(f"format_version: expected {FORMAT_VERSION}, not {_shown(version)}")
    top = _object(data, "", required=_TOP, optional=())
    for key in ("project", "fingerprint", "desired", "created_at"):
        _typed(top, key, "", str)
    _typed(top, "commit", "", (str, type(None)))
    _typed(top, "dirty", "", bool)
    actions = tuple(_action(a, f"actions[{i}]") for i, a in enumerate(_list(top["actions"], "actions")))
    down, swarm = _servers(top["servers"])
    p = Plan(top["project"], top["commit"], top["dirty"], top["fingerprint"], top["created_at"], actions, down,
             frozenset(swarm))
    if top["summary"] != p.summary():
        raise Malformed("summary: does not count the plan's actions")
    return SavedPlan(p, top["desired"], source)


_TOP = ("format_version", "project", "commit", "dirty", "fingerprint", "desired", "created_at", "actions",
        "summary", "servers")
_ACTION = ("action", "server", "definition", "container", "revision", "replica", "cause", "reasons", "spec_hash",
           "container_id")
_SERVER = ("reachable", "error", "kind", "summary")


def _action(data: object, at: str) -> Action:
    a = _object(data, at, required=_ACTION, optional=("stay_stopped",))
    for key in ("action", "server", "definition", "container", "cause", "spec_hash", "container_id"):
        _typed(a, key, at, str)
    for key in ("revision", "replica"):
        _typed(a, key, at, int)
    _typed(a, "stay_stopped", at, bool)
    if a["action"] not in KINDS:
        raise Malformed(f"{at}.action: unknown action {_shown(a['action'])} (expected one of {', '.join(KINDS)})")
    reasons = tuple(_reason(r, f"{at}.reasons[{i}]") for i, r in enumerate(_list(a["reasons"], f"{at}.reasons")))
    return Action(a["action"], a["server"], a["definition"], a["container"], a["revision"], a["cause"], reasons,
                  a["replica"], a["spec_hash"], a["container_id"], a.get("stay_stopped", False))


def _reason(data: object, at: str) -> Reason:
    sensitive = isinstance(data, Mapping) and "sensitive" in data
    r = _object(data, at, required=("field", "sensitive", "note") if sensitive else ("field", "before", "after"),
                optional=())
    _typed(r, "field", at, str)
    if not sensitive:
        return Reason(r["field"], r["before"], r["after"])
    if r["sensitive"] is not True or r["note"] != SENSITIVE:
        raise Malformed(f"{at}: expected \"sensitive\": true with the note {_shown(SENSITIVE)}")
    return Reason(r["field"], sensitive=True)


def _servers(data: object) -> tuple[dict[str, str], set[str]]:
    down: dict[str, str] = {}
    swarm: set[str] = set()
    for name, value in _object(data, "servers", required=(), optional=None).items():
        at = f"servers.{name}"
        s = _object(value, at, required=_SERVER, optional=())
        _typed(s, "reachable", at, bool)
        _typed(s, "error", at, (str, type(None)))
        _typed(s, "summary", at, dict)
        if s["kind"] not in ("docker", "swarm"):
            raise Malformed(f"{at}.kind: expected \"docker\" or \"swarm\", not {_shown(s['kind'])}")
        if not s["reachable"]:
            down[name] = s["error"] or "unreachable"
        if s["kind"] == "swarm":
            swarm.add(name)
    return down, swarm


def _object(data: object, at: str, *, required: tuple[str, ...], optional: tuple[str, ...] | None
            ) -> dict[str, Any]:
    """`data` as an object holding every `required` key and no key but these and `optional`
    (None: any key)."""
    if not isinstance(data, dict):
        raise Malformed(f"{at or 'the file'}: expected an object, not {_kind(data)}")
    for key in required:
        if key not in data:
            raise Malformed(f"{_at(at, key)}: missing")
    if optional is not None:
        for key in data:
            if key not in required and key not in optional:
                raise Malformed(f"{_at(at, str(key))}: unknown field")
    return data


def _list(data: object, at: str) -> list[Any]:
    if not isinstance(data, list):
        raise Malformed(f"{at}: expected a list, not {_kind(data)}")
    return data


_EXPECTED: dict[object, str] = {str: "a string", int: "an integer", bool: "true or false", dict: "an object",
                                (str, type(None)): "a string or null"}


def _typed(data: Mapping[str, Any], key: str, at: str, kind: type | tuple[type, ...]) -> None:
    """Malformed unless `data[key]` (when present) is of `kind` (a bool is no integer)."""
    if key not in data:
        return
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Malformed(f"{_at(at, key)}: expected {_EXPECTED[kind]}, not {_shown(value)}")


def _at(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _kind(value: object) -> str:
    return {list: "a list", dict: "an object", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(value), "a number")


def _shown(value: object) -> str:
    text = L.canonical_json(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
