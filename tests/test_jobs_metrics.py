"""Job metrics in the chute's Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from chutes.jobs.metrics import JobMetrics


def test_finished_runs_are_counted_timed_and_stamped() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    metrics.finished("sync", "completed", 0.2, 1000.0)
    metrics.finished("sync", "failed", 1.5, 1001.0)
    metrics.finished("sync", "cancelled", None, 1002.0)
    sample = registry.get_sample_value
    assert sample("chutes_job_runs_total", {"job": "sync", "status": "completed"}) == 1
    assert sample("chutes_job_runs_total", {"job": "sync", "status": "failed"}) == 1
    assert sample("chutes_job_runs_total", {"job": "sync", "status": "cancelled"}) == 1
    assert sample("chutes_job_run_duration_seconds_count", {"job": "sync"}) == 2
    assert sample("chutes_job_run_duration_seconds_bucket", {"job": "sync", "le": "0.5"}) == 1
    assert sample("chutes_job_last_success_timestamp_seconds", {"job": "sync"}) == 1000.0


def test_queued_runs_are_reported_as_the_last_heartbeat_counted_them() -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    metrics.watch_queue(["a", "b"])
    metrics.watch_queue(["a", "b"])  # registering twice is harmless
    assert registry.get_sample_value("chutes_job_runs_queued", {"job": "a"}) == 0
    metrics.queued = {"a": 2, "gone": 5}
    assert registry.get_sample_value("chutes_job_runs_queued", {"job": "a"}) == 2
    assert registry.get_sample_value("chutes_job_runs_queued", {"job": "b"}) == 0
    assert registry.get_sample_value("chutes_job_runs_queued", {"job": "gone"}) is None
    assert b"# TYPE chutes_job_runs_queued gauge" in generate_latest(registry)
