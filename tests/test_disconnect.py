"""The disconnect watchdog: listeners start only for calls still running after the delay."""

from __future__ import annotations

import asyncio
from typing import Any

from chutes.server.disconnect import Watchdog


def test_short_calls_get_no_listener_and_the_watchdog_stops_when_idle() -> None:
    async def scenario() -> None:
        watchdog = Watchdog(0.01)
        task = asyncio.current_task()
        assert task is not None

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {}  # pragma: no cover

        watch = watchdog.watch(task, receive, cancel=True)
        watchdog.forget(watch)
        assert watch.listener is None
        await asyncio.sleep(0.03)
        assert watchdog._task is None  # nothing in flight: no periodic wake-ups

    asyncio.run(scenario())


def test_long_call_is_cancelled_when_the_client_leaves() -> None:
    async def scenario() -> tuple[bool, bool]:
        watchdog = Watchdog(0.01)
        left = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await left.wait()
            return {"type": "http.disconnect"}

        async def call() -> bool:
            task = asyncio.current_task()
            assert task is not None
            watch = watchdog.watch(task, receive, cancel=True)
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                return watch.gone
            finally:
                watchdog.forget(watch)
            return False  # pragma: no cover

        running = asyncio.create_task(call())
        await asyncio.sleep(0.05)
        left.set()
        cancelled = await asyncio.wait_for(running, 2)

        async def uncancellable() -> bool:
            task = asyncio.current_task()
            assert task is not None
            watch = watchdog.watch(task, receive, cancel=False)
            await asyncio.sleep(0.05)  # the client is gone already: marked, not cancelled
            watchdog.forget(watch)
            return watch.gone

        return cancelled, await uncancellable()

    assert asyncio.run(scenario()) == (True, True)
