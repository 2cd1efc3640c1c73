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


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}  # pragma: no cover


def test_the_watchdog_sleeps_once_every_call_in_flight_is_listened_to() -> None:
    async def scenario() -> None:
        watchdog = Watchdog(0.2)
        task = asyncio.current_task()
        assert task is not None
        first = watchdog.watch(task, _never, cancel=False)
        await asyncio.sleep(0.1)
        second = watchdog.watch(task, _never, cancel=False)
        await asyncio.sleep(0.15)  # the watchdog woke once, at 0.2 s: the first was due, the second not yet
        assert first.listener is not None
        assert second.listener is None
        await asyncio.sleep(0.35)  # its next round, at 0.4 s, starts the second
        assert second.listener is not None
        # Both calls are still running, both listened to: no task wakes up for them any more.
        assert watchdog._task is None
        watchdog.forget(first)
        watchdog.forget(second)
        await asyncio.sleep(0)
        assert first.listener.cancelled()
        assert second.listener.cancelled()

    asyncio.run(scenario())


def test_a_call_known_to_wait_is_listened_to_at_once() -> None:
    async def scenario() -> None:
        watchdog = Watchdog(10.0)
        task = asyncio.current_task()
        assert task is not None
        watch = watchdog.listen(task, _never, cancel=True)
        assert watch.listener is not None
        assert watchdog._task is None  # no round needed
        watchdog.forget(watch)

    asyncio.run(scenario())


def test_a_watchdog_left_on_a_closed_loop_starts_again_on_the_next() -> None:
    watchdog = Watchdog(0.01)

    async def long_call() -> bool:
        task = asyncio.current_task()
        assert task is not None
        watch = watchdog.watch(task, _never, cancel=False)
        await asyncio.sleep(0.03)
        watchdog.forget(watch)
        return watch.listener is not None

    async def abandoned() -> None:
        task = asyncio.current_task()
        assert task is not None
        watchdog.watch(task, _never, cancel=False)  # its loop closes with the watchdog still waiting

    loop = asyncio.new_event_loop()
    loop.run_until_complete(abandoned())
    loop.close()
    assert watchdog._task is not None
    assert asyncio.run(long_call())
