"""Real uvicorn servers: slow bodies hold no slot, SIGTERM drains, then in-flight work gets a bounded grace."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

APP = textwrap.dedent(
    """
    import asyncio
    from chutes.chute import Chute

    chute = Chute(username="acme", name="stopping", image="python:3.11", concurrency=1)

    @chute.cord(public_api_path="/echo")
    async def echo(self, text: str) -> str:
        return text

    @chute.cord(public_api_path="/stream", method="GET")
    async def stream(self, seconds: int = 20):
        for i in range(seconds * 10):
            yield f"tick {i}\\n"
            await asyncio.sleep(0.1)

    @chute.job()
    async def long(self, seconds: float = 20) -> str:
        await asyncio.sleep(seconds)
        return "done"
    """
)
Server = Callable[..., tuple[int, Popen[bytes]]]


def request(port: int, method: str, path: str, body: object = None, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def serve(tmp_path: Path, start_server: Server, env: dict[str, str]) -> tuple[int, Popen[bytes]]:
    (tmp_path / "stopping_app.py").write_text(APP)
    args = ["chutes", "serve", "stopping_app:chute", "--port", "{port}", "--log-level", "warning"]
    return start_server(args, env=env)


def test_slow_bodies_hold_no_slot_and_time_out(tmp_path: Path, start_server: Server) -> None:
    port, _ = serve(tmp_path, start_server, {"CHUTES_BODY_TIMEOUT": "1"})
    slow = []
    for _ in range(4):  # concurrency is 1: four trickling clients would have held it for as long as they liked
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        slow.append(sock)
    started = time.monotonic()
    assert request(port, "POST", "/echo", {"text": "hi"}) == (200, b'"hi"')
    assert time.monotonic() - started < 0.5
    for sock in slow:
        sock.settimeout(5)
        answer = b""
        while b"seconds" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"not received within 1 seconds" in answer
        sock.close()


def test_sigterm_drains_then_stops(tmp_path: Path, start_server: Server) -> None:
    port, proc = serve(tmp_path, start_server, {"CHUTES_DRAIN_SECONDS": "2"})
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert request(port, "GET", "/_ready")[0] == 503  # load balancers stop sending work at once...
    assert request(port, "POST", "/echo", {"text": "still"}) == (200, b'"still"')  # ...which is still answered
    assert request(port, "GET", "/_health")[0] == 200
    assert proc.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    try:
        request(port, "GET", "/_ready", timeout=1)
    except OSError:
        pass
    else:
        raise AssertionError("the server still accepts connections after its drain")


def test_in_flight_streams_and_jobs_get_one_grace_in_parallel(tmp_path: Path, start_server: Server) -> None:
    port, proc = serve(tmp_path, start_server, {"CHUTES_DRAIN_SECONDS": "1", "CHUTES_SHUTDOWN_GRACE": "2"})
    assert request(port, "POST", "/_jobs/long", {"seconds": 20})[0] == 202
    received: list[bytes] = []

    def listen() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/stream?seconds=20")
            response = conn.getresponse()
            while chunk := response.read1(1024):
                received.append(chunk)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    took = time.monotonic() - started
    listener.join(timeout=5)
    # drain 1 s, then one grace of 2 s for the stream and the job together (not 20 s, and not 1 + 2 + 2)
    assert 2.5 <= took < 4.8, took
    assert received
    assert b"tick" in received[0]
