"""Identity on the engine: label keys, container names, canonical JSON and hashes.

The spec hash is a contract: changing how it is computed recreates every container
of every user. tests/unit/test_labels.py pins it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

PROJECT = "syncer.project"
DEFINITION = "syncer.definition"
REPLICA = "syncer.replica"
REVISION = "syncer.revision"
SPEC_HASH = "syncer.spec-hash"
TEMPLATE = "syncer.template"
COMMIT = "syncer.commit"
# The rendered spec itself (secrets as keyed references), so that a plan can show
# field-level reasons from one list call without a store or an inspect per container.
SPEC = "syncer.spec"
KIND = "syncer.kind"  # "job" on a job's container (absent on a service): its exit is not drift
NETWORK = "syncer.network"  # on a network syncer made: its name in syncer.yaml ("default": the project's)
DEFAULT_NETWORK = "default"

# Marker containers: created, never started, named `<project>.syncer-key` / `.syncer-lock`.
# They carry these instead of `syncer.project`, so observe, plan, prune and the events
# stream never see them as part of the project.
MARKER = "syncer.marker"  # key | lock
MARKER_OF = "syncer.marker-of"  # the project

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# What the server kind names after a definition: a container (Docker wants two characters at
# least) or a Swarm service (a DNS name component: letters and digits joined by - or _, <= 63).
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+)*")
TEMP_SUFFIX = "_syncer-new"

# A secret inside a rendered spec: its name and a keyed hash, never its value.
SECRET_REF_RE = re.compile(r"<<secret:([A-Za-z_][A-Za-z0-9_.-]*):([0-9a-f]{32})>>")

SENSITIVE = "(sensitive value changed)"  # what a plan shows for a secret's change, never its value


def name_problem(name: str, kind: str) -> str:
    """Why a definition of this name cannot run on a server of this kind ("" when it can):
    the name becomes the container's or the Swarm service's, and Docker refuses these."""
    if kind == "swarm":
        if len(name) > 63:
            return f"'{name}' is {len(name)} characters; a Swarm service name is at most 63"
        if not _SERVICE_NAME.fullmatch(name):
            return (f"'{name}' cannot name a Swarm service: letters and digits, joined by '-' or '_'"
                    " (no '.', no '-' or '_' at either end)")
        return ""
    if not _CONTAINER_NAME.fullmatch(name):
        return f"'{name}' cannot name a container: Docker wants at least two characters"
    return ""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the one serialisation that gets hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_of(value: Any) -> str:
    """`sha256:` + hex digest of the canonical JSON of `value`."""
    digest = hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


# Fields that say how syncer acts, not what the container is: changing them recreates
# nothing (as Compose leaves pull_policy out of its config hash).
NOT_HASHED = ("pull_policy",)


def spec_hash(spec: Mapping[str, Any]) -> str:
    """The hash of a rendered container spec (what `syncer.spec-hash` holds)."""
    if any(k in spec for k in NOT_HASHED):
        spec = {k: v for k, v in spec.items() if k not in NOT_HASHED}
    return sha256_of(spec)


def template_hash(spec: Any, inputs: Any, profiles: Any) -> str:
    """A template's `spec_hash`: its spec, inputs and profiles together."""
    return sha256_of({"inputs": inputs, "profiles": profiles, "spec": spec})


def container_name(definition: str, replica: int) -> str:
    """Replica 1 is named like its definition; others get `-N`."""
    return definition if replica == 1 else f"{definition}-{replica}"


def network_name(project: str, name: str, *, external: bool = False) -> str:
    """The engine's name of a network: the project's own is named after the project, one
    under `networks:` is `<project>_<name>`, an external one keeps its name."""
    if external:
        return name
    return project if name == DEFAULT_NETWORK else f"{project}_{name}"


def network_labels(project: str, name: str) -> dict[str, str]:
    """The labels of a network syncer creates."""
    return {PROJECT: project, NETWORK: name}


def temp_name(name: str) -> str:
    """The name a replacement container has until the old one is gone."""
    return f"{name}{TEMP_SUFFIX}"


def secret_ref(name: str, value: str, key: bytes) -> str:
    """The reference that stands for a secret in specs, plans and the store."""
    mac = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return f"<<secret:{name}:{mac}>>"


def _refs(value: Any) -> Iterator[re.Match[str]]:
    """Each secret reference in a (nested) value, in order."""
    if isinstance(value, str):
        yield from SECRET_REF_RE.finditer(value)
    elif isinstance(value, (dict, list)):
        for v in value.values() if isinstance(value, dict) else value:
            yield from _refs(v)


def has_secret(value: Any) -> bool:
    """True when a (nested) value holds a secret reference."""
    return next(_refs(value), None) is not None


def secret_names(value: Any) -> set[str]:
    """Names of the secrets referenced anywhere in a value."""
    return {m.group(1) for m in _refs(value)}


def changed_secrets(value: Any, secrets: Mapping[str, str], key: bytes) -> set[str]:
    """The secrets a (nested) value references whose value is no longer the one referenced
    (its keyed hash differs): a spec of an earlier revision cannot be deployed with them, as
    syncer never keeps a secret's old value. A secret not set at all is not counted here."""
    return {m.group(1) for m in _refs(value)
            if m.group(1) in secrets and secret_ref(m.group(1), secrets[m.group(1)], key) != m.group(0)}


def reveal(value: str, secrets: Mapping[str, str]) -> str:
    """Replace secret references by their values: only ever done to talk to Docker."""
    return SECRET_REF_RE.sub(lambda m: secrets[m.group(1)], value)


def spec_of(labels: Mapping[str, str]) -> dict[str, Any]:
    """The rendered spec a container (or service) was made from, as its `syncer.spec` label
    says; {} when the label is absent or unreadable."""
    try:
        spec = json.loads(labels.get(SPEC) or "{}")
    except ValueError:
        return {}
    return spec if isinstance(spec, dict) else {}


def shared_with(network_mode: Any) -> str:
    """X of `network_mode: container:X` (a definition's name in a spec, a container id on a
    live container); "" for any other mode."""
    mode = str(network_mode or "")
    return mode[len("container:"):] if mode.startswith("container:") else ""


def container_labels(
    *, project: str, definition: str, replica: int, revision: int, spec_hash_: str,
    template_ref: str, commit: str | None, spec: Mapping[str, Any],
) -> dict[str, str]:
    """Every label syncer puts on a container it creates."""
    labels = {
        PROJECT: project,
        DEFINITION: definition,
        REPLICA: str(replica),
        REVISION: str(revision),
        SPEC_HASH: spec_hash_,
        TEMPLATE: template_ref,
        SPEC: canonical_json(spec),
    }
    if commit:
        labels[COMMIT] = commit
    if spec.get("kind") == "job":
        labels[KIND] = "job"
    return labels
