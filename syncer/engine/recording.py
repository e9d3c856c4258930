"""Where an apply's deployments go: the Recorder the Applier writes to, each deployment's
result, and the recorder of `syncer apply` (the store, events, the terminal)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncer.adapters.store import Store, StoreError
from syncer.core.redact import Redactor
from syncer.engine.events import EventSink


class Recorder(Protocol):
    """Where deployments and their log lines go (the store, events, the terminal)."""

    def begin(self, definition: str, server: str, revision: int, actions: list[str]) -> str:
        """A deployment is about to run; returns its id. A SyncerError: it cannot be recorded,
        so it is not run, nor any deployment after it."""

    def log(self, deployment: str, line: str) -> None:
        """One line of a deployment's log (never raises: the Docker work under way goes on)."""

    def finish(self, deployment: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        """The deployment's outcome (never raises)."""


@dataclass
class DeploymentResult:
    """What happened to one definition."""

    definition: str
    server: str
    deployment: str
    ok: bool
    rolled_back: bool = False
    error: str = ""
    actions: list[str] = field(default_factory=list)


class StoreRecorder:
    """Deployments into the store, log lines redacted, events out, progress to the view.

    A write the store refuses (a full disk, a damaged file) must not abandon the Docker work
    under way (a recreate between its old container's stop and its rename): from the first
    one, `error`, nothing more is written (a line is still shown as progress), no deployment
    begins (`begin` raises it), and the apply fails with it once its deployments have ended.
    When the first deployment cannot begin, the Applier removes the networks it made for it.
    """

    def __init__(self, store: Store, run_id: str, trigger: str, commit: str | None,
                 redact: Redactor, progress: Callable[[str, str], None], events: EventSink) -> None:
        self.store, self.run_id, self.trigger, self.commit = store, run_id, trigger, commit
        self.redact = redact  # exactly the project's secrets, not every environment variable
        self.progress, self.events = progress, events
        self.names: dict[str, str] = {}
        self.info: dict[str, dict[str, Any]] = {}
        self.message = ""
        self.images: Mapping[tuple[str, str], Mapping[str, str]] = {}  # stages.tags.heard
        self.error: StoreError | None = None  # the first write the store refused

    def _clean(self, text: str) -> str:
        return self.redact.text(text)

    def _write(self, call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """One write, unless the store refused one already (none is tried after that: a
        locked file makes each wait out the busy timeout, and a log with holes misleads)."""
        if self.error is not None:
            return
        try:
            call(*args, **kwargs)
        except StoreError as exc:
            self.error = self.error or exc

    def begin(self, definition: str, server: str, revision: int, actions: list[str]) -> str:
        if self.error is not None:
            raise self.error
        try:
            dep = self.store.add_deployment(run_id=self.run_id, definition=definition, server=server,
                                            revision=revision, actions=actions, trigger=self.trigger,
                                            commit=self.commit, images=self.images.get((definition, server)))
            self.store.deployment_running(dep)
            self.store.set_definition_status(definition, "deploying")
            if self.commit:
                self.store.log(dep, f"commit {self.commit[:12]} {self.message}".rstrip())
        except StoreError as exc:  # (what it wrote is `pending`/`running`: the next apply marks it interrupted)
            self.error = self.error or exc
            raise self.error from None
        self.names[dep] = definition
        self.info[dep] = {"server": server, "revision": revision, "actions": actions}
        self.events("deployment.started", {"deployment_id": dep, "definition": definition, "server": server,
                                           "revision": revision, "actions": actions})
        return dep

    def log(self, deployment: str, line: str) -> None:
        line = self._clean(line)
        self._write(self.store.log, deployment, line)
        self.progress(self.names.get(deployment, "?"), line)

    def finish(self, deployment: str, *, ok: bool, rolled_back: bool = False, error: str = "") -> None:
        error = self._clean(error)
        self._write(self.store.finish_deployment, deployment, ok=ok, rolled_back=rolled_back, error=error)
        self.progress(self.names.get(deployment, "?"), "done: ok" if ok else "done: failed")
        data = {"deployment_id": deployment, "definition": self.names.get(deployment),
                **self.info.get(deployment, {}), "commit": self.commit, "error": error or None,
                "rolled_back": rolled_back}
        self.events("deployment.success" if ok else "deployment.failed", data)
        if rolled_back:
            self.events("deployment.rolled_back", data)
