"""Prometheus metrics of job runs, registered in the chute's registry (served at ``/_metrics``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["JobMetrics"]

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))


class _QueuedRuns(Collector):
    """Queued runs per job, read from the store at scrape time so it counts every process's submissions."""

    def __init__(self, path: Path, jobs: list[str]) -> None:
        self._path = path
        self._jobs = jobs

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("chutes_job_runs_queued", "Job runs waiting to be executed.", labels=["job"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("chutes_job_runs_queued", "Job runs waiting to be executed.", labels=["job"])
        counts: dict[str, int] = {}
        if self._path.exists():
            # A connection of its own: scrapes may come from any thread, and a read never blocks writers in WAL.
            try:
                db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=1.0)
                try:
                    rows = db.execute("SELECT job, COUNT(*) FROM runs WHERE status = 'queued' GROUP BY job").fetchall()
                finally:
                    db.close()
                counts = {str(job): int(count) for job, count in rows}
            except sqlite3.Error:
                counts = {}
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

    def watch_queue(self, path: Path, jobs: list[str]) -> None:
        """Report the queued runs of ``jobs`` held in the store at ``path``."""
        if self._queued is None:
            self._queued = _QueuedRuns(path, jobs)
            self._registry.register(self._queued)

    def finished(self, job: str, status: str, duration: float | None, now: float) -> None:
        """Count a run that reached a final status."""
        self.runs.labels(job, status).inc()
        if duration is not None and status != "cancelled":
            self.duration.labels(job).observe(max(0.0, duration))
        if status == "completed":
            self.last_success.labels(job).set(now)
