"""The server's HTTP protocol: each response in one write, streams not held back, websockets handed over."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from websockets.sync.client import connect

from chutes.server.protocol import CoalescingTransport

APP = """
import asyncio

from starlette.websockets import WebSocket

from chutes.chute import Chute

chute = Chute(username="test", name="wire", image="python:3.11")


@chute.cord(public_api_path="/echo")
async def echo(self, text: str = "hi") -> dict:
    return {"text": text}


@chute.cord(public_api_path="/slow-stream", stream=True)
async def slow_stream(self):
    yield "first"
    await asyncio.sleep(1.0)
    yield "second"


@chute.websocket("/ws")
async def ws(self, websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        await websocket.send_text("got " + await websocket.receive_text())
"""


class RecordingTransport:
    """The part of an asyncio transport the wrapper uses, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def write_eof(self) -> None:
        self.events.append("eof")

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


def _wrapped() -> tuple[CoalescingTransport, RecordingTransport, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    inner = RecordingTransport()
    return CoalescingTransport(inner, loop), inner, loop  # type: ignore[arg-type]


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_writes_of_one_turn_leave_in_one_write_at_its_end() -> None:
    transport, inner, loop = _wrapped()
    try:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(bytearray(b"{}"))
        assert inner.writes == []  # nothing sent yet: the turn is not over
        assert transport.get_write_buffer_size() == 40 + 7
        _turn(loop)
        assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        transport.writelines([b"a", b"b"])
        _turn(loop)
        assert inner.writes[1:] == [b"ab"]
    finally:
        loop.close()


def test_close_and_write_eof_send_what_is_buffered_first() -> None:
    transport, inner, loop = _wrapped()
    try:
        transport.write(b"last words")
        transport.write_eof()
        transport.write(b"more")
        transport.close()
        assert inner.events == ["write", "eof", "write", "close"]
        assert inner.writes == [b"last words", b"more"]
        _turn(loop)  # the flushes already scheduled find nothing left to send
        assert inner.writes == [b"last words", b"more"]
    finally:
        loop.close()


@pytest.mark.parametrize("serve", ["cli", "run_local"])
def test_both_ways_of_serving_use_the_protocol(serve: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from chutes.chute import Chute
    from chutes.cli import serve as cli_serve
    from chutes.server.protocol import HttpProtocol

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(cli_serve, "_frozen", lambda chute: chute)  # gc.freeze is for server processes only
    if serve == "cli":
        cli_serve.serve_target(str(Path(__file__).resolve().parent.parent / "specs" / "hello" / "chute.toml"))
    else:
        Chute(username="test", name="local", image="python:3.11").run_local(port=0, reload=False)
    assert seen["http"] is HttpProtocol


def test_writes_to_a_connection_that_is_closing_are_dropped() -> None:
    transport, inner, loop = _wrapped()
    try:
        transport.write(b"late")
        inner.closing = True
        _turn(loop)
        assert inner.writes == []
        assert transport.is_closing()
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    finally:
        loop.close()


@pytest.fixture
def wire(tmp_path: Path, start_server: Callable[..., tuple[int, Popen[bytes]]]) -> int:
    (tmp_path / "wire.py").write_text(textwrap.dedent(APP))
    port, _ = start_server(["chutes", "serve", "wire:chute", "--port", "{port}", "--log-level", "warning"])
    return port


def _request(port: int, path: str, body: bytes = b'{"text": "x"}') -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _read_until(sock: socket.socket, marker: bytes, count: int = 1, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while data.count(marker) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_keep_alive_and_pipelined_requests_are_answered_in_order(wire: int) -> None:
    with socket.create_connection(("127.0.0.1", wire)) as sock:
        sock.sendall(_request(wire, "/echo", b'{"text": "one"}'))
        first = _read_until(sock, b'"one"}')
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        # Two requests in one segment: both answered, in order, on the same connection.
        sock.sendall(_request(wire, "/echo", b'{"text": "two"}') + _request(wire, "/echo", b'{"text": "three"}'))
        both = _read_until(sock, b'"three"}')
        assert both.count(b"HTTP/1.1 200 OK\r\n") == 2
        assert both.index(b'"two"}') < both.index(b'"three"}')


def test_a_stream_is_not_held_back_until_it_ends(wire: int) -> None:
    with socket.create_connection(("127.0.0.1", wire)) as sock:
        started = time.monotonic()
        sock.sendall(_request(wire, "/slow-stream", b""))
        head = _read_until(sock, b"first")
        assert b"first" in head
        assert b"second" not in head
        assert time.monotonic() - started < 0.9  # the second chunk comes a second after the first
        rest = _read_until(sock, b"second")
        assert b"second" in rest


def test_a_bad_request_is_answered_400_and_closed(wire: int) -> None:
    with socket.create_connection(("127.0.0.1", wire)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = _read_until(sock, b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        sock.settimeout(10)
        while sock.recv(65536):  # the server closes the connection after its answer
            pass


def test_websockets_are_served_after_the_upgrade(wire: int) -> None:
    with connect(f"ws://127.0.0.1:{wire}/ws") as websocket:
        for text in ("a", "b" * 70_000):
            websocket.send(text)
            assert websocket.recv(timeout=10) == "got " + text
