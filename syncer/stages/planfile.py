"""The plan file: the JSON form of a plan that DESIGN.md fixes (`plan --json` prints it,
`--out` saves it, `apply PLAN` reads it back)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import Action, Plan, Reason

FORMAT_VERSION = 1
SENSITIVE = L.SENSITIVE


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


def from_dict(data: Mapping[str, Any]) -> Plan:
    """A plan read back from its JSON form; KeyError/TypeError/ValueError on a malformed one."""
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported plan format_version {data.get('format_version')!r}")
    actions = []
    for a in data["actions"]:
        reasons = tuple(Reason(r["field"], sensitive=True) if r.get("sensitive")
                        else Reason(r["field"], r.get("before"), r.get("after")) for r in a.get("reasons", []))
        actions.append(Action(a["action"], a["server"], a["definition"], a["container"], int(a["revision"]),
                              a.get("cause", ""), reasons, int(a.get("replica", 1)), a.get("spec_hash", ""),
                              a.get("container_id", ""), bool(a.get("stay_stopped", False))))
    servers = data.get("servers") or {}
    down = {name: str(s.get("error") or "unreachable") for name, s in servers.items() if not s.get("reachable", True)}
    swarm = frozenset(name for name, s in servers.items() if s.get("kind") == "swarm")
    return Plan(data["project"], data.get("commit"), bool(data.get("dirty")), data["fingerprint"],
                data["created_at"], tuple(actions), down, swarm)
