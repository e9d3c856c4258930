"""A burst of network events, gathered into one sync request.

One hand change of a network sends several events: Docker sends each `disconnect` twice, a
few milliseconds apart, and taking containers off a network and removing it is a handful
more. Each would be a request, and the first would start a cycle that the next ones follow
with another: two plans or more for one change. As the watch gathers a burst of file changes
into one trigger (its `--debounce` quiet time), it gathers these: each event opens a check
(is it the project's, and still so), and once no event has come for the quiet time and
every check has ended, what they found is requested once — for the one definition they
name, or for the whole project when they name more than one, or a network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Request = Callable[[str, str | None], object]  # (reason, definition; None: the whole project)


class Burst:
    """Findings of events that come close together, requested together (thread-safe)."""

    def __init__(self, quiet: float, request: Request, *, longest: float | None = None) -> None:
        """`longest`: how long a burst may go on before what it found is requested anyway (the
        stream also carries other containers' events on the shared networks the project joins:
        a busy proxy network must not hold a fault back); by default 4 quiet times, at least 2 s."""
        self.quiet = quiet
        self.longest = longest if longest is not None else max(4 * quiet, 2.0)
        self.request = request
        self._first = 0.0  # monotonic time of the burst's first event
        self._cond = threading.Condition()
        self._open = 0  # checks begun and not ended
        self._last = 0.0  # monotonic time of the newest event
        self._found: dict[str | None, str] = {}  # definition (None: the project) -> the first reason
        self._draining = False

    def begin(self) -> None:
        """An event came: its check has begun, and the quiet time starts again."""
        with self._cond:
            self._open += 1
            self._last = time.monotonic()
            if not self._draining:
                self._draining, self._first = True, self._last
                threading.Thread(target=self._drain, daemon=True, name="network-burst").start()

    def end(self, reason: str = "", definition: str | None = None, *, found: bool = False) -> None:
        """The check of an event ended: with `found`, `definition` (None: the whole project)
        is to be synced for `reason`."""
        with self._cond:
            self._open -= 1
            if found:
                self._found.setdefault(definition, reason)
                if not self._draining:  # (its burst was requested at its longest, this check still open)
                    self._draining, self._first, self._last = True, time.monotonic(), time.monotonic()
                    threading.Thread(target=self._drain, daemon=True, name="network-burst").start()
            self._cond.notify_all()

    def _drain(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                quiet_end = self._last + self.quiet
                cap = self._first + self.longest if self._found else None  # (a fault found: not held for ever)
                if (self._open <= 0 and now >= quiet_end) or (cap is not None and now >= cap):
                    break
                ends = [t - now for t in (quiet_end, cap) if t is not None and t > now]
                self._cond.wait(min(ends) if ends else None)  # (an ended check notifies)
            found, self._found, self._draining = self._found, {}, False
        if found:
            self.request(*gathered(found))


def gathered(found: dict[str | None, str]) -> tuple[str, str | None]:
    """One request for a burst's findings: (reason, definition), the definition being None
    (the whole project) when they name more than one, or the project itself."""
    if len(found) == 1 and None not in found:
        [(definition, reason)] = found.items()
        return reason, definition
    return "; ".join(found.values()), None
