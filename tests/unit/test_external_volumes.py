"""`external: true` named volumes (QA round 1, scenario s5): a spec can say a volume is made
elsewhere; a plan on a server that lacks it is refused, located, before any create (Docker
would make it empty); the Compose import carries the flag; a spec without it hashes as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from syncer.core.errors import InvalidProject
from syncer.core.labels import spec_hash
from syncer.core.model import Desired, Observed, Server, ServerState
from syncer.engine.observe import observe
from syncer.engine.repofiles import check_external
from syncer.stages import volumes
from syncer.stages.compose import import_compose
from syncer.stages.compose_mounts import external_volumes, named
from syncer.stages.load import DirTree
from syncer.stages.render import render
from syncer.stages.shortforms import SpecError
from syncer.stages.shortforms import volumes as normalised
from syncer.stages.validate import build_project
from tests.helpers import write_files

KEY = b"k" * 32

TEMPLATE = """\
id: app
version: "1.0"
spec:
  image: busybox
  volumes:
    - data:/data
    - {name: shared-media, mount_path: /media, external: true}
"""


def _desired(tmp_path: Path, template: str = TEMPLATE, definition: str = "name: web\ntemplate: app\n") -> Any:
    write_files(tmp_path, {"syncer.yaml": "project: p\n", "templates/app.yaml": template,
                           "definitions/d.yaml": definition})
    project = build_project(DirTree(tmp_path), str(tmp_path))
    return project, render(project, secrets={}, secret_key=KEY, files={})


def _observed(*present: str, reachable: bool = True) -> Observed:
    return Observed("p", {"local": ServerState("local", reachable, volumes=tuple(present))})


def test_external_is_kept_only_when_true_so_a_spec_without_it_hashes_as_before() -> None:
    plain = normalised(["data:/data", {"name": "x", "mount_path": "/x"}])
    assert normalised(["data:/data", {"name": "x", "mount_path": "/x", "external": False}]) == plain
    assert normalised([{"name": "x", "mount_path": "/x", "external": "false"}]) == plain[1:]
    assert spec_hash({"image": "i", "volumes": plain}) == spec_hash(
        {"image": "i", "volumes": normalised(["data:/data", {"name": "x", "mount_path": "/x", "external": False}])})
    assert normalised([{"name": "x", "mount_path": "/x", "external": True}]) == [
        {"name": "x", "mount_path": "/x", "external": True}]


@pytest.mark.parametrize(("entry", "why"), [
    ({"mount_path": "/x", "external": True}, r"volumes: /x: external is a named volume's \(give its name\)"),
    ({"host_path": "/srv", "mount_path": "/x", "external": True}, "external is a named volume's"),
    ({"name": "x", "mount_path": "/x", "external": True, "driver": "local"}, "an external volume is never made"),
])
def test_an_external_volume_is_a_named_one_syncer_never_makes(entry: dict[str, Any], why: str) -> None:
    with pytest.raises(SpecError, match=why):
        normalised([entry])


def test_a_missing_external_volume_is_refused_at_its_entry_and_an_existing_one_is_not(tmp_path: Path) -> None:
    project, desired = _desired(tmp_path)
    assert volumes.wanted(desired) == {"local": {"shared-media"}}
    with pytest.raises(InvalidProject) as exc:
        check_external(project, desired, _observed(), None)
    assert exc.value.lines() == [("templates/app.yaml:7:7: volume 'shared-media' is external and does not exist on"
                                  " server 'local' (create it, or drop `external: true`)")]
    check_external(project, desired, _observed("shared-media"), None)
    check_external(project, desired, _observed(reachable=False), None)  # (its unreachable actions say so)


def test_the_entry_is_found_in_a_definitions_overrides(tmp_path: Path) -> None:
    project, desired = _desired(tmp_path, TEMPLATE.replace("    - {name: shared-media, mount_path: /media,"
                                                           " external: true}\n", ""),
                                "name: web\ntemplate: app\noverrides:\n  volumes:\n"
                                "    - {name: other, mount_path: /o, external: true}\n")
    with pytest.raises(InvalidProject) as exc:
        check_external(project, desired, _observed(), None)
    assert [line.split(": volume")[0] for line in exc.value.lines()] == ["definitions/d.yaml:5:7"]


class _Reads:
    def __init__(self) -> None:
        self.asked: list[Any] = []

    def volumes(self, filters: Any = None) -> dict[str, Any]:
        self.asked.append(filters)
        return {"Volumes": [{"Name": "shared-media-old"}, {"Name": "shared-media"}], "Warnings": None}


class _Engine:
    def __init__(self, server: Server) -> None:
        self.server, self.reads, self.api_version = server, _Reads(), ""
        made.append(self)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def list_project(self, project: str, definition: str | None = None) -> list[Any]:
        return []

    def list_names(self, names: list[str]) -> list[Any]:
        return []

    def list_networks(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


made: list[_Engine] = []


def test_observe_asks_for_volumes_once_and_only_when_a_spec_has_an_external_one(tmp_path: Path) -> None:
    _, desired = _desired(tmp_path / "a")
    made.clear()
    state = observe("p", {"local": Server("local")}, desired, engines=_Engine)  # type: ignore[arg-type]
    assert state.servers["local"].volumes == ("shared-media",)  # (an exact match, not the filter's substring)
    assert [e.reads.asked for e in made] == [[{"name": ["shared-media"]}]]
    _, plain = _desired(tmp_path / "b", TEMPLATE.replace(", external: true", ""))
    made.clear()
    assert observe("p", {"local": Server("local")}, plain, engines=_Engine).servers[  # type: ignore[arg-type]
        "local"].volumes == ()
    assert [e.reads.asked for e in made] == [[]]
    # scoped to another definition, the check still reads the whole desired state: so does the list
    made.clear()
    scoped = observe("p", {"local": Server("local")}, desired, engines=_Engine,  # type: ignore[arg-type]
                     definition="other")
    assert scoped.servers["local"].volumes == ("shared-media",)


def test_missing_names_server_definition_and_volume_once() -> None:
    from syncer.core.model import ContainerSpec

    def c(name: str, definition: str) -> ContainerSpec:
        return ContainerSpec("p", "local", definition, 1, name, "app@1", {"volumes": [
            {"name": "v", "mount_path": "/v", "external": True}, {"name": "w", "mount_path": "/w"}]}, "h")

    desired = Desired("p", (c("web", "web"), c("web-2", "web"), c("api", "api")), ("web", "api"))
    assert volumes.missing(desired, _observed()) == [("local", "api", "v"), ("local", "web", "v")]
    assert volumes.missing(desired, _observed("v")) == []


def test_the_compose_import_carries_external_and_the_name() -> None:
    doc = {"volumes": {"ext": {"external": True, "name": "qa1-ext-vol"}, "old": {"external": {"name": "legacy"}},
                       "data": {}, "off": {"external": False}}}
    assert external_volumes(doc) == {"ext", "old"}
    names = {"ext": "qa1-ext-vol", "old": "legacy", "data": "p_data", "off": "p_off"}
    ext = external_volumes(doc)
    assert named("ext:/ext", names, {}, ext) == {"mount_path": "/ext", "name": "qa1-ext-vol", "external": True}
    assert named("old:/old:ro", names, {}, ext) == {"mount_path": "/old", "name": "legacy", "read_only": True,
                                                    "external": True}
    assert named({"mount_path": "/e", "name": "ext"}, names, {}, ext) == {
        "mount_path": "/e", "name": "qa1-ext-vol", "external": True}
    assert named("data:/data", names, {}, ext) == "p_data:/data"  # (not external: as before)
    assert named("off:/off", names, {}, ext) == "p_off:/off"


def test_an_imported_compose_file_with_an_external_volume_says_so() -> None:
    got = import_compose("compose.yaml", b"""
services:
  app:
    image: busybox
    volumes: [ext:/ext, logs:/logs]
volumes:
  logs: {name: qa1-custom-logs}
  ext: {external: true, name: qa1-ext-vol}
""", read=lambda rel: None, project="qa1", folder="p")
    spec = YAML(typ="safe").load(str(got.files["templates/app.yaml"]))["spec"]
    assert spec["volumes"] == [{"mount_path": "/ext", "name": "qa1-ext-vol", "external": True},
                               "qa1-custom-logs:/logs"]


def test_on_a_swarm_server_the_managers_node_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """(A task placed on another node is not checked: that node's engine makes it, as under
    `docker stack deploy`; docs/repository.md says so.)"""
    from syncer.engine import observe as observing

    monkeypatch.setattr(observing, "_swarm", lambda engine, project, server, *rest: ServerState(
        server.name, True, kind="swarm"))
    made.clear()
    engines: Any = _Engine
    state = observing.observe_server("p", Server("cluster", kind="swarm"), [], engines=engines,
                                     external={"shared-media", "gone"})
    assert (state.kind, state.volumes) == ("swarm", ("shared-media",))
    assert [e.reads.asked for e in made] == [[{"name": ["gone", "shared-media"]}]]
