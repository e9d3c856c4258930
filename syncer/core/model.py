"""The data that crosses stages: frozen dataclasses, stdlib only. Specs are plain JSON-like
dicts (a rendered spec is a contract, hashed as canonical JSON); the records name the rest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field, replace
from functools import cached_property
from typing import Any

from syncer.core.labels import spec_of
from syncer.core.live import (  # (the live state lives there: re-exported, every module names it here)
    LiveContainer as LiveContainer, LiveNetwork as LiveNetwork, LiveTask as LiveTask, Observed as Observed,
    RegistryAnswer as RegistryAnswer, ServerState as ServerState, spec_replicas as spec_replicas,
    SERVICE_SHORT as SERVICE_SHORT,
)
from syncer.core.record import Record, record
from syncer.core.versions import newest_first

JSON = Any  # a JSON-compatible value: dict, list, str, int, float, bool, None


@record
class Located(Record):
    """Where a document came from: repo-relative file and its index among `---` documents."""

    file: str
    doc: int = 0


@record
class FileRef(Record):
    """A file a server entry names: `rel` inside the repository at `root`, or the file whose
    path the environment variable `env` holds (read when the server is reached)."""

    rel: str = ""
    root: str = ""
    env: str = ""


@record
class TLS(Record):
    """Client TLS for a `tcp://` server: CA to check the engine with, client certificate and key."""

    ca: FileRef | None = None
    cert: FileRef | None = None
    key: FileRef | None = None
    verify: bool = True


@record
class Server(Record):
    """A Docker endpoint; `docker` None means DOCKER_HOST or the local socket."""

    name: str
    docker: str | None = None
    environment: str = "development"
    description: str = ""
    tls: TLS | None = None
    kind: str = "docker"  # "swarm": a Swarm manager (definitions become services); else containers


@record
class WebhookTarget(Record):
    """An outgoing webhook: where, which events, and the secret reference that signs."""

    url: str
    events: tuple[str, ...]
    secret: Mapping[str, str] | None = None
    format: str = "generic"  # generic (signed JSON) | slack | discord | ntfy


@record
class ProjectConfig(Record):
    """syncer.yaml, validated."""

    name: str
    servers: Mapping[str, Server]
    default_server: str
    default_profile: str
    template_dirs: tuple[str, ...]
    definition_dirs: tuple[str, ...]
    prune: bool = True
    allow_literal_secrets: bool = False
    webhooks: tuple[WebhookTarget, ...] = ()
    raw: Mapping[str, JSON] = field(default_factory=dict)
    networks: Mapping[str, bool] = field(default_factory=dict)  # `networks:` name → external
    internal_networks: tuple[str, ...] = ()  # `networks:` names with `internal: true` (no route out)


@record
class Template(Record):
    """A catalog entry; `inputs` is normalised JSON Schema."""

    id: str
    name: str
    version: str
    description: str
    taxonomy: Mapping[str, str]
    deprecated: bool
    inputs: Mapping[str, JSON]
    spec: Mapping[str, JSON]
    profiles: Mapping[str, Mapping[str, JSON]]
    spec_hash: str
    origin: Located
    kind: str = "service"  # or "job": runs to completion

    @property
    def ref(self) -> str:
        """`id@version`, as the `syncer.template` label writes it."""
        return f"{self.id}@{self.version}"

    def secret_inputs(self) -> frozenset[str]:
        """Inputs whose values are secrets (writeOnly or format: password)."""
        props = self.inputs.get("properties", {})
        return frozenset(k for k, v in props.items()
                         if isinstance(v, dict) and (v.get("writeOnly") or v.get("format") == "password"))


@record
class Definition(Record):
    """One deployable thing: a template, its params, where and how many."""

    name: str
    template: str
    template_version: str | None
    server: str
    profile: str
    replicas: int | None
    params: Mapping[str, JSON]
    depends_on: tuple[str, ...]
    overrides: Mapping[str, JSON]
    origin: Located
    conditions: Mapping[str, str] = field(default_factory=dict)  # dependency → started|healthy|completed
    self_heal: Mapping[str, JSON] = field(default_factory=dict)  # {unhealthy: report|restart}
    restarts_with: tuple[str, ...] = ()  # dependencies (`restart: true`) whose update restarts it


@record
class Project(Record):
    """Everything loaded and validated from one repository state."""

    root: str
    config: ProjectConfig
    templates: tuple[Template, ...]
    definitions: tuple[Definition, ...]
    commit: str | None = None
    dirty: bool = False
    commit_message: str = ""
    # the digest of the YAML bytes (and policy) it was validated from; "" when unknown (a git ref)
    source: str = ""

    def definition(self, name: str) -> Definition | None:
        """The definition called `name`, if any (an index, not a scan: 100k definitions)."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, Definition]:
        return {d.name: d for d in self.definitions}

    def template_for(self, ref: str) -> Template | None:
        """The template `ref` names: `id@version` exactly, or for a plain id its newest version
        not deprecated (the newest deprecated one when all are): validation's and the API's."""
        tid, _, version = ref.partition("@")
        versions = newest_first(t for t in self.templates if t.id == tid)
        if version:
            return next((t for t in versions if t.version == version), None)
        return next(iter([t for t in versions if not t.deprecated] or versions), None)


