"""What was changed in a service outside syncer (`docker service update --env-add`, `--image`,
`--mount-add`, `--constraint-add`, `--publish-add`): the plan compares the service's live
TaskTemplate and ports with what syncer makes of the spec, so such a change is drift that the
next apply rolls back, as a container changed by hand is recreated.

The live spec is not byte for byte what syncer sent: the manager fills in `Isolation:
default`, `Runtime: container` and `ForceUpdate` (`instances restart` bumps that one), Go
leaves zero values out (`ReadOnly: false`, `Delay: 0`), networks and files are named by ID,
an image may be pinned to its digest, and a secret's value stands where syncer's template
has a reference to it. Those are normalised away or matched around; a drifted field is named,
never shown (its value may hold a secret)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, LiveContainer, LiveNetwork, Reason
from syncer.stages import swarm as S

_FILLED = {"Isolation": "default", "Runtime": "container"}  # what the manager adds to a ContainerSpec / TaskTemplate
_IGNORED = {"ForceUpdate", "ConfigID", "SecretID"}
OUTSIDE = "changed outside syncer"  # a drifted field's `before` in the plan


def reasons(fields: list[str]) -> tuple[Reason, ...]:
    """The plan's reasons for drifted fields: each named, its values never shown."""
    return tuple(Reason(f, OUTSIDE, "the repository's") for f in fields)


def template_drifted(a: Action) -> bool:
    """True when the plan rolls back a change made outside syncer to what the tasks run (the
    service's task-template label still names what syncer made, but Swarm must roll them)."""
    return any(r.before == OUTSIDE and r.field.startswith("TaskTemplate") for r in a.reasons)


def live_template(spec: Mapping[str, Any]) -> str:
    """What the comparison needs of a service's live Spec, as text (kept on its LiveContainer)."""
    return json.dumps({"TaskTemplate": spec.get("TaskTemplate") or {}, "EndpointSpec": spec.get("EndpointSpec") or {}},
                      sort_keys=True, separators=(",", ":"))


def drifted(c: ContainerSpec, live: LiveContainer, networks: tuple[LiveNetwork, ...]) -> list[str]:
    """The fields of the live service that differ from what syncer makes of `c` (dotted, as
    the Engine API names them); [] when none do, or when nothing of the live spec was read."""
    if not live.template:
        return []
    got = json.loads(live.template)
    # the digest syncer pinned the tag to (or a followed tag's) is the spec's image; another is drift
    pinned = live.image if live.image.partition("@")[0] == c.spec.get("image") else ""
    want = {"TaskTemplate": S.task_of(c, pinned), "EndpointSpec": S.endpoint_spec(c.spec)}
    names = {n.id: n.name for n in networks}
    out: list[str] = []
    _compare(_norm(want, names), _norm(got, names), "", out)
    return out


def _norm(value: Any, names: Mapping[str, str], key: str = "") -> Any:
    """Zero values and what the manager fills in left out; networks by name; Env by variable."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k in _IGNORED or _FILLED.get(k) == v:
                continue
            if k == "Target" and key == "Networks":
                v = names.get(v, v)
            n = _norm(v, names, k)
            if n not in (None, "", 0, False, [], {}):
                out[k] = n
        return out
    if isinstance(value, list):
        items = [_norm(v, names, key) for v in value]
        return sorted(items, key=lambda e: str(e).partition("=")[0]) if key == "Env" else items
    return value


def _compare(want: Any, got: Any, path: str, out: list[str]) -> None:
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            _compare(want.get(k), got.get(k), f"{path}.{k}" if path else k, out)
    elif not _same(want, got):
        out.append(path)


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(_same(w, g) for w, g in zip(want, got))
    if isinstance(want, dict) and isinstance(got, dict):
        return set(want) == set(got) and all(_same(want[k], got[k]) for k in want)
    if isinstance(want, str) and isinstance(got, str) and L.SECRET_REF_RE.search(want):
        return _around(want, got)  # a secret's value stands in the live spec where syncer's has its reference
    return bool(want == got)


def _around(want: str, got: str) -> bool:
    """`got` is `want` with each secret reference replaced by some value."""
    parts = L.SECRET_REF_RE.split(want)  # literal, name, hash, literal, name, hash, literal ...
    pattern = "(?s)" + ".*?".join(re.escape(p) for p in parts[::3])
    return re.fullmatch(pattern, got) is not None
