"""One snapshot of every server, taken in parallel.

Per server: one list call filtered on the project label (all states) and one network list
call, plus, only when a desired container is missing from that list, one call asking who
holds those names, so that the plan can report a conflict instead of failing on create.
Scoped to one definition (a self-heal, a sync of one definition), the container list is
filtered on its label too, and the names are asked for by name: a row or two instead of
every container of the project.
A Swarm manager: one GET /services (unfiltered: it also shows who holds our names), one
GET /tasks filtered on the project label, one GET /networks.
Either kind: one volume list more, only when a spec there mounts an `external: true` volume
(which must exist: stages/volumes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from syncer.adapters.docker import Engine, Missing
from syncer.core.errors import SyncerError
from syncer.core.labels import shared_with
from syncer.core.model import Desired, LiveContainer, Observed, Server, ServerState
from syncer.stages import volumes
from syncer.stages.restarts import Restarting, judged_with
from syncer.stages.tags import followed

EngineFactory = Callable[[Server], Engine]


def is_swarm(engine: Engine) -> bool:
    """True for a server declared `kind: swarm` (fakes without a server are not)."""
    server = getattr(engine, "server", None)
    return getattr(server, "kind", "docker") == "swarm"


def observe(project: str, servers: Mapping[str, Server], desired: Desired | None,
            *, engines: EngineFactory = Engine, definition: str | None = None, versions: bool = False,
            tags: bool = True, task_health: bool = False) -> Observed:
    """Snapshot every server (of `definition` only, when given: see `observe_server`); an
    unreachable one is recorded, not raised. `versions`: each engine's version too (for
    status: the engine answers /version in ~7 ms, a plan needs only the API version).
    `tags`: ask the registries about `pull_policy: always` images (a self-heal does not:
    it restores what runs, and a registry's round trip would keep a killed container down).
    `task_health`: on a Swarm server, the health of the tasks' containers on the manager's node
    too (one container list more: `instances` shows it; a plan and status do not need it)."""
    wanted: dict[str, list[str]] = {name: [] for name in servers}
    follow: dict[str, dict[str, str]] = {}  # server → name → image ref, for `pull_policy: always`
    # server → the external volumes its specs mount: of every definition, even when observing
    # one (the plan's check reads the whole desired state, as for external networks)
    external = volumes.wanted(desired) if desired is not None else {}
    restarting = Restarting(desired.containers if desired is not None else ())
    if desired is not None:
        also = judged_with(desired.containers, definition) if definition is not None else set()
        for c in desired.containers:
            if definition is None or c.definition == definition or c.name in also:
                wanted.setdefault(c.server, []).append(c.name)
                if tags and followed(c):
                    follow.setdefault(c.server, {})[c.name] = str(c.spec["image"])

    def one(server: Server) -> ServerState:
        return observe_server(project, server, wanted.get(server.name, []), engines=engines,
                              definition=definition, versions=versions, follow=follow.get(server.name, {}),
                              restarting=restarting, task_health=task_health,
                              external=external.get(server.name, set()))

    if len(servers) == 1:  # no thread to start and join for the common case (the API lists often)
        states = [one(server) for server in servers.values()]
    else:
        from concurrent.futures import ThreadPoolExecutor  # (it imports logging): only for many servers

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(servers)))) as pool:
            states = list(pool.map(one, servers.values()))
    return Observed(project, {s.server: s for s in states})


def observe_server(project: str, server: Server, names: list[str], *,
                   engines: EngineFactory = Engine, definition: str | None = None,
                   versions: bool = False, follow: Mapping[str, str] | None = None,
                   restarting: Restarting = Restarting(()), task_health: bool = False,
                   external: Collection[str] = ()) -> ServerState:
    """One server's managed containers and the holders of names we want but lack. With
    `definition`, only that definition's containers, plus any container of the project
    holding one of its names (another definition's: the plan recreates it); a Swarm server
    is observed whole (a handful of services). `follow`: name → image ref of the specs
    with `pull_policy: always` (see `_tags`); `restarting`: the definitions whose containers'
    start and creation times a `restart: true` needs (see `_with_starts`); `external`: the
    external volumes its specs mount, which of them exist is asked (one list call)."""
    try:
        engine = engines(server)
        try:
            state = (_swarm(engine, project, server, names, versions, task_health) if server.kind == "swarm"
                     else _containers(engine, project, server, names, definition, versions, restarting))
            if external:
                from syncer.adapters.volumes import present  # only projects with external volumes pay

                state = replace(state, volumes=present(engine, external))
            return _tags(engine, state, follow) if follow else state
        finally:
            engine.close()
    except SyncerError as exc:  # (its kind kept: what it would have run is services on a Swarm server)
        return ServerState(server.name, False, error=str(exc), kind=server.kind)


def _swarm(engine: Engine, project: str, server: Server, names: list[str], versions: bool,
           health: bool = False) -> ServerState:
    """A Swarm manager: one GET /services, one GET /tasks, one GET /networks (and with `health`,
    one GET /containers)."""
    from syncer.adapters.swarm import Swarm  # only swarm servers pay for it

    services, tasks, others, nets = Swarm(engine).observe(project, names, health=health)
    return ServerState(server.name, True, tuple(services), tuple(others), kind="swarm",
                       tasks=tuple(tasks), engine_version=_version(engine, versions),
                       api_version=str(getattr(engine, "api_version", "")), networks=tuple(nets))


def _containers(engine: Engine, project: str, server: Server, names: list[str], definition: str | None,
                versions: bool, restarting: Restarting) -> ServerState:
    managed = engine.list_project(project, definition)
    have = {c.name for c in managed}
    holders = engine.list_names([n for n in names if n not in have])
    if definition is not None:  # ours under another definition: managed, as a full list has it
        managed += [c for c in holders if c.labels.get("syncer.project") == project]
    version = _version(engine, versions)
    # by name: Docker lists networks in no stable order, and equal states must compare (and
    # fingerprint) equal
    networks = sorted(engine.list_networks(), key=lambda n: (n.name, n.id))
    foreign = tuple(c for c in holders if c.labels.get("syncer.project") != project)
    managed = _with_starts(engine, managed, restarting)  # (a heal's sharers came with the name holders)
    return ServerState(server.name, True, tuple(managed), foreign, engine_version=version, networks=tuple(networks),
                       api_version=str(getattr(engine, "api_version", "")))


def _tags(engine: Engine, state: ServerState, follow: Mapping[str, str]) -> ServerState:
    """`pull_policy: always` follows the tag: what each followed ref names in its registry
    now, and which digests the image each of those containers runs is known as (a service
    carries its pinned digest already). A few calls, only for such specs; the plan compares."""
    from syncer.adapters.images import registry_digests, repo_digests  # only such projects pay

    registry = registry_digests(engine, follow.values())
    known: dict[str, tuple[str, ...]] = {}
    for c in state.managed:
        if c.name in follow and c.image and c.image not in known and state.kind != "swarm":
            known[c.image] = repo_digests(engine, c.image)
    managed = tuple(replace(c, digests=known[c.image]) if c.name in follow and c.image in known else c
                    for c in state.managed)
    return replace(state, managed=managed, registry=registry)


def _version(engine: Engine, wanted: bool) -> str:
    """The engine's version when `wanted` (fakes may not know it), else ""."""
    return str(getattr(engine, "info", {}).get("Version", "")) if wanted else ""


def _with_starts(engine: Engine, managed: list[LiveContainer], restarting: Restarting) -> list[LiveContainer]:
    """When a container shares another's network (`container:<id>`), both with the time they
    last started (`started_at`): Docker gives a container that starts again a new network
    namespace, and one that joined its old one is left with a loopback only (plan: recreate
    it). And the containers of a definition that restarts with another (`restart: true`) and
    of that other, with when they started and were made (`made_at`): a dependency made after
    its dependent started is one the dependent has not been restarted for. One inspect each;
    a project with neither pays nothing."""
    owners = {shared_with(c.network_mode) for c in managed} - {""}
    if not owners and not restarting:
        return managed
    out = []
    for c in managed:
        if shared_with(c.network_mode) or any(c.id.startswith(o) for o in owners) or restarting.involves(c):
            try:
                info = engine.inspect(c.id)
                c = replace(c, started_at=str(info.get("State", {}).get("StartedAt", "")),
                            made_at=str(info.get("Created", "")))
            except Missing:
                pass  # gone since the list: the plan sees the list's view
        out.append(c)
    return out
