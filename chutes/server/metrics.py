"""Prometheus metrics of one chute, in a registry of its own (several chutes can live in one process).

Cord counters and latency histograms are plain integers updated on the event loop and turned into
Prometheus families only when ``/_metrics`` is scraped: the hot path takes no lock and makes no call
into the client library.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

from chutes.server.admission import Admission
from chutes.server.shared_metrics import ENV as SHARED_ENV
from chutes.server.shared_metrics import SharedMetrics

BATCH_SIZE_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0)
BATCH_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _le(bound: float) -> str:
    # Prometheus' own spelling of bucket bounds ("+Inf", "0.005", "1.0").
    return "+Inf" if bound == float("inf") else repr(bound)


class CordStats:
    """Request count, latency sum and latency buckets of one cord, per status code."""

    __slots__ = ("path", "method", "by_status")

    def __init__(self, path: str, method: str) -> None:
        self.path = path
        self.method = method
        self.by_status: dict[int, list[float]] = {}

    def record(self, status: int, seconds: float) -> None:
        """Count one answered call (runs on the event loop only, so no lock)."""
        entry = self.by_status.get(status)
        if entry is None:
            # [count, sum, bucket 0, ..., bucket n-1, +Inf bucket]
            entry = self.by_status[status] = [0.0] * (len(LATENCY_BUCKETS) + 3)
        entry[0] += 1
        entry[1] += seconds
        entry[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1


class _Histogram:
    """Count, sum and per-bucket counts of one observed quantity (cumulated only at scrape time)."""

    __slots__ = ("bounds", "count", "total", "buckets")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(bounds) + 1)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.buckets[bisect_left(self.bounds, value)] += 1

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0.0
        out = []
        for bound, count in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += count
            out.append((_le(bound), running))
        return out


class BatchStats:
    """Sizes of the batches a batching cord ran, and how long each one's oldest item waited for it."""

    __slots__ = ("path", "method", "sizes", "waits")

    def __init__(self, path: str, method: str) -> None:
        self.path = path
        self.method = method
        self.sizes = _Histogram(BATCH_SIZE_BUCKETS)
        self.waits = _Histogram(BATCH_WAIT_BUCKETS)

    def record_batch(self, size: int, wait: float) -> None:
        """Count one batch as it starts (on the event loop only, so no lock)."""
        self.sizes.observe(size)
        self.waits.observe(wait)


class _BatchCollector:
    def __init__(self) -> None:
        self.stats: list[BatchStats] = []

    def collect(self) -> Iterator[Metric]:
        if not self.stats:  # no batching cord: no empty families in the exposition
            return
        labels = ["path", "method"]
        sizes = HistogramMetricFamily("chutes_batch_size", "Items per batch of a batching cord.", labels=labels)
        waits = HistogramMetricFamily(
            "chutes_batch_wait_seconds", "Wait of a batch's oldest item before the batch ran.", labels=labels
        )
        for stats in self.stats:
            sizes.add_metric([stats.path, stats.method], stats.sizes.cumulative(), stats.sizes.total)
            waits.add_metric([stats.path, stats.method], stats.waits.cumulative(), stats.waits.total)
        yield sizes
        yield waits


class _CordCollector:
    def __init__(self) -> None:
        self.stats: list[CordStats] = []

    def collect(self) -> Iterator[Metric]:
        labels = ["path", "method", "status"]
        requests = CounterMetricFamily("chutes_requests", "Cord requests answered.", labels=labels)
        latency = HistogramMetricFamily("chutes_request_duration_seconds", "Cord request latency.", labels=labels)
        for stats in self.stats:
            for status, entry in sorted(stats.by_status.items()):
                values = [stats.path, stats.method, str(status)]
                requests.add_metric(values, entry[0])
                cumulative = 0.0
                buckets = []
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), entry[2:], strict=True):
                    cumulative += count
                    buckets.append((_le(bound), cumulative))
                latency.add_metric(values, buckets, entry[1])
        yield requests
        yield latency


class Metrics:
    """Cord counters and latency, admission gauges and rejections; job metrics register here too."""

    def __init__(self, admission: Admission) -> None:
        self.registry = CollectorRegistry()
        self._cords = _CordCollector()
        self.registry.register(self._cords)
        self._batches = _BatchCollector()
        self.registry.register(self._batches)
        self.rejected = Counter(
            "chutes_requests_rejected",
            "Requests refused: overloaded, rate_limited, unauthorized, too_large, body_timeout, "
            "unsupported_media_type, timeout.",
            ("reason",),
            registry=self.registry,
        )
        in_flight = Gauge("chutes_requests_in_flight", "Cord calls executing now.", registry=self.registry)
        in_flight.set_function(lambda: admission.in_use)
        queued = Gauge("chutes_requests_queued", "Cord calls waiting for a slot.", registry=self.registry)
        queued.set_function(lambda: admission.queued)
        capacity = Gauge("chutes_concurrency", "Cord calls allowed at once.", registry=self.registry)
        capacity.set(admission.capacity)
        folder = os.environ.get(SHARED_ENV)
        self.shared = SharedMetrics(Path(folder), self.registry) if folder else None

    def cord_stats(self, path: str, method: str) -> CordStats:
        """The stats record of one cord, exported at scrape time."""
        stats = CordStats(path, method)
        self._cords.stats.append(stats)
        return stats

    def batch_stats(self, path: str, method: str) -> BatchStats:
        """The batch record of one batching cord, exported at scrape time."""
        stats = BatchStats(path, method)
        self._batches.stats.append(stats)
        return stats

    def render(self) -> bytes:
        """The Prometheus text exposition: this process's, or the whole server's under ``serve --workers``."""
        if self.shared is not None:
            return self.shared.render()
        return generate_latest(self.registry)
