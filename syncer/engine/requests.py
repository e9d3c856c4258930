"""The one queue of sync requests, shared by `syncer serve` and `syncer watch`.

Every reason to sync (a file change, a new commit, a push, a Docker event, the timer, an API
call) becomes a `Request` with an id (`req_…`) and a typed `Kind`. Whoever applies takes
everything queued at once as one `Batch`: requests that arrive while an apply runs wait,
and are then served together by exactly one follow-up. Every request of a batch gets the
batch's outcome, so `GET /sync/{id}` answers the same for each of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from syncer.adapters.store import new_id
from syncer.core import clock

Status = Literal["queued", "running", "success", "failed"]


class Kind(str, Enum):
    """Where a request came from."""

    FILE = "file"  # a YAML file under the repository changed
    GIT = "git"  # the tracked branch moved (poll), or a remote is to be fetched
    HOOK = "hook"  # a verified push webhook
    API = "api"  # POST /sync, POST /deployments
    STARTUP = "startup"
    DOCKER = "docker"  # a managed container died, stopped, went unhealthy; a server came back
    TIMER = "timer"  # the periodic resync
    RETRY = "retry"  # a cycle that could not run (lock held, Docker away) tries again

    @property
    def asked(self) -> bool:
        """True when someone asked for the change this request brings (a commit, a push, a
        call), so a plan with changes is no drift; False for self-heal and resync."""
        return self in _ASKED


_ASKED = frozenset({Kind.FILE, Kind.GIT, Kind.HOOK, Kind.API, Kind.STARTUP})


@dataclass(frozen=True)
class Request:
    """One reason to sync."""

    id: str
    kind: Kind
    reason: str
    definition: str | None = None  # None: the whole project
    fetch: bool = False  # fetch the followed remote first
    requested_at: str = ""
    branch: str | None = None  # the branch to fetch (a push's)
    commit: str | None = None  # the commit a push announced
    # a fault's: waits (bounded) until the container list shows what its event announced,
    # so the cycle loads and renders meanwhile and observes only then
    ready: Callable[[], object] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Batch:
    """Everything queued when an apply could start: served by one cycle."""

    requests: tuple[Request, ...]

    @property
    def ids(self) -> list[str]:
        """The request ids this batch answers for."""
        return [r.id for r in self.requests]

    @property
    def reasons(self) -> str:
        """Every distinct reason, in order, for the log."""
        return "; ".join(dict.fromkeys(r.reason for r in self.requests))

    @property
    def targets(self) -> list[str | None]:
        """What to apply: `[None]` (everything) when any request asked for a full sync,
        else each definition asked for, once."""
        wanted = {r.definition for r in self.requests}
        if None in wanted:
            return [None]
        return [*sorted(d for d in wanted if d is not None)]

    def ready(self) -> None:
        """Wait until the live state every request of the batch waits for can be read."""
        for r in self.requests:
            if r.ready is not None:
                r.ready()

    @property
    def fetch(self) -> bool:
        """True when any request wants the remote fetched first."""
        return any(r.fetch for r in self.requests)

    @property
    def branch(self) -> str | None:
        """The branch the newest push of the batch moved (None: no push)."""
        return next((r.branch for r in reversed(self.requests) if r.branch), None)

    @property
    def called(self) -> bool:
        """True when someone called for this sync (POST /sync, POST /deployments): watch then
        holds nothing back (stages/backoff.py)."""
        return any(r.kind is Kind.API for r in self.requests)

    @property
    def drift(self) -> bool:
        """True when nobody asked for a change: a plan with changes found now is drift."""
        return not any(r.kind.asked for r in self.requests)


@dataclass(frozen=True)
class Outcome:
    """What one apply (or a whole batch) came to."""

    status: Literal["success", "failed"]
    run_ids: tuple[str, ...] = ()
    commit: str | None = None
    error: str | None = None

    @staticmethod
    def combine(outcomes: list[Outcome]) -> Outcome:
        """One outcome for several applies: failed when any failed, every run id kept."""
        if not outcomes:
            return Outcome("failed", error="the cycle did not finish")
        errors = [o.error for o in outcomes if o.error]
        failed = any(o.status == "failed" for o in outcomes)
        return Outcome("failed" if failed else "success", tuple(r for o in outcomes for r in o.run_ids),
                       next((o.commit for o in reversed(outcomes) if o.commit), None), "; ".join(errors) or None)


@dataclass
class _Record:
    request: Request
    status: Status = "queued"
    started_at: str | None = None
    finished_at: str | None = None
    outcome: Outcome | None = None

    def as_dict(self) -> dict[str, Any]:
        r, o = self.request, self.outcome
        return {"id": r.id, "status": self.status, "reason": r.reason, "kind": r.kind.value,
                "definition": r.definition, "requested_at": r.requested_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "run_ids": list(o.run_ids) if o else [],
                "commit": o.commit if o else None, "error": o.error if o else None,
                "pushed_commit": r.commit, "branch": r.branch}


class RequestQueue:
    """Sync requests waiting, and what became of the last `keep` of them. Thread-safe."""

    def __init__(self, *, keep: int = 500) -> None:
        self.keep = keep
        self._cond = threading.Condition()
        self._pending: list[Request] = []
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._closed = False

    def put(self, kind: Kind, reason: str, *, definition: str | None = None, fetch: bool = False,
            branch: str | None = None, commit: str | None = None,
            ready: Callable[[], object] | None = None) -> str:
        """Queue a request; returns its id at once."""
        request = Request(new_id("req"), kind, reason, definition, fetch, clock.iso(), branch, commit, ready)
        with self._cond:
            self._pending.append(request)
            self._records[request.id] = _Record(request)
            while len(self._records) > self.keep:
                self._records.popitem(last=False)
            self._cond.notify_all()
        return request.id

    def take(self, timeout: float | None = None) -> Batch | None:
        """Wait (up to `timeout` seconds; None: until closed) for a request, then take it and
        everything queued behind it. None when nothing came, or the queue is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closed, timeout) or not self._pending:
                return None
            batch, self._pending = Batch(tuple(self._pending)), []
            return batch

    def close(self) -> None:
        """Wake every waiter; `take` returns None from now on once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def describe(self, request_id: str) -> dict[str, Any] | None:
        """What became of a request (queued, running, success, failed), or None when unknown."""
        with self._cond:
            record = self._records.get(request_id)
            return record.as_dict() if record is not None else None

    def started(self, batch: Batch) -> None:
        """Every request of `batch` is running."""
        now = clock.iso()
        with self._cond:
            for record in self._of(batch):
                record.status, record.started_at = "running", now

    def finished(self, batch: Batch, outcome: Outcome) -> None:
        """Every request of `batch` ends with `outcome` (the same run ids for each)."""
        now = clock.iso()
        with self._cond:
            for record in self._of(batch):
                record.status, record.finished_at, record.outcome = outcome.status, now, outcome

    def serve(self, batch: Batch, apply: Callable[[str | None], Outcome],
              fetch: Callable[[Batch], Outcome | None] | None = None) -> Outcome:
        """Run `apply` once per target of `batch`, recording the batch running, then its
        combined outcome for every request in it. `fetch` runs first; the failed outcome it
        may return fails the batch, and the applies still run (for the other requests)."""
        self.started(batch)
        outcomes: list[Outcome] = []
        failed = fetch(batch) if fetch is not None else None
        try:
            for target in batch.targets:
                outcomes.append(apply(target))
        finally:
            result = Outcome.combine(outcomes) if len(outcomes) == len(batch.targets) else Outcome(
                "failed", tuple(r for o in outcomes for r in o.run_ids), error="the cycle did not finish")
            if failed is not None:
                result = Outcome.combine([failed, result])
            self.finished(batch, result)
        return result

    def _of(self, batch: Batch) -> list[_Record]:
        return [self._records[i] for i in batch.ids if i in self._records]
