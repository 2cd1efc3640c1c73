"""Admission control: slots, the bounded queue, timeouts, hand-over on cancel, and the 429 answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chutes.chute import Chute
from chutes.server.admission import Admission


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@contextlib.asynccontextmanager
async def lifespan(chute: Chute) -> AsyncIterator[None]:
    """Run the chute's ASGI lifespan around a block, as a server would."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(chute({"type": "lifespan", "state": {}}, inbox.get, outbox.put))
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def test_slots_then_queue_then_reject() -> None:
    async def scenario() -> None:
        gate = Admission(capacity=2, queue_size=1, queue_wait=5)
        assert await gate.acquire()
        assert await gate.acquire()
        assert (gate.in_use, gate.available) == (2, 0)
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        assert gate.queued == 1
        assert await gate.acquire() is False  # queue full
        gate.release()  # the slot passes to the waiter
        assert await waiter is True
        assert (gate.in_use, gate.queued) == (2, 0)
        gate.release()
        gate.release()
        assert gate.in_use == 0

    run(scenario())


def test_waiters_are_served_in_arrival_order_and_newcomers_do_not_overtake() -> None:
    async def scenario() -> None:
        gate = Admission(capacity=1, queue_size=5, queue_wait=5)
        await gate.acquire()
        order: list[int] = []

        async def wait(i: int) -> None:
            await gate.acquire()
            order.append(i)

        tasks = [asyncio.create_task(wait(i)) for i in range(3)]
        await asyncio.sleep(0)
        assert gate.try_acquire() is False  # someone is queued: no overtaking
        for _ in range(3):
            gate.release()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2]

    run(scenario())


def test_wait_runs_out() -> None:
    async def scenario() -> None:
        gate = Admission(capacity=1, queue_size=5, queue_wait=0.02)
        await gate.acquire()
        assert await gate.acquire() is False
        assert gate.queued == 0

    run(scenario())


def test_zero_queue_rejects_at_once() -> None:
    async def scenario() -> None:
        gate = Admission(capacity=1, queue_size=0, queue_wait=5)
        await gate.acquire()
        assert await gate.acquire() is False

    run(scenario())


def test_cancelled_waiter_leaves_the_queue_and_a_handed_slot_is_passed_on() -> None:
    async def scenario() -> None:
        gate = Admission(capacity=1, queue_size=5, queue_wait=5)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        assert gate.queued == 1
        gate.release()  # goes to `second`
        assert await second is True
        third = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        gate.release()  # handed to `third`...
        third.cancel()  # ...which is cancelled before it resumes: the slot must not leak
        with pytest.raises(asyncio.CancelledError):
            await third
        assert gate.in_use == 0

    run(scenario())


def test_retry_after_follows_the_observed_pace() -> None:
    gate = Admission(capacity=2, queue_size=10, queue_wait=1)
    for _ in range(50):
        gate.observe(4.0)
    gate.in_use = 2
    assert gate.retry_after() == 6  # (0 queued + 2 running + 1) / 2 slots * ~4 s
    assert Admission(capacity=1, queue_size=1, queue_wait=1).retry_after() == 1


def test_overload_answers_429_with_headers_and_never_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "2")
    monkeypatch.setenv("CHUTES_QUEUE_WAIT", "5")
    chute = Chute(username="acme", name="busy", image="python:3.11", concurrency=2)
    release = asyncio.Event()

    @chute.cord(public_api_path="/work")
    async def work(self: Chute) -> str:
        await release.wait()
        return "ok"

    async def call() -> tuple[int, dict[bytes, bytes]]:
        sent: list[dict[str, Any]] = []
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not sent and not done.is_set():
                done.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()
            return {}  # pragma: no cover

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        scope = {"type": "http", "method": "POST", "path": "/work", "headers": headers, "query_string": b""}
        await chute(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"])

    async def scenario() -> list[tuple[int, dict[bytes, bytes]]]:
        async with lifespan(chute):  # settings are read when the chute starts
            tasks = [asyncio.create_task(call()) for _ in range(6)]
            await asyncio.sleep(0.05)
            release.set()
            return await asyncio.gather(*tasks)

    results = run(scenario())
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 200, 200, 429, 429]  # 2 running + 2 queued, 2 turned away
    rejected = [headers for status, headers in results if status == 429]
    for headers in rejected:
        assert int(headers[b"retry-after"]) >= 1
        assert headers[b"x-chutes-conn-used"] == b"2"
        assert headers[b"x-chutes-conn-available"] == b"0"


def test_queue_wait_timeout_is_429(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "10")
    monkeypatch.setenv("CHUTES_QUEUE_WAIT", "0.05")
    chute = Chute(username="acme", name="slow", image="python:3.11", concurrency=1)

    @chute.cord(public_api_path="/work")
    async def work(self: Chute) -> str:
        await asyncio.sleep(0.3)
        return "ok"

    from fastapi.testclient import TestClient

    with TestClient(chute) as client:

        async def both() -> list[int]:
            loop = asyncio.get_running_loop()
            calls = [loop.run_in_executor(None, lambda: client.post("/work").status_code) for _ in range(2)]
            return sorted(await asyncio.gather(*calls))

        assert asyncio.run(both()) == [200, 429]
        metrics = client.get("/_metrics").text
        assert 'chutes_requests_rejected_total{reason="overloaded"} 1.0' in metrics
        assert 'chutes_requests_total{method="POST",path="/work",status="429"} 1.0' in metrics


def test_a_client_leaving_the_queue_frees_its_place_and_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTES_QUEUE_SIZE", "1")
    monkeypatch.setenv("CHUTES_QUEUE_WAIT", "5")
    chute = Chute(username="acme", name="leaving", image="python:3.11", concurrency=1)
    release = asyncio.Event()
    started: list[int] = []

    @chute.cord(public_api_path="/work")
    async def work(self: Chute, n: int) -> int:
        started.append(n)
        await release.wait()
        return n

    async def call(n: int, leave: asyncio.Event | None = None) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": b'{"n": %d}' % n, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await (leave or asyncio.Event()).wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/work",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
        }
        await chute(scope, receive, send)
        return sent

    async def scenario() -> tuple[list[dict[str, Any]], ...]:
        async with lifespan(chute):
            return await queued()

    async def queued() -> tuple[list[dict[str, Any]], ...]:
        leave = asyncio.Event()
        first = asyncio.create_task(call(1))
        await asyncio.sleep(0.01)
        quitter = asyncio.create_task(call(2, leave))  # queued behind the first
        await asyncio.sleep(0.01)
        assert chute._runtime is not None
        assert chute._runtime.admission.queued == 1
        leave.set()
        assert await asyncio.wait_for(quitter, 1) == []  # nothing sent to a client that left
        assert chute._runtime.admission.queued == 0
        third = asyncio.create_task(call(3))  # the freed place is usable
        await asyncio.sleep(0.01)
        release.set()
        return await first, await third

    first, third = run(scenario())
    assert started == [1, 3]
    assert first[0]["status"] == 200
    assert third[0]["status"] == 200
    assert chute._runtime is not None
    assert chute._runtime.admission.in_use == 0
