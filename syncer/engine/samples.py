"""CPU and memory samples of the project's running containers, kept in the store for the
API's metric series (`GET /definitions/{id}/metrics`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncer.adapters.store import Store
from syncer.core import clock
from syncer.core.errors import SyncerError
from syncer.core.model import Project

if TYPE_CHECKING:
    from syncer.engine.observe import EngineFactory

log = logging.getLogger("syncer.engine.samples")


def _cpu_counters(stats: Mapping[str, Any]) -> tuple[int, int, int] | None:
    cpu = stats.get("cpu_stats") or {}
    total, system = (cpu.get("cpu_usage") or {}).get("total_usage"), cpu.get("system_cpu_usage")
    if not isinstance(total, int) or not isinstance(system, int):
        return None
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return total, system, int(cpus)


def cpu_percent(before: tuple[int, int, int] | None, after: tuple[int, int, int] | None) -> float | None:
    """Docker's CPU %: container CPU time over host CPU time between two readings, times CPUs."""
    if before is None or after is None or after[1] <= before[1] or after[0] < before[0]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]) * after[2] * 100.0, 3)


def memory_used(stats: Mapping[str, Any]) -> int | None:
    """Memory in use as `docker stats` shows it: usage minus the inactive page cache."""
    mem = stats.get("memory_stats") or {}
    usage = mem.get("usage")
    if not isinstance(usage, int):
        return None
    detail = mem.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, usage - int(cache or 0))


class MetricSampler:
    """Reads CPU and memory of the project's running containers into the store.

    A one-shot stats reading carries cumulative CPU counters only, so a container's CPU %
    is the change since this sampler's previous reading of it (none on the first).
    """

    def __init__(self, *, engines: EngineFactory | None = None) -> None:
        self.engines = engines
        self.previous: dict[str, tuple[int, int, int]] = {}

    def sample(self, project: Project, store: Store) -> int:
        """One reading of every running container on every server; returns how many."""
        from syncer.adapters.docker import Engine

        at, rows, seen = clock.stamp(), [], {}
        for server in project.config.servers.values():
            try:
                eng = (self.engines or Engine)(server)
            except SyncerError:
                continue  # unreachable this round; the next round tries again
            try:
                for c in eng.list_project(project.config.name):
                    if c.state != "running" or not c.definition:
                        continue
                    try:
                        stats = eng.stats(c.id)
                    except SyncerError:
                        continue  # gone between the list and the reading
                    counters = _cpu_counters(stats)
                    rows.append((str(c.definition), c.name, at, cpu_percent(self.previous.get(c.id), counters),
                                 memory_used(stats)))
                    if counters is not None:
                        seen[c.id] = counters
            except SyncerError:
                continue
            finally:
                eng.close()
        self.previous = seen
        store.add_samples(rows)
        return len(rows)


class SampleRecorder:
    """Every `interval` seconds, a sample of the project `project()` returns into the store
    at `state_dir`; samples older than `retention` seconds are dropped. A thread of its own."""

    def __init__(self, state_dir: Path, project: Callable[[], Project], *, interval: float, retention: float,
                 engines: EngineFactory | None = None) -> None:
        self.state_dir, self.project = state_dir, project
        self.interval, self.retention = interval, retention
        self.sampler = MetricSampler(engines=engines)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="syncer-sampler", daemon=True)

    def start(self) -> SampleRecorder:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the reading in flight."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def once(self, store: Store) -> int:
        """One round; returns how many containers were read."""
        try:
            count = self.sampler.sample(self.project(), store)
        except SyncerError as exc:
            log.warning("metric sampling skipped: %s", str(exc).splitlines()[0] if str(exc) else exc)
            count = 0
        store.prune_samples(clock.stamp(clock.now() - self.retention))
        return count

    def _loop(self) -> None:
        store = Store(self.state_dir)  # its own connection: a slow write never holds up a request
        try:
            while not self._stopping.is_set():
                try:
                    self.once(store)
                except SyncerError as exc:  # the store busy or full: said in a line, tried next round
                    log.warning("metric sampling failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
                except Exception:  # noqa: BLE001 - sampling must never take the server down
                    log.exception("metric sampling failed")
                self._stopping.wait(self.interval)
        finally:
            store.close()
