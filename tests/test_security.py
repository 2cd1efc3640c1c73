"""Security: API keys, rate limiting and the body size limit, unit and over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from chutes.chute import Chute
from chutes.server.api_keys import ApiKeys
from chutes.server.rate_limiter import RateLimiter


def build() -> Chute:
    chute = Chute(username="acme", name="guarded", image="python:3.11")

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> str:
        return text

    @chute.websocket("/ws")
    async def ws(self: Chute, websocket: object) -> None:
        await websocket.accept()  # type: ignore[attr-defined]
        await websocket.send_text("hello")  # type: ignore[attr-defined]
        await websocket.close()  # type: ignore[attr-defined]

    @chute.on_startup()
    async def custom(self: Chute) -> None:
        @self.app.get("/custom")
        async def custom_route() -> dict[str, str]:
            return {"ok": "yes"}

    return chute


def test_api_keys_unit() -> None:
    keys = ApiKeys(frozenset({"alpha", "beta"}))
    assert keys.enabled
    assert keys.allows(b"Bearer alpha", None)
    assert keys.allows(b"bearer beta", None)
    assert keys.allows(None, b"beta")
    assert not keys.allows(b"Bearer gamma", None)
    assert not keys.allows(b"Basic alpha", None)
    assert not keys.allows(None, None)
    assert not ApiKeys(frozenset()).enabled


def test_api_keys_guard_cords_custom_routes_and_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_API_KEYS", "s3cret, other")
    with TestClient(build()) as client:
        denied = client.post("/echo", json={"text": "x"})
        assert denied.status_code == 401
        assert denied.json() == {"detail": "Invalid or missing API key", "request_id": denied.headers["x-request-id"]}
        assert denied.headers["www-authenticate"] == "Bearer"
        assert client.post("/echo", json={"text": "x"}, headers={"Authorization": "Bearer s3cret"}).json() == "x"
        assert client.post("/echo", json={"text": "y"}, headers={"X-API-Key": "other"}).json() == "y"
        assert client.get("/custom").status_code == 401
        assert client.get("/custom", headers={"X-API-Key": "other"}).json() == {"ok": "yes"}
        assert client.get("/_jobs").status_code == 401
        for public in ("/_health", "/_ready", "/_metrics", "/openapi.json", "/docs"):
            assert client.get(public).status_code == 200, public
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/ws") as ws:
            ws.receive_text()
        assert refused.value.status_code == 401
        assert refused.value.json()["detail"] == "Invalid or missing API key"
        with client.websocket_connect("/ws", headers={"X-API-Key": "s3cret"}) as ws:
            assert ws.receive_text() == "hello"


def test_rate_limiter_unit() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.check("a") == 0
    assert limiter.check("a") == 0
    assert limiter.check("a") == 30  # one token comes back every 30 s
    assert limiter.check("b") == 0  # per client
    now[0] = 30.0
    assert limiter.check("a") == 0
    assert not RateLimiter(0).enabled


def test_rate_limit_answers_429_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_RATE_LIMIT", "3")
    with TestClient(build()) as client:
        statuses = [client.post("/echo", json={"text": "x"}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.post("/echo", json={"text": "x"})
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["detail"] == "Rate limit exceeded"
        assert client.get("/_health").status_code == 200  # built-in routes are not limited


def test_body_size_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_MAX_BODY_SIZE", "64")
    with TestClient(build()) as client:
        assert client.post("/echo", json={"text": "x" * 10}).status_code == 200
        response = client.post("/echo", json={"text": "x" * 100})
        assert response.status_code == 413
        assert response.json()["detail"] == "Request body exceeds 64 bytes"

        def chunks() -> object:
            yield b'{"text": "'
            yield b"x" * 100
            yield b'"}'

        streamed = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
