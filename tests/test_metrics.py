"""Prometheus exposition of cord requests, latency, admission and rejections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chutes.chute import Chute
from chutes.server.admission import Admission
from chutes.server.metrics import LATENCY_BUCKETS, CordStats, Metrics


def test_cord_stats_bucket_and_sum() -> None:
    metrics = Metrics(Admission(2, 1, 1))
    stats = metrics.cord_stats("/a", "POST")
    stats.record(200, 0.004)
    stats.record(200, 0.2)
    stats.record(422, 100.0)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    counts = {s.labels["status"]: s.value for s in families["chutes_requests"].samples if s.name.endswith("_total")}
    assert counts == {"200": 2.0, "422": 1.0}
    buckets = {
        (s.labels["status"], s.labels["le"]): s.value
        for s in families["chutes_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets[("200", "0.005")] == 1.0
    assert buckets[("200", "0.25")] == 2.0
    assert buckets[("200", "+Inf")] == 2.0
    assert buckets[("422", "60.0")] == 0.0
    assert buckets[("422", "+Inf")] == 1.0
    assert len([key for key in buckets if key[0] == "200"]) == len(LATENCY_BUCKETS) + 1
    assert isinstance(stats, CordStats)


def test_metrics_route_reports_cords_and_admission() -> None:
    chute = Chute(username="acme", name="metered", image="python:3.11", concurrency=3)

    @chute.cord(public_api_path="/ok")
    async def ok(self: Chute, n: int) -> int:
        return n

    with TestClient(chute) as client:
        client.post("/ok", json={"n": 1})
        client.post("/ok", json={"n": "x"})
        response = client.get("/_metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'chutes_requests_total{method="POST",path="/ok",status="200"} 1.0' in text
    assert 'chutes_requests_total{method="POST",path="/ok",status="422"} 1.0' in text
    assert 'chutes_request_duration_seconds_count{method="POST",path="/ok",status="200"} 1.0' in text
    assert "chutes_requests_in_flight 0.0" in text
    assert "chutes_requests_queued 0.0" in text
    assert "chutes_concurrency 3.0" in text
    # built-in routes are not counted as cords
    assert "/_metrics" not in text


def test_refused_calls_are_counted_however_they_were_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_MAX_BODY_SIZE", "10")
    chute = Chute(username="acme", name="refusing", image="python:3.11")

    @chute.cord(public_api_path="/x")
    async def x(self: Chute, a: str = "") -> dict[str, str]:
        return {}

    def chunks() -> Iterator[bytes]:
        yield b'{"a": "' + b"z" * 50 + b'"}'

    with TestClient(chute) as client:
        client.post("/x", json={"a": "z" * 50})  # refused from its Content-Length
        client.post("/x", content=chunks())  # refused while reading: no Content-Length
        text = client.get("/_metrics").text
    assert 'chutes_requests_total{method="POST",path="/x",status="413"} 2.0' in text
    assert 'chutes_requests_rejected_total{reason="too_large"} 2.0' in text