@record
class ContainerSpec(Record):
    """One desired container. `spec` is the rendered spec (secrets as references)."""

    project: str
    server: str
    definition: str
    replica: int
    name: str
    template_ref: str
    spec: Mapping[str, JSON]
    spec_hash: str
    depends_on: tuple[str, ...] = ()
    # container path → bytes for `files` (secrets as references, revealed only for Docker)
    payload: Mapping[str, bytes] = field(default_factory=dict)
    restarts_with: tuple[str, ...] = ()  # its definition's: dependencies whose update restarts it

    @property
    def is_job(self) -> bool:
        """A container that runs to completion (`kind: job` on its template)."""
        return self.spec.get("kind") == "job"


@record
class Desired(Record):
    """The render stage's result: every container that should exist."""

    project: str
    containers: tuple[ContainerSpec, ...]
    definitions: tuple[str, ...]
    commit: str | None = None


@record
class Reason(Record):
    """Why an action happens: a field with before/after, or just a cause in words."""

    field: str
    before: JSON = None
    after: JSON = None
    sensitive: bool = False


@record
class Action(Record):
    """One step of a plan."""

    action: str  # one of ACTION_KINDS, update (a Swarm service rolled) or restart (after a dependency)
    server: str
    definition: str
    container: str
    revision: int
    cause: str
    reasons: tuple[Reason, ...] = ()
    replica: int = 1
    spec_hash: str = ""
    container_id: str = ""
    stay_stopped: bool = False  # a recreate: the new container is made but not started (held stopped)

    @property
    def attention(self) -> bool:
        """A noop that does not mean all is well: the spec is in sync (nothing to write) but a
        Swarm service runs fewer tasks than it wants (stages/swarm_status.noop_cause). The plan's
        text shows it without --show-noop."""
        return self.action == "noop" and self.cause.startswith(IN_SYNC_BUT)


IN_SYNC_BUT = "in sync, but "  # how the cause of a noop that needs attention begins
ACTION_KINDS = ("create", "recreate", "start", "remove", "conflict", "unreachable", "run", "network create",
                "network remove", "noop")
BLOCKING = ("conflict", "unreachable")  # planned but never acted on: they need a human or a server
NETWORK_ACTIONS = ("network create", "network remove")


@record
class Plan(Record):
    """A plan is data: the actions plus what it was computed from."""

    project: str
    commit: str | None
    dirty: bool
    fingerprint: str
    created_at: str
    actions: tuple[Action, ...]
    unreachable: Mapping[str, str] = field(default_factory=dict)  # server -> why it did not answer
    swarm: frozenset[str] = frozenset()  # the Swarm servers: their actions are services, not containers

    def summary(self) -> dict[str, int]:
        """Count of actions per kind, every kind present."""
        counts = {k: 0 for k in ACTION_KINDS}
        for a in self.actions:  # `update` (a Swarm service rolled) only where there is one, so that
            counts[a.action] = counts.get(a.action, 0) + 1  # container-only plans keep DESIGN.md's summary
        return counts

    def by_server(self) -> dict[str, dict[str, int]]:
        """`summary()` per server, every server the plan saw (unreachable ones included)."""
        out: dict[str, dict[str, int]] = {s: {k: 0 for k in ACTION_KINDS} for s in self.unreachable}
        for a in self.actions:
            counts = out.setdefault(a.server, {k: 0 for k in ACTION_KINDS})
            counts[a.action] = counts.get(a.action, 0) + 1  # `update` only where there is one
        return dict(sorted(out.items()))

    @property
    def has_changes(self) -> bool:
        """True when applying would change anything (conflicts count: they need a human)."""
        return any(a.action != "noop" for a in self.actions)
