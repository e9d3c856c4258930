"""The key that turns secrets into keyed hashes, kept with the live state on the server.

A key per state directory made every fresh checkout (every CI job, every second operator,
`watch --repo URL`) see "(sensitive value changed)" for every container with a secret, and
two state dirs recreate them back and forth. The key now lives where the containers live:
in the env of a marker container `<project>.syncer-key` (created, never started) on the
project's default server — one key per project, whatever its servers — readable only by
whoever can already read the containers' env. On a Swarm manager it is a Swarm config of
that name (readable by the same people), which every manager of the swarm serves alike;
the marker container an older syncer made there is carried over. `SYNCER_SECRET_KEY`, when set, wins (and is
never published). A state dir's `secret.key` from an older syncer is published when the
server has no key yet, so an upgrade recreates nothing.

Every apply that changes something also leaves a copy of the key on each other server where a
definition with a secret lands (`spread`; a server whose admins can read those secrets' values
anyway): while the default server does not answer, the key is read from a copy, so the other
servers are still planned and applied (an unreachable server fails its own actions only).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncer.adapters.docker import Conflict, Engine, EngineError
from syncer.core import labels as L
from syncer.core.errors import DockerUnavailable, SecretError
from syncer.core.model import Desired, Project
from syncer.engine.observe import EngineFactory, is_swarm
from syncer.engine.secrets import KEY_FILE, secret_key
from syncer.stages.networks import instant
from syncer.stages.render import literal_secrets, secret_references

ENV_KEY = "SYNCER_SECRET_KEY"
MARKER_ENV = "SYNCER_KEY"


def key_name(project: str) -> str:
    """The marker container holding a project's key."""
    return f"{project}.syncer-key"


def needs_key(project: Project) -> bool:
    """True when some definition has a secret to hash (else no server is asked)."""
    return bool(secret_references(project) or literal_secrets(project))


def project_key(state: Path, project: Project, *, engines: EngineFactory = Engine) -> bytes:
    """The project's key: SYNCER_SECRET_KEY, else the one on the default server (published
    there first if the server has none: this state dir's old key, or a new random one)."""
    configured = os.environ.get(ENV_KEY)
    if configured:
        return configured.encode("utf-8")
    if not needs_key(project):
        return b""
    server = project.config.servers[project.config.default_server]
    try:
        eng = engines(server)
        try:
            return _on_server(eng, project.config.name, state)
        finally:
            eng.close()
    except (EngineError, DockerUnavailable) as exc:
        copy = _copy_elsewhere(project, engines)
        if copy is not None:  # the copy an apply left where the secrets' users run
            return copy
        local = local_key(state)
        if local is not None:  # the key this state dir used before: the best guess offline
            return local
        raise SecretError(f"cannot read the project's secret key (kept on the default server"
                          f" '{server.name}'; no copy on a server that answers): {exc}"
                          f" (bring the server back, or set {ENV_KEY})") from None


def secret_servers(desired: Desired) -> set[str]:
    """The servers where a container with a secret (in its spec or its files) runs."""
    return {c.server for c in desired.containers
            if L.SECRET_REF_RE.search(json.dumps(c.spec)) or any(b"<<secret:" in v for v in c.payload.values())}


def spread(project: Project, engines: Mapping[str, Engine], desired: Desired) -> None:
    """Copy the default server's key to the other servers where a container with a secret runs
    (`engines`: open clients by name) that lack it or hold another (the key was published
    anew), and remove the copy from those where none runs any more (a key stays only where
    its secrets' users are; a stale copy must not be read — also once no definition has a
    secret left). Best effort: a copy is a fallback, not a step of the apply; nothing when the
    key is configured or the default server is not among them."""
    default = project.config.default_server
    if os.environ.get(ENV_KEY) or default not in engines:
        return
    hosts = secret_servers(desired) - {default}
    key = None
    if hosts:
        try:
            key = _stored(engines[default], key_name(project.config.name))
        except (EngineError, DockerUnavailable):
            return
        if key is None:
            return
    for server in sorted(set(engines) - {default}):
        try:
            _place(engines[server], project.config.name, key if server in hosts else None)
        except (EngineError, DockerUnavailable):
            continue


