"""Diagnostics and the one exception tree that the CLI and the API catch.

A Diagnostic is data: a problem found in a file, with its position. Stages collect
every diagnostic they can find and raise once (InvalidProject) so that the user sees
every problem at once. Everything else that stops a command is a SyncerError carrying
its exit code; anything outside this tree is a bug.
"""

from __future__ import annotations

from functools import total_ordering
from typing import Any

from syncer.core.record import Record, record


@total_ordering
@record
class Diagnostic(Record):
    """One problem in one file; line and column are 1-based (0 = unknown). Ordered by its
    fields in order, as `@dataclass(order=True)` orders (written here: start-up)."""

    file: str
    line: int
    column: int
    message: str

    def __lt__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() < other._values()
        return NotImplemented

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class SyncerError(Exception):
    """Base of every error a user can cause or see; `exit_code` is what the CLI returns."""

    exit_code = 1
    code = "internal_error"

    def lines(self) -> list[str]:
        """The message as the lines a user reads."""
        return [str(self)]


class UsageError(SyncerError):
    """The command was called wrongly."""

    code = "invalid_request"


class ProjectNotFound(SyncerError):
    """No syncer.yaml where the project was looked for."""

    code = "not_found"


class InvalidProject(SyncerError):
    """The repository's files have problems; carries every diagnostic, sorted."""

    code = "invalid_request"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def lines(self) -> list[str]:
        return [str(d) for d in self.diagnostics]


class SecretError(SyncerError):
    """A secret is missing or unusable (never carries its value). `located`: for each line,
    where its cause is — (the document's `Located`, the path in it, the message) — so that a
    shell holding the files can say `file:line:column` (engine/project.rendered)."""

    code = "invalid_request"

    def __init__(self, message: str = "", located: tuple[tuple[Any, tuple[Any, ...], str], ...] = ()) -> None:
        super().__init__(message)
        self.located = located


class DockerUnavailable(SyncerError):
    """A Docker server could not be reached or answered with an error."""

    code = "internal_error"


class GitError(SyncerError):
    """A git ref or repository could not be read."""

    code = "invalid_request"


class StalePlan(SyncerError):
    """A saved plan no longer matches the repository or the live state."""

    code = "conflict"


class LockHeld(SyncerError):
    """Another apply holds the project's lock."""

    code = "conflict"


class NotFound(SyncerError):
    """A named thing (definition, deployment, revision, key) does not exist."""

    code = "not_found"


class Conflict(SyncerError):
    """The request cannot be done in the current state (e.g. nothing to roll back to)."""

    code = "conflict"
