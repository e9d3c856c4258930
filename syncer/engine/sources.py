"""Where changes come from, for the long-running shells: the followed git remote and branch,
verified push webhooks, and each Docker server's event stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from syncer.core.model import Project, Server
from syncer.engine.facade import Context
from syncer.stages import hooks
from syncer.stages.hooks import HookEvent, PushEvent
from syncer.stages.tree import watched  # (watch's file filter: a shell asks the engine)

MAX_HOOK_BODY = hooks.MAX_BODY

__all__ = ["MAX_HOOK_BODY", "HookEvent", "PushEvent", "docker_events", "fast_forward", "fetch_problem", "fetch_remote", "head",
           "safe_url", "tracked_branch", "verify_push", "watched"]


def safe_url(url: str) -> str:
    """`url` without credentials, for logs."""
    from syncer.adapters import git as gitsource

    return gitsource.safe_url(url)


def fetch_remote(url: str, dest: Path, branch: str) -> str:
    """Clone `url` into `dest`, or fetch and fast-forward it to `branch`; the commit now
    checked out. Raises GitError."""
    from syncer.adapters import git as gitsource

    return gitsource.sync_clone(url, dest, branch)


def fetch_problem(repo: Path) -> str | None:
    """Why a push cannot be fetched into the work tree at `repo` (None: it is a git clone
    with a remote)."""
    from syncer.adapters import git as gitsource

    return gitsource.fetch_problem(repo)


def fast_forward(repo: Path, branch: str) -> str:
    """Fetch `branch` from the clone's remote and fast-forward the work tree to it (never a
    reset: a user's work tree); the commit now checked out. Raises GitError."""
    from syncer.adapters import git as gitsource

    return gitsource.fast_forward(repo, branch)


def head(repo: Path) -> str | None:
    """The commit checked out at `repo` (None outside git)."""
    from syncer.adapters import gitcli

    return gitcli.head(repo)[0]


def tracked_branch(ctx: Context, project: Project, override: str | None = None) -> str:
    """The branch whose pushes trigger a sync: `override`, syncer.yaml's `api.branch`, or
    the branch checked out (what `watch` follows), else main."""
    if override:
        return override
    api = project.config.raw.get("api")
    if isinstance(api, Mapping) and isinstance(api.get("branch"), str):
        return str(api["branch"])
    from syncer.adapters import git as gitsource

    return gitsource.current_branch(ctx.root()) or "main"


def verify_push(ctx: Context, project: Project, headers: Mapping[str, str], body: bytes, *,
                branch: str) -> HookEvent:
    """A git webhook verified against the project's git-hook secret (GitHub, GitLab, Gitea
    signatures in constant time): the push, or why it is ignored. Raises a SyncerError
    carrying the HTTP status when the signature or the body is refused."""
    from syncer.engine.operations import git_webhook_secret

    return hooks.verify(headers, body, git_webhook_secret(ctx, project), branch=branch)


def docker_events(server: Server, project: str, *, since: int,
                  networks: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """The server's events about the project's containers from `since` (unix seconds) on,
    and on a Docker server the `disconnect` and `destroy` events of the project's networks (the
    project network, `<project>_<name>`, and `networks`: the external ones it joins), whose
    actor is the network: they carry its name and driver, neither the network's labels nor the
    containers' (Engine API 1.41; a name matches as a prefix: of the networks removed, those
    not named as the project's own are left out here — stages/selfheal.project_network). Checks the server answers first
    (raises DockerUnavailable before the first event when it does not); the stream ends, or
    raises, when the server goes away."""
    from syncer.adapters.docker import Engine

    eng = Engine(server)
    try:
        eng.version()
    except BaseException:
        eng.close()
        raise
    return _stream(eng, project, since, [project, *networks])


def _stream(eng: Any, project: str, since: int, networks: list[str]) -> Iterator[dict[str, Any]]:
    try:
        if eng.server.kind == "swarm":  # services (updated, removed) and their tasks' containers
            from syncer.adapters.swarm import Swarm

            yield from Swarm(eng).events(project, since=since)
        else:
            # (one filter cannot ask for both: every key must match, and a network event has no
            # labels; a network name matches as a prefix: `<project>_<name>` too)
            detached = {"label": [], "type": ["network"], "event": ["disconnect", "destroy"], "network": networks}
            yield from _merged(eng.events(project, since=since),
                               _own_removals(eng.events(project, since=since, also=detached), project))
    finally:
        eng.close()


def _own_removals(events: Iterator[dict[str, Any]], project: str) -> Iterator[dict[str, Any]]:
    """The network events, but of the networks removed only the project's own: an external one
    is never made again, and the filter's prefix also matches another project's (`<project>2`)."""
    from syncer.stages.selfheal import project_network

    for event in events:
        name = str(((event.get("Actor") or {}).get("Attributes") or {}).get("name", ""))
        if event.get("Action") != "destroy" or project_network(name, project):
            yield event


def _merged(*streams: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The events of blocking streams as they come (a thread reads each); ends, or raises, as
    soon as one of them does (closing the engine then ends the others: a stream whose
    connection outlives that ends at its next event)."""
    import queue
    import threading

    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    done = threading.Event()

    def pump(stream: Iterator[dict[str, Any]]) -> None:
        try:
            for event in stream:
                if done.is_set():
                    return
                items.put(("event", event))
            items.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            items.put(("error", exc))

    for stream in streams:
        threading.Thread(target=pump, args=(stream,), daemon=True, name="docker-events").start()
    try:
        while True:
            kind, item = items.get()
            if kind == "error":
                raise item
            if kind == "end":
                return
            yield item
    finally:
        done.set()
