"""The /_jobs routes, through the chute's full lifecycle (``TestClient(chute)``), on both stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from chutes.chute import Chute

chute = Chute(username="test", name="api-test", image="python:3.11")
release = threading.Event()


class Order(BaseModel):
    item: str
    quantity: int = 1


@chute.job(schedule="0 2 * * *", retry_count=2, timeout=30)
async def nightly(self: Chute) -> str:
    """Clean up every night."""
    return "cleaned"


@chute.job()
async def add(self: Chute, a: int, b: int = 1) -> int:
    return a + b


@chute.job(name="place-order")
async def place(self: Chute, order: Order) -> dict[str, Any]:
    return {"item": order.item, "total": order.quantity * 2}


@chute.job(retry_count=0)
async def note(self: Chute, value: Any = None) -> Any:
    return value


@chute.job(retry_count=0)
def hold(self: Chute) -> str:
    release.wait(5)
    return "released"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]) -> Iterator[TestClient]:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    if store_env:
        monkeypatch.setenv("CHUTES_DATABASE_URL", store_env["database_url"])
    monkeypatch.setenv("CHUTES_JOB_BACKOFF", "0")
    monkeypatch.setenv("CHUTES_SHUTDOWN_GRACE", "0.1")
    release.clear()
    with TestClient(chute) as test_client:
        yield test_client
    release.set()


def wait_for(client: TestClient, run_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        run: dict[str, Any] = client.get(f"/_jobs/runs/{run_id}").json()
        if done(run):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.005)


def test_list_job_definitions(client: TestClient) -> None:
    jobs = {job["name"]: job for job in client.get("/_jobs").json()}
    assert list(jobs) == ["nightly", "add", "place-order", "note", "hold"]
    nightly_job = jobs["nightly"]
    assert nightly_job["schedule"] == "0 2 * * *"
    assert nightly_job["retry_count"] == 2
    assert nightly_job["timeout"] == 30
    assert nightly_job["description"] == "Clean up every night."
    assert nightly_job["next_run"].endswith("T02:00:00Z")
    assert jobs["add"]["next_run"] is None


def test_submit_runs_the_job_and_shows_the_run(client: TestClient) -> None:
    response = client.post("/_jobs/add", json={"a": 41})
    assert response.status_code == 202
    submitted = response.json()
    assert submitted["status"] == "queued"
    assert (submitted["name"], submitted["trigger"], submitted["input"]) == ("add", "api", {"a": 41})
    run = wait_for(client, submitted["id"], lambda run: run["status"] == "completed")
    assert (run["result"], run["attempts"], run["error"]) == (42, 1, None)
    assert run["created_at"].endswith("Z")
    assert run["started_at"] is not None
    assert run["finished_at"] is not None


def test_a_model_job_takes_the_whole_body(client: TestClient) -> None:
    run_id = client.post("/_jobs/place-order", json={"item": "tea", "quantity": 3}).json()["id"]
    run = wait_for(client, run_id, lambda run: run["status"] == "completed")
    assert run["result"] == {"item": "tea", "total": 6}


def test_bad_input_is_refused_at_submit_time(client: TestClient) -> None:
    response = client.post("/_jobs/add", json={"a": "many"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"], error["input"]) == ("int_parsing", ["body", "a"], "many")
    missing = client.post("/_jobs/place-order", json={"quantity": 2}).json()["detail"]
    assert [(e["type"], e["loc"]) for e in missing] == [("missing", ["body", "item"])]
    malformed = client.post("/_jobs/add", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    assert client.get("/_jobs/runs").json() == []  # nothing was queued


JSON = {"content-type": "application/json"}


def test_nan_and_infinity_are_refused_at_submit_time(client: TestClient) -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        response = client.post("/_jobs/note", content=b'{"value": %s}' % literal, headers=JSON)
        assert response.status_code == 422, literal
        assert response.json()["detail"][0]["type"] == "json_invalid"
    assert client.get("/_jobs/runs").json() == []
    refused = client.post("/_jobs/add", content=b'{"a": NaN}', headers=JSON)  # pydantic's own error quotes the NaN
    assert refused.status_code == 422
    assert [(e["type"], e["input"]) for e in refused.json()["detail"]] == [("finite_number", "NaN")]


def test_malformed_json_is_not_echoed(client: TestClient) -> None:
    body = b'{"a": 1, "secret": "' + b"s" * 10_000
    response = client.post("/_jobs/add", content=body, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["type"], error["input"]) == ("json_invalid", {})
    assert b"sss" not in response.content


def test_non_ascii_and_large_inputs_round_trip(client: TestClient) -> None:
    value = {"text": "héllo wörld ✓ 日本語 🚀", "big": "x" * 2_000_000}
    run_id = client.post("/_jobs/note", json={"value": value}).json()["id"]
    run = wait_for(client, run_id, lambda run: run["status"] == "completed")
    assert run["input"] == {"value": value}
    assert run["result"] == value
    assert client.get("/_jobs/runs", params={"name": "note"}).json()[0]["result"] == value


def test_unknown_jobs_and_runs_are_404(client: TestClient) -> None:
    assert client.post("/_jobs/missing", json={}).status_code == 404
    assert client.post("/_jobs/runs", json={}).status_code == 404
    assert client.get("/_jobs/runs/0123").status_code == 404
    response = client.delete("/_jobs/runs/0123")
    assert response.json() == {"detail": "run '0123' not found", "request_id": response.headers["x-request-id"]}


def test_list_runs_with_filters(client: TestClient) -> None:
    ids = [client.post("/_jobs/add", json={"a": i}).json()["id"] for i in range(3)]
    other = client.post("/_jobs/nightly").json()["id"]
    for run_id in [*ids, other]:
        wait_for(client, run_id, lambda run: run["status"] == "completed")
    assert [run["id"] for run in client.get("/_jobs/runs", params={"name": "add"}).json()] == ids[::-1]
    assert len(client.get("/_jobs/runs", params={"status": "completed"}).json()) == 4
    assert client.get("/_jobs/runs", params={"status": "failed"}).json() == []
    assert len(client.get("/_jobs/runs", params={"limit": 2}).json()) == 2
    assert client.get("/_jobs/runs", params={"status": "bogus"}).status_code == 422
    assert client.get("/_jobs/runs", params={"limit": 0}).status_code == 422


def test_cancel_queued_and_running_runs_but_not_finished_ones(client: TestClient) -> None:
    running = client.post("/_jobs/hold").json()["id"]
    wait_for(client, running, lambda run: run["status"] == "running")
    queued = client.post("/_jobs/add", json={"a": 1}).json()["id"]  # one worker, busy: this one waits
    response = client.delete(f"/_jobs/runs/{queued}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    cancelled = client.delete(f"/_jobs/runs/{running}").json()
    assert (cancelled["status"], cancelled["result"]) == ("cancelled", None)
    release.set()  # the abandoned thread returns; its result is dropped
    again = client.delete(f"/_jobs/runs/{running}")
    assert again.status_code == 409
    assert "already finished (cancelled)" in again.json()["detail"]
    done = client.post("/_jobs/add", json={"a": 1}).json()["id"]
    wait_for(client, done, lambda run: run["status"] == "completed")
    assert client.get(f"/_jobs/runs/{running}").json()["status"] == "cancelled"
    assert client.delete(f"/_jobs/runs/{done}").status_code == 409


def test_job_metrics_are_served(client: TestClient) -> None:
    run_id = client.post("/_jobs/add", json={"a": 1}).json()["id"]
    wait_for(client, run_id, lambda run: run["status"] == "completed")
    text = client.get("/_metrics").text
    assert 'chutes_job_runs_total{job="add",status="completed"} 1.0' in text
    assert 'chutes_job_run_duration_seconds_count{job="add"} 1.0' in text
    assert 'chutes_job_last_success_timestamp_seconds{job="add"}' in text
    assert 'chutes_job_runs_queued{job="add"} 0.0' in text


def test_a_chute_without_jobs_has_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path / "data"))
    plain = Chute(username="test", name="plain", image="python:3.11")
    with TestClient(plain) as test_client:
        assert test_client.get("/_ready").status_code == 200
    assert not (tmp_path / "data").exists()


def test_runs_survive_a_restart_of_the_chute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_env: dict[str, str]
) -> None:
    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    if store_env:
        monkeypatch.setenv("CHUTES_DATABASE_URL", store_env["database_url"])
    with TestClient(chute) as first:
        run_id = first.post("/_jobs/add", json={"a": 1}).json()["id"]
        wait_for(first, run_id, lambda run: run["status"] == "completed")
    with TestClient(chute) as second:
        assert second.get(f"/_jobs/runs/{run_id}").json()["result"] == 2
