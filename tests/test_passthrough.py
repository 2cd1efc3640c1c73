"""Passthrough cords against a small OpenAI-shaped upstream server (tests/fake_engine.py) on a real socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chutes import Chute
from chutes.errors import ChuteDefinitionError
from tests.conftest import free_port
from tests.real_engine import ServedChute

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")


def events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the fake engine exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the fake engine did not start")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """The fake engine on a free port with API key ``k``; yields (port, its event log)."""
    log = tmp_path_factory.mktemp("upstream") / "events.jsonl"
    port = free_port()
    argv = [sys.executable, str(FAKE_ENGINE), "--model", "m", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen([*argv, "--api-key", "k"], env={"FAKE_ENGINE_LOG": str(log), "PATH": ""})
    try:
        wait_listening(port, proc)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(10)


def forwarding_chute(port: int, **kwargs: Any) -> Chute:
    chute = Chute(username="me", name="proxy", image="python:3.11", passthrough_headers={"Authorization": "Bearer k"})

    @chute.cord(
        public_api_path="/chat", passthrough=True, passthrough_path="/v1/chat/completions", passthrough_port=port
    )
    async def chat(data: dict[str, Any]) -> None:
        """Never called."""

    @chute.cord(public_api_path="/v1/models", method="GET", passthrough=True, passthrough_port=port)
    async def models(self: Chute) -> None: ...

    @chute.cord(
        public_api_path="/complete", passthrough=True, passthrough_path="/v1/completions", passthrough_port=port
    )
    async def complete(self: Chute) -> None: ...

    return chute


def test_body_query_and_headers_go_upstream_untouched(upstream: tuple[int, Path]) -> None:
    port, log = upstream
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "unknown_field": [1, 2.50]}'
    with TestClient(forwarding_chute(port)) as client:
        response = client.post(
            "/chat",
            content=raw,
            headers={"content-type": "application/json", "x-request-id": "abc-123", "x-custom": "yes"},
        )
        assert response.status_code == 200
        assert response.json()["received"]["unknown_field"] == [1, 2.50]  # fields the chute knows nothing of
        # The upstream's own headers come back; the request id is the chute's, once.
        assert response.headers["x-engine"] == "fake"
        assert response.headers.get_list("x-request-id") == ["abc-123"]
        listed = client.get("/v1/models?limit=2&after=x")
        assert listed.status_code == 200
        assert listed.json()["data"][0]["id"] == "m"
    sent = [e for e in events(log) if e["event"] == "request" and e["path"] == "/v1/chat/completions"][-1]
    assert sent["body"] == raw.decode()
    assert sent["headers"]["x-custom"] == "yes"
    assert sent["headers"]["x-request-id"] == "abc-123"
    assert sent["headers"]["authorization"] == "Bearer k"  # the chute's passthrough_headers
    query = [e for e in events(log) if e["event"] == "request" and e["path"] == "/v1/models"][-1]["query"]
    assert query == "limit=2&after=x"


def test_the_chutes_api_key_guards_passthrough_and_never_goes_upstream(
    upstream: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, log = upstream
    monkeypatch.setenv("CHUTES_API_KEYS", "secret")
    with TestClient(forwarding_chute(port)) as client:
        refused = client.post("/chat", json={"messages": []})
        assert refused.status_code == 401
        allowed = client.post("/chat", json={"messages": [], "n": 7}, headers={"Authorization": "Bearer secret"})
        assert allowed.status_code == 200
        assert allowed.json()["received"]["n"] == 7
        metrics = client.get("/_metrics", headers={"Authorization": "Bearer secret"}).text
    sent = [e for e in events(log) if e["event"] == "request" and json.loads(e["body"] or "{}").get("n") == 7][-1]
    assert sent["headers"]["authorization"] == "Bearer k"
    assert 'path="/chat"' in metrics
    assert 'status="401"' in metrics


def test_upstream_errors_come_back_in_the_upstreams_shape(upstream: tuple[int, Path]) -> None:
    port, _ = upstream
    with TestClient(forwarding_chute(port)) as client:
        response = client.post("/complete", json={"prompt": "x", "max_tokens": -1})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "max_tokens"
        wrong = client.post("/chat", json={"model": "other", "messages": []})
        assert wrong.status_code == 404
        assert "does not exist" in wrong.json()["error"]["message"]


def test_a_stream_is_relayed_event_by_event(upstream: tuple[int, Path]) -> None:
    port, _ = upstream
    with (
        TestClient(forwarding_chute(port)) as client,
        client.stream("POST", "/chat", json={"stream": True, "chunks": 4}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert len(lines) == 5
    assert lines[-1] == "data: [DONE]"


def test_an_upstream_that_is_down_is_a_503_with_retry_after() -> None:
    with TestClient(forwarding_chute(free_port())) as client:
        response = client.post("/chat", json={}, headers={"x-request-id": "r1"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "The model server is not available, retry later", "request_id": "r1"}


def test_the_fastapi_route_forwards_too(upstream: tuple[int, Path]) -> None:
    port, _ = upstream
    chute = forwarding_chute(port)
    with TestClient(chute.app) as client:
        response = client.post("/chat", json={"x": 1})
        assert response.status_code == 200
        assert response.json()["received"] == {"x": 1}
        down = forwarding_chute(free_port())
        with TestClient(down.app) as other:
            assert other.post("/chat", json={}).status_code == 503
    schema = chute.app.openapi()
    assert "/chat" in schema["paths"]


def test_passthrough_options_are_checked() -> None:
    chute = Chute(username="me", name="proxy", image="python:3.11")
    with pytest.raises(ChuteDefinitionError, match="passthrough_port must be a port number"):
        chute.cord("/a", passthrough=True, passthrough_port=70000)(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="need passthrough=True"):
        chute.cord("/b", passthrough_path="/x")(lambda self: None)
    with pytest.raises(ChuteDefinitionError, match="passthrough_path must be the upstream's path"):
        chute.cord("/c", passthrough=True, passthrough_path="x")(lambda self: None)
    chute.cord("/d", passthrough=True)(lambda self: None)
    assert (chute.cords[-1].passthrough_path, chute.cords[-1].passthrough_port) == ("/d", None)


def test_admission_bounds_forwarded_calls(upstream: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    port, _ = upstream
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "0")
    chute = Chute(
        username="me",
        name="proxy",
        image="python:3.11",
        concurrency=1,
        passthrough_headers={"Authorization": "Bearer k"},
    )
    chute.cord("/chat", passthrough=True, passthrough_path="/v1/chat/completions", passthrough_port=port)(
        lambda self: None
    )
    served = ServedChute(chute)
    served.start(timeout=30)
    try:
        body = {"stream": True, "chunks": 40, "delay": 0.05}
        with httpx.stream("POST", f"{served.url}/chat", json=body, timeout=30) as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)  # the slot is taken while the answer streams
            second = httpx.post(f"{served.url}/chat", json={"x": 1}, timeout=30)
            assert second.status_code == 429
            assert second.headers["retry-after"]
        after = httpx.post(f"{served.url}/chat", json={"x": 2}, timeout=30)  # the slot came back
        assert after.status_code == 200
    finally:
        served.stop()
