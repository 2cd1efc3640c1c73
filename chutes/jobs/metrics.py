"""Prometheus metrics of job runs, registered in the chute's registry (served at ``/_metrics``)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["JobMetrics"]

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


class _QueuedRuns(Collector):
    """Queued runs per job, as the store counted them at the last heartbeat (every process's submissions).

    A scrape never waits on the store: the count is at most a heartbeat old.
    """

    def __init__(self, metrics: JobMetrics, jobs: list[str]) -> None:
        self._metrics = metrics
        self._jobs = jobs

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("chutes_job_runs_queued", "Job runs waiting to be executed.", labels=["job"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("chutes_job_runs_queued", "Job runs waiting to be executed.", labels=["job"])
        counts = self._metrics.queued
        for job in self._jobs:
            family.add_metric([job], counts.get(job, 0))
        yield family


class JobMetrics:
    """Runs by job and final status, run durations, last success time per job, and queued runs."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.runs = Counter(
            "chutes_job_runs", "Job runs that finished, by job and status.", ["job", "status"], registry=registry
        )
        self.duration = Histogram(
            "chutes_job_run_duration_seconds",
            "Seconds from a run's start to its end, retries included.",
            ["job"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "chutes_job_last_success_timestamp_seconds",
            "When a run of the job last completed (epoch seconds).",
            ["job"],
            registry=registry,
        )
        self._queued: _QueuedRuns | None = None
        self.queued: dict[str, int] = {}  # queued runs per job, refreshed by the service's heartbeat

    def watch_queue(self, jobs: list[str]) -> None:
        """Report the queued runs of ``jobs`` (as counted in :attr:`queued`)."""
        if self._queued is None:
            self._queued = _QueuedRuns(self, jobs)
            self._registry.register(self._queued)

    def finished(self, job: str, status: str, duration: float | None, now: float) -> None:
        """Count a run that reached a final status."""
        self.runs.labels(job, status).inc()
        if duration is not None and status != "cancelled":
            self.duration.labels(job).observe(max(0.0, duration))
        if status == "completed":
            self.last_success.labels(job).set(now)
