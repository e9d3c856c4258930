"""Named volumes, through an `Engine`: which of the `external: true` volumes the specs mount
exist on a server (stages/volumes.py says why a plan needs to know before any create)."""

from __future__ import annotations

from collections.abc import Collection

from syncer.adapters.docker import Engine


def present(engine: Engine, names: Collection[str]) -> tuple[str, ...]:
    """Those of `names` that exist as volumes on the server, sorted: ONE list call, filtered on
    the names (the engine matches a name filter anywhere in a volume's name: the exact names
    are matched here); no call for no names."""
    if not names:
        return ()
    wanted = set(names)
    answer = engine._call("list volumes", engine.reads.volumes, filters={"name": sorted(wanted)})
    found = {str(v.get("Name", "")) for v in (answer or {}).get("Volumes") or ()}
    return tuple(sorted(found & wanted))
