"""The secret key's copies (engine/serverkey.py) against engines whose answers the test chooses."""

from __future__ import annotations

from typing import Any

from syncer.core.errors import DockerUnavailable
from syncer.core.model import Project, ProjectConfig, Server
from syncer.engine import serverkey


def _project() -> Project:
    servers = {name: Server(name) for name in ("home", "a-old", "b-new", "c-away", "d-none")}
    config = ProjectConfig(name="acme", servers=servers, default_server="home",
                           default_profile="", template_dirs=(), definition_dirs=())
    return Project(root="/nowhere", config=config, templates=(), definitions=())


class _Engine:
    def __init__(self, server: Server, markers: dict[str, dict[str, Any]]) -> None:
        self.server = server
        self.markers = markers
        self.removed: list[str] = []

    def marker(self, name: str) -> dict[str, Any] | None:
        return self.markers.get(name)

    def remove(self, ident: str) -> None:
        self.removed.append(ident)
        self.markers.clear()

    def close(self) -> None:
        pass


def test_the_newest_copy_is_read_while_the_default_server_is_away() -> None:
    """A server that was away when a new key was published keeps the older copy (and its
    containers the older hashes): the newest copy is the default server's latest key, whatever
    the servers' names say."""
    copies = {"a-old": ("aa" * 16, "2026-12-01T10:00:00.5Z"), "b-new": ("bb" * 16, "2026-12-03T09:00:00.123456789Z")}

    def engines(server: Server) -> _Engine:
        if server.name in ("home", "c-away"):
            raise DockerUnavailable(f"server '{server.name}': gone")
        found = copies.get(server.name)
        return _Engine(server, {} if found is None else {"acme.syncer-key": {
            "id": server.name, "env": {"SYNCER_KEY": found[0]}, "created": found[1]}})

    assert serverkey._copy_elsewhere(_project(), engines) == bytes.fromhex("bb" * 16)
    copies["a-old"] = ("aa" * 16, "2026-12-03T09:00:01Z")  # (fewer digits, later)
    assert serverkey._copy_elsewhere(_project(), engines) == bytes.fromhex("aa" * 16)
    copies.clear()
    assert serverkey._copy_elsewhere(_project(), engines) is None


def test_a_copy_is_placed_replaced_or_removed_to_match_where_secrets_users_run() -> None:
    key = bytes.fromhex("cc" * 16)
    old = {"acme.syncer-key": {"id": "old", "env": {"SYNCER_KEY": "aa" * 16}, "created": "x"}}
    made: list[tuple[str, str]] = []

    class _Made(_Engine):
        def create_marker(self, name: str, labels: Any, env: Any) -> str:
            made.append((self.server.name, env["SYNCER_KEY"]))
            return "new"

    stale = _Made(Server("stale"), dict(old))
    serverkey._place(stale, "acme", key)  # another key's copy: replaced
    assert stale.removed == ["old"] and made == [("stale", "cc" * 16)]
    gone = _Made(Server("gone"), dict(old))
    serverkey._place(gone, "acme", None)  # no secret's user here any more: removed, none made
    assert gone.removed == ["old"] and made == [("stale", "cc" * 16)]
    same = _Made(Server("same"), {"acme.syncer-key": {"id": "k", "env": {"SYNCER_KEY": "cc" * 16}}})
    serverkey._place(same, "acme", key)
    serverkey._place(_Made(Server("empty"), {}), "acme", None)
    assert same.removed == [] and made == [("stale", "cc" * 16)]
