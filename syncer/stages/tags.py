"""`pull_policy: always` follows the tag. Pure: observe asked the registry what each such
tag names now (ServerState.registry) and which digests the running image is known as
(LiveContainer.digests: a container's image's RepoDigests, a service's pinned digest)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from syncer.core import labels as L
from syncer.core.model import Action, ContainerSpec, LiveContainer, Reason, RegistryAnswer, ServerState


def followed(c: ContainerSpec) -> bool:
    """`pull_policy: always` on a service or container: plans follow what its tag names in the
    registry (a job runs once and is not followed; a digest, as a rollback pins, names one image)."""
    return c.spec.get("pull_policy") == "always" and not c.is_job and "@" not in str(c.spec.get("image", ""))


def repository(ref: str) -> str:
    """An image reference without its tag or digest (a registry's port is no tag)."""
    name = ref.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def pin_digests(containers: Iterable[ContainerSpec], images: Mapping[str, str]) -> list[ContainerSpec]:
    """A revision's containers with each followed tag that `images` (a deployment's record:
    tag → digest) names pinned to that digest, `repo@sha256:…`: what a rollback deploys."""
    out = []
    for c in containers:
        ref = str(c.spec.get("image", ""))
        if followed(c) and ref in images:
            spec = {**c.spec, "image": f"{repository(ref)}@{images[ref]}"}
            c = replace(c, spec=spec, spec_hash=L.spec_hash(spec))
        out.append(c)
    return out


def heard(desired: Iterable[ContainerSpec], registry: Mapping[str, Mapping[str, RegistryAnswer]]
          ) -> dict[tuple[str, str], dict[str, str]]:
    """(definition, server) → each followed tag → the digest its registry named when the plan
    was made (what a deployment of it rolls out; a tag the registry did not answer is left out)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for c in desired:
        if followed(c):
            ref = str(c.spec["image"])
            answer = registry.get(c.server, {}).get(ref)
            if answer is not None and answer.digest and not answer.error:
                out.setdefault((c.definition, c.server), {})[ref] = answer.digest
    return out


def follow(actions: list[Action], desired: list[ContainerSpec], state: ServerState,
            held: frozenset[str]) -> list[Action]:
    """`pull_policy: always` follows the tag: a container (service) that is otherwise in
    sync, but runs another image than its tag names in the registry now, is recreated (the
    service rolls). A registry that did not answer changes nothing, and the cause says so."""
    specs = {c.name: c for c in desired if followed(c)}
    live = {c.name: c for c in state.managed}
    return [_moved(a, specs[a.container], live[a.container], state) if a.action in ("noop", "start")
            and a.container in specs and a.container in live and a.container not in held else a
            for a in actions]


def _moved(a: Action, c: ContainerSpec, live: LiveContainer, state: ServerState) -> Action:
    ref = str(c.spec["image"])
    answer = state.registry.get(ref)
    if answer is None:
        return a
    if answer.error:
        return replace(a, cause=f"{a.cause}; the tag was not checked: {answer.error}")
    if any(d.endswith("@" + answer.digest) for d in live.digests):
        return a
    was = live.digests[0].rsplit("@", 1)[-1] if live.digests else live.image or "unknown"
    swarm = state.kind == "swarm"
    return replace(a, action="update" if swarm else "recreate",
                   cause=f"{ref} names another image in its registry now" + (": Swarm rolls the service" if swarm else ""),
                   reasons=(Reason("image", _short(was), _short(answer.digest)),))


def _short(digest: str) -> str:
    return digest[:19]  # "sha256:" and 12 hex digits, as docker shows ids
