"""The guard on every route, whichever way the chute is served: itself, its app, or its app mounted elsewhere.

Each test runs three ways: ``TestClient(chute)``, ``TestClient(chute.app)`` and ``chute.app`` mounted
under ``/m`` in another FastAPI app; the answers must be the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from chutes.chute import Chute

WAYS = ("chute", "app", "mounted")
JSON = {"content-type": "application/json"}


def build() -> Chute:
    chute = Chute(username="acme", name="guarded", image="python:3.11")

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> str:
        return text

    @chute.cord(public_api_path="/slow", timeout=0.2)
    async def slow(self: Chute, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @chute.job()
    async def note(self: Chute, value: Any = None) -> Any:
        return value

    @chute.websocket("/ws")
    async def ws(self: Chute, websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            await websocket.send_text("got " + await websocket.receive_text())

    @chute.app.post("/custom")
    async def custom(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    return chute


@contextmanager
def serve(way: str, chute: Chute | None = None) -> Iterator[tuple[TestClient, str]]:
    """A client for ``chute`` served ``way``, and the prefix its paths take."""
    chute = chute or build()
    if way == "mounted":
        # Starlette runs no lifespan of a mounted app: the outer app runs the chute's (README, "Mounting").
        outer = FastAPI(lifespan=chute.lifespan)
        outer.mount("/m", chute.app)
        with TestClient(outer) as client:
            yield client, "/m"
        return
    with TestClient(chute if way == "chute" else chute.app) as client:
        yield client, ""


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """An error answer: the status, JSON, and the request id in the body and the header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize("way", WAYS)
def test_api_keys_on_every_route(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_API_KEYS", "s3cret")
    key = {"X-API-Key": "s3cret"}
    with serve(way) as (client, m):
        for path in ("/echo", "/_jobs/note", "/custom"):
            body = assert_error(client.post(m + path, json={"text": "x"}), 401)
            assert body["detail"] == "Invalid or missing API key"
        assert_error(client.get(m + "/_jobs/runs"), 401)
        assert client.post(m + "/echo", json={"text": "x"}, headers=key).json() == "x"
        assert client.post(m + "/custom", content=b"abc", headers=key).json() == {"size": 3}
        for public in ("/_health", "/openapi.json", "/docs", "/_metrics"):
            assert client.get(m + public).status_code == 200, public
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(m + "/ws"):
            pass
        assert refused.value.status_code == 401
        with client.websocket_connect(m + "/ws", headers=key) as socket:
            socket.send_text("hi")
            assert socket.receive_text() == "got hi"


@pytest.mark.parametrize("way", WAYS)
def test_docs_and_metrics_need_a_key_when_not_public(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_API_KEYS", "s3cret")
    monkeypatch.setenv("CHUTES_PUBLIC_DOCS", "false")
    with serve(way) as (client, m):
        for path in ("/docs", "/openapi.json", "/_metrics"):
            assert_error(client.get(m + path), 401)
            assert client.get(m + path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get(m + "/_health").status_code == 200
        assert client.get(m + "/_ready").status_code in (200, 503)  # a mounted app's lifespan never runs


@pytest.mark.parametrize("way", WAYS)
def test_rate_limit_counts_failed_authentications_and_covers_every_route(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUTES_API_KEYS", "s3cret")
    monkeypatch.setenv("CHUTES_RATE_LIMIT", "5")
    with serve(way) as (client, m):
        statuses = [client.post(m + "/echo", json={"text": "x"}, headers={"X-API-Key": "guess"}).status_code]
        statuses += [client.get(m + "/_jobs/runs", headers={"X-API-Key": "s3cret"}).status_code for _ in range(2)]
        statuses += [client.post(m + "/custom", headers={"X-API-Key": "s3cret"}).status_code for _ in range(2)]
        assert statuses == [401, 200, 200, 200, 200]
        limited = client.post(m + "/echo", json={"text": "x"}, headers={"X-API-Key": "s3cret"})
        assert_error(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert_error(client.post(m + "/_jobs/note", json={}), 429)
        assert client.get(m + "/_health").status_code == 200  # never limited


@pytest.mark.parametrize("way", WAYS)
def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_RATE_LIMIT", "2")
    with serve(way) as (client, m):
        rotating = [
            client.post(m + "/custom", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(3)
        ]
        assert rotating == [200, 200, 429]
    monkeypatch.setenv("CHUTES_FORWARDED_ALLOW_IPS", "*")
    with serve(way) as (client, m):
        rotating = [
            client.post(m + "/custom", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(3)
        ]
        assert rotating == [200, 200, 200]


def chunks(size: int) -> Iterator[bytes]:
    yield b'{"text": "'
    yield b"x" * size
    yield b'"}'


@pytest.mark.parametrize("way", WAYS)
def test_body_size_limit_on_every_route_declared_or_chunked(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_MAX_BODY_SIZE", "64")
    with serve(way) as (client, m):
        for path in ("/echo", "/_jobs/note", "/custom"):
            assert client.post(m + path, json={"text": "x" * 10}).status_code < 300, path
            body = assert_error(client.post(m + path, json={"text": "x" * 100}), 413)
            assert body["detail"] == "Request body exceeds 64 bytes"
            assert_error(client.post(m + path, content=chunks(100), headers=JSON), 413)
        assert all(run["input"] == {"text": "x" * 10} for run in client.get(m + "/_jobs/runs").json())


@pytest.mark.parametrize("way", WAYS)
def test_websocket_messages_over_the_limit_close_with_1009(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_MAX_BODY_SIZE", "64")
    with serve(way) as (client, m), client.websocket_connect(m + "/ws") as socket:
        socket.send_text("small")
        assert socket.receive_text() == "got small"
        socket.send_text("x" * 65)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == 1009


@pytest.mark.parametrize("way", WAYS)
def test_json_cords_refuse_bodies_not_declared_as_json(way: str) -> None:
    with serve(way) as (client, m):
        for headers in ({"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {}):
            body = assert_error(client.post(m + "/echo", content=b'{"text": "x"}', headers=headers), 415)
            assert "Content-Type: application/json" in body["detail"]
        for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
            declared = client.post(m + "/echo", content=b'{"text": "x"}', headers={"content-type": content_type})
            assert declared.json() == "x"


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"text": ' + b"[" * 1000 + b"]" * 1000 + b"}", "recursion limit exceeded"),
        (b'{"text": ' + b"9" * 5000 + b"}", "number out of range"),
        (b'{"text": "\\ud800"}', "hex escape"),
    ],
    ids=["deep", "huge-number", "lone-surrogate"],
)
def test_json_refused_by_the_parser_is_422_naming_the_problem(way: str, body: bytes, problem: str) -> None:
    with serve(way) as (client, m):
        for path in ("/echo", "/_jobs/note"):
            detail = assert_error(client.post(m + path, content=body, headers=JSON), 422)["detail"]
            assert detail[0]["type"] == "json_invalid"
            assert problem in detail[0]["ctx"]["error"], detail


@pytest.mark.parametrize("way", WAYS)
def test_a_cord_past_its_timeout_is_cancelled_and_504(way: str) -> None:
    with serve(way) as (client, m):
        assert client.post(m + "/slow", json={"seconds": 0}).json() == "done"
        body = assert_error(client.post(m + "/slow", json={"seconds": 5}), 504)
        assert "0.2 seconds" in body["detail"]


@pytest.mark.parametrize("way", WAYS)
def test_unknown_paths_and_methods_are_json_errors_with_request_ids(way: str) -> None:
    with serve(way) as (client, m):
        assert_error(client.get(m + "/nowhere"), 404)
        assert_error(client.get(m + "/custom"), 405)
        assert_error(client.get(m + "/_jobs/runs/123"), 404)


@pytest.mark.parametrize("way", ["chute", "app"])
def test_a_body_that_never_arrives_is_408(way: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_BODY_TIMEOUT", "0.2")
    chute = build()
    app: Any = chute if way == "chute" else chute.app

    async def call(path: str) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        first = [{"type": "http.request", "body": b'{"te', "more_body": True}]

        async def receive() -> dict[str, Any]:
            if first:
                return first.pop()
            await asyncio.Event().wait()  # the rest of the body never comes
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
        await asyncio.wait_for(app(scope, receive, send), 5)
        return sent

    async def scenario() -> list[list[dict[str, Any]]]:
        async with chute.lifespan():
            return [await call(path) for path in ("/echo", "/custom", "/_jobs/note")]

    for sent in asyncio.run(scenario()):
        assert sent[0]["status"] == 408
        assert b"not received within 0.2 seconds" in sent[1]["body"]