def _copy_elsewhere(project: Project, engines: EngineFactory) -> bytes | None:
    """The newest copy of the key on the project's other servers that answer: a copy is made
    or replaced with the key the default server holds then, so the newest is its latest key
    (one a server that was away kept from before is older)."""
    name = key_name(project.config.name)
    found: list[tuple[tuple[str, str], bytes]] = []
    for server_name, server in sorted(project.config.servers.items()):
        if server_name == project.config.default_server:
            continue
        try:
            eng = engines(server)
            try:
                held = _held(eng, name)
            finally:
                eng.close()
        except (EngineError, DockerUnavailable):
            continue
        if held is not None and held[0] is not None:
            found.append((instant(held[1]), held[0]))
    return max(found)[1] if found else None


def _stored(eng: Engine, name: str) -> bytes | None:
    """The key kept on this server (a Swarm config, else a marker container), if any."""
    held = _held(eng, name)
    return held[0] if held is not None else None


def _held(eng: Engine, name: str) -> tuple[bytes | None, str] | None:
    """The key this server's holder keeps (None: unreadable) and when the holder was made;
    None when there is no holder."""
    swarm = _swarm(eng)
    found = _holder(eng, swarm, name)
    if found is None:
        return None
    return _key_in(swarm, found), str(found.get("created") or "")


def _holder(eng: Engine, swarm: Any, name: str) -> dict[str, Any] | None:
    """The key's holder on this server: a Swarm config on a manager, else a marker container."""
    return eng.marker(name) if swarm is None else swarm.find_object("config", name)


def _key_in(swarm: Any, found: dict[str, Any]) -> bytes | None:
    return _read(found) if swarm is None else _from_config(found)


def _place(eng: Engine, project: str, key: bytes | None) -> None:
    """Make this server's copy the key (replacing another key's copy); None: no copy here."""
    name = key_name(project)
    swarm = _swarm(eng)
    found = _holder(eng, swarm, name)
    have = _key_in(swarm, found) if found is not None else None
    if have == key or (found is None and key is None):
        return
    if found is not None:
        if swarm is None:
            eng.remove(found["id"])
        else:
            swarm.remove_object("config", found["id"])
    if key is None:
        return
    try:
        _publish(eng, swarm, project, key)
    except Conflict:  # another apply placed it at the same moment: the same key
        return


def _publish(eng: Engine, swarm: Any, project: str, key: bytes) -> None:
    """Create the key's holder on this server (raises Conflict when the name is taken)."""
    name, labels = key_name(project), {L.MARKER: "key", L.MARKER_OF: project}
    if swarm is None:
        eng.create_marker(name, labels, {MARKER_ENV: key.hex()})
    else:
        swarm.create_object("config", name, key.hex().encode(), labels)


def local_key(state: Path) -> bytes | None:
    """The key an older syncer kept in the state directory, if any."""
    try:
        return (state / KEY_FILE).read_bytes() or None
    except OSError:
        return None


def _on_server(eng: Engine, project: str, state: Path) -> bytes:
    name = key_name(project)
    swarm = _swarm(eng)
    found = _stored(eng, name)
    if found is not None:
        return found
    # an older syncer's key: on a Swarm manager the marker container it made there, else this
    # state dir's: nothing is recreated
    key = (_read(eng.marker(name)) if swarm is not None else None) or secret_key(state)
    try:
        _publish(eng, swarm, project, key)
        return key
    except Conflict:  # another state dir published one first: everybody uses theirs
        found = _stored(eng, name)
    if found is None:
        rm = "docker rm" if swarm is None else "docker config rm"
        raise SecretError(f"server '{eng.server.name}': {name} holds no readable key"
                          f" (remove it with `{rm} {name}` to publish a new one; every"
                          " container with a secret is then recreated once)")
    return found


def _swarm(eng: Engine) -> Any:
    """On a Swarm manager, the key is a Swarm config (names are unique in the whole swarm, so
    every manager a runner reaches reads the same key; a marker container is one node's)."""
    if not is_swarm(eng):
        return None
    from syncer.adapters.swarm import Swarm  # only swarm servers pay for it

    return Swarm(eng)


def _from_config(found: dict[str, Any] | None) -> bytes | None:
    if found is None:
        return None
    try:
        return bytes.fromhex(found["data"].decode("ascii", "replace").strip()) or None
    except ValueError:
        return None


def _read(marker: dict[str, Any] | None) -> bytes | None:
    if marker is None:
        return None
    try:
        return bytes.fromhex(str(marker["env"].get(MARKER_ENV, ""))) or None
    except ValueError:
        return None
