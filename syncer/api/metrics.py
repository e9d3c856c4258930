"""Prometheus metrics of the serving process (GET /api/v1/metrics), in their own registry.

Counts that outlive the process (applies, deployments, webhook deliveries, apply
durations) are read from the store at scrape time, so they cover every process that
writes it (CLI applies, the watch loop, this server). Drift and containers by state come
from the same status snapshot GET /status serves (computed at most once a second).
HTTP requests and plan durations are counted by this process.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from syncer import __version__
from syncer.core.errors import SyncerError
from syncer.engine.queries import StateView

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ApiMetrics:
    """The registry /metrics renders, and the in-process counters the server feeds."""

    def __init__(self, state: StateView, status: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        # first, so that the plan it may compute is in the same scrape's plan histogram
        self.registry.register(_StateCollector(state, status))
        self.requests = Counter("syncer_http_requests", "HTTP requests served, by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("syncer_http_request_duration_seconds", "Time to answer an HTTP request, by route",
                                 ["route"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.plans = Histogram("syncer_plan_duration_seconds", "Time to load, render, observe and plan the project"
                               " (status computed by this process)", buckets=DURATION_BUCKETS, registry=self.registry)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _by(name: str, doc: str, label: str, counts: dict[str, int], known: tuple[str, ...] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in sorted({**dict.fromkeys(known, 0), **counts}.items()):
        family.add_metric([key], value)
    return family


def _histogram(name: str, doc: str, values: list[float]) -> HistogramMetricFamily:
    buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in DURATION_BUCKETS]
    buckets.append(("+Inf", float(len(values))))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=sum(values))


class _StateCollector:
    """Read at scrape time: the store's counts, and the status snapshot."""

    def __init__(self, state: StateView, status: Callable[[], dict[str, Any]]) -> None:
        self.state, self.status = state, status

    def collect(self) -> Iterator[Metric]:
        """Every metric family derived from the store and the live status."""
        info = GaugeMetricFamily("syncer_build_info", "syncer's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _by("syncer_applies", "Apply runs recorded in the store, by status", "status",
                  self.state.counts("runs"), ("success", "failed", "running", "interrupted"))
        yield _by("syncer_deployments", "Deployments recorded in the store, by status", "status",
                  self.state.counts("deployments"), ("pending", "running", "success", "failed"))
        yield _by("syncer_webhook_deliveries", "Outgoing webhook deliveries, by outcome", "status",
                  self.state.counts("webhook_deliveries"), ("pending", "sending", "delivered", "failed"))
        yield _histogram("syncer_apply_duration_seconds", "Duration of finished apply runs recorded in the store",
                         self.state.run_durations())
        yield from self._live()

    def _live(self) -> Iterator[Metric]:
        up = "1 when the project loads and every server answers"
        try:
            snapshot = self.status()
        except SyncerError:
            yield GaugeMetricFamily("syncer_status_up", up, value=0)
            return
        rows, servers = snapshot["rows"], snapshot.get("servers") or []
        yield GaugeMetricFamily("syncer_status_up", up, value=int(all(s.get("reachable") for s in servers)))
        reachable = GaugeMetricFamily("syncer_server_up", "1 when the server's engine answers", labels=["server"])
        for s in servers:
            reachable.add_metric([str(s.get("name"))], int(bool(s.get("reachable"))))
        yield reachable
        yield GaugeMetricFamily("syncer_definitions", "Definitions in the project or on its servers",
                                value=len(rows))
        yield GaugeMetricFamily("syncer_definitions_drifted", "Definitions whose live containers differ from git",
                                value=sum(1 for r in rows if not r.in_sync))
        states = Tally(c["state"] or "unknown" for r in rows for c in r.containers)
        yield _by("syncer_containers", "Managed containers, by state", "state", dict(states),
                  ("running", "exited", "created", "paused", "restarting", "dead"))
