"""Named volumes a spec says are `external: true` (Compose's `volumes.<name>.external`): made
elsewhere — by an operator, a backup restore, another project — they must exist before a
container mounts them. Docker would make an empty one on create where Compose refuses
(`external volume "x" not found`), so a plan on a server that lacks one is refused:
observe lists a server's volumes (one call) only when a spec there names one
(engine/observe.py), and engine/repofiles.py locates the error. syncer never makes or
removes an external volume (`apply --prune-volumes` leaves it: engine/containers.py).

On a Swarm server the manager's node is checked, where the list call is answered: a task
placed on another node is not (there, as under `docker stack deploy`, that node's engine
makes a volume it lacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.core.model import Desired, Observed


def external(spec: Mapping[str, Any]) -> list[str]:
    """The names of the external volumes a rendered spec mounts."""
    return [str(v["name"]) for v in spec.get("volumes") or () if isinstance(v, Mapping) and v.get("external")]


def wanted(desired: Desired) -> dict[str, set[str]]:
    """Server → the external volumes its containers mount (servers with none left out)."""
    out: dict[str, set[str]] = {}
    for c in desired.containers:
        names = external(c.spec)
        if names:
            out.setdefault(c.server, set()).update(names)
    return out


def missing(desired: Desired, observed: Observed) -> list[tuple[str, str, str]]:
    """(server, definition, volume) of each external volume a container mounts that its
    server lacks, once per definition (an unreachable server is skipped: its own
    `unreachable` actions say so)."""
    out: set[tuple[str, str, str]] = set()
    for c in desired.containers:
        state = observed.servers.get(c.server)
        if state is None or not state.reachable:
            continue
        out.update((c.server, c.definition, name) for name in external(c.spec) if name not in state.volumes)
    return sorted(out)
