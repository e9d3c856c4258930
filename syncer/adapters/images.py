"""Images and their registries, through an `Engine`: which manifest digest a tag names in
its registry now (the engine asks the registry: `GET /distribution/{ref}/json`, no pull),
which digests a local image was pulled or pushed as (`RepoDigests`), and whether the
client holds a `docker login` to send along.

This is what `pull_policy: always` needs to follow a tag: the plan compares the registry's
answer with what runs (stages.plan), and a Swarm service is pinned to the digest it was
resolved to, as `docker service create` does, so every node runs the same image.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from syncer.adapters.docker import Engine, EngineError, Missing, engine_message
from syncer.core.errors import SyncerError
from syncer.core.model import RegistryAnswer
from syncer.stages.tags import repository

PARALLEL_ASKS = 4  # registry questions at once per server (each on a connection of its own)


def has_image(engine: Engine, image: str) -> bool:
    """True when the image is present on the server."""
    try:
        engine._call(f"image {image}", engine.reads.inspect_image, image)
        return True
    except Missing:
        return False


def pull(engine: Engine, image: str, digest: str = "") -> Iterator[str]:
    """Pull an image (by tag, or by digest: `repo@sha256:…`), yielding progress lines.
    `digest`: what the tag `image` named when the plan was made. That digest is pulled and
    the tag set to it here, so what runs is what the plan showed and the deployment recorded,
    even when the tag moved again since (its next move is the next plan's)."""
    repo = repository(image)
    if digest:
        yield from pull(engine, f"{repo}@{digest}")
        tag = image[len(repo) + 1:] or "latest"
        engine._call(f"tag {repo}@{digest} as {image}", engine.api.tag, f"{repo}@{digest}", repo, tag)
        return
    tag = image.rpartition("@")[2] if "@" in image else image[len(repo) + 1:] or "latest"
    stream = engine._call(f"pull {image}", engine.api.pull, repo, tag=tag, stream=True, decode=True)
    try:
        for event in stream:
            if "error" in event:
                raise EngineError(f"pull {image}: {event['error']}")
            if event.get("status"):
                yield f"{event.get('id', '')} {event['status']} {event.get('progress', '')}".strip()
    except EngineError:
        raise
    except Exception as exc:
        sorted_ = engine._sorted(f"pull {image}", exc)
        if sorted_ is exc:
            raise
        raise EngineError(f"pull {image}: {engine_message(exc)}") from None


def registry_digest(engine: Engine, ref: str, client: Any = None) -> RegistryAnswer:
    """The manifest digest `ref` names in its registry now, asked through the engine (which
    reaches the registry as its pulls do); an answer carrying the error when it cannot tell.
    With a docker login the SDK asks, sending the credentials along. `client`: a connection
    of its own to ask on (see `registry_digests`)."""
    what = f"ask the registry for {ref}"
    try:
        if client is None:
            client = engine.api if registry_credentials() else engine.reads  # (reads: the SDK's too over TLS)
        row = engine._call(what, client.inspect_distribution, ref)
        return RegistryAnswer(digest=str(row["Descriptor"]["digest"]))
    except SyncerError as exc:
        return RegistryAnswer(error=str(exc))
    except (KeyError, TypeError) as exc:
        return RegistryAnswer(error=f"{what}: unexpected answer ({exc})")


def registry_digests(engine: Engine, refs: Iterable[str]) -> dict[str, RegistryAnswer]:
    """`registry_digest` of each ref. Each answer is a round trip from the engine to a
    registry, often a remote one (a public registry's token and manifest: ~0.3-1 s), so
    several refs are asked at once, each worker on a connection of its own to the engine's
    socket (the engine's own client takes one request at a time). One at a time through the
    SDK's client, which sends a docker login, and where there is no socket."""
    todo = sorted(set(refs))
    light = getattr(engine, "light", None)
    if len(todo) < 2 or light is None or registry_credentials():
        return {ref: registry_digest(engine, ref) for ref in todo}
    answers: dict[str, RegistryAnswer] = {}
    failures: list[Exception] = []  # what the sequential asks would have raised: raised here too
    workers = min(PARALLEL_ASKS, len(todo))

    def work(mine: list[str]) -> None:
        client = light.twin()
        try:
            for ref in mine:
                answers[ref] = registry_digest(engine, ref, client)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread below
            failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(todo[i::workers],), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return {ref: answers[ref] for ref in todo}


def repo_digests(engine: Engine, image: str) -> tuple[str, ...]:
    """The `repo@sha256:…` names a local image (by id or name) was pulled or pushed as; none
    for an image that was built here, or that is gone."""
    try:
        row = engine._call(f"image {image}", engine.reads.inspect_image, image)
    except SyncerError:
        return ()
    return tuple(str(d) for d in row.get("RepoDigests") or ())


def pinned(ref: str, answer: RegistryAnswer) -> str:
    """`ref@digest`, the image a Swarm service is created with once its registry answered
    (the ref alone when it did not: the nodes then resolve the tag themselves)."""
    return f"{ref.split('@', 1)[0]}@{answer.digest}" if answer.digest else ref


def registry_credentials() -> bool:
    """True when the docker client's config holds registry credentials (`docker login`
    wrote `auths`, or it names a credential store or helpers): what the SDK would send.
    Read again only when a config file changes (a stat each): a long-running `watch` sees
    a `docker login` (or logout) made after it started."""
    where = os.environ.get("DOCKER_CONFIG")
    paths = [Path(where) / "config.json"] if where else [Path.home() / ".docker" / "config.json",
                                                         Path.home() / ".dockercfg"]
    return _credentials_in(tuple((str(path), *_stamp(path)) for path in paths))


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _credentials_in(files: tuple[tuple[str, int, int], ...]) -> bool:
    for name, mtime, _size in files:
        path = Path(name)
        try:
            doc = json.loads(path.read_text()) if mtime >= 0 else None
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if path.name == ".dockercfg" or doc.get("auths") or doc.get("credsStore") or doc.get("credHelpers"):
            return True
    return False
