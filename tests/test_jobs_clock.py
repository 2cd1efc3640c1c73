"""The injectable clocks of the job machinery."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from chutes.jobs.clock import ManualClock, ScaledClock, SystemClock, default_clock, set_default_clock, utcnow


def test_manual_clock_wakes_sleepers_in_deadline_order() -> None:
    async def scenario() -> list[str]:
        clock = ManualClock(100.0)
        woke: list[str] = []

        async def sleeper(name: str, seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(name)

        tasks = [asyncio.create_task(sleeper("late", 10)), asyncio.create_task(sleeper("early", 5))]
        await asyncio.sleep(0)
        assert clock.sleepers == 2
        assert clock.next_wakeup == 105.0
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(0.1)
        await asyncio.sleep(0)
        assert woke == ["early"]
        clock.advance(100)
        await asyncio.gather(*tasks)
        assert clock.time() == 205.0
        assert clock.slept == [10, 5]
        return woke

    assert asyncio.run(scenario()) == ["early", "late"]


def test_manual_clock_accepts_a_datetime_and_zero_sleeps_return_at_once() -> None:
    clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    assert utcnow(clock) == datetime(2024, 1, 1, tzinfo=UTC)
    asyncio.run(asyncio.wait_for(clock.sleep(0), 1))
    assert clock.next_wakeup is None


def test_scaled_clock_runs_faster_from_its_start() -> None:
    anchor = time.time()
    clock = ScaledClock(start=1000.0, speed=100.0, anchor=anchor)
    assert 1000.0 <= clock.time() < 1000.0 + 100 * 5
    started = time.monotonic()
    asyncio.run(clock.sleep(2.0))  # 20 ms of real time
    assert time.monotonic() - started < 1.0


def test_system_clock_and_default_clock_hook() -> None:
    assert abs(SystemClock().time() - time.time()) < 1
    manual = ManualClock(5.0)
    set_default_clock(manual)
    try:
        assert default_clock() is manual
    finally:
        set_default_clock(None)
    assert isinstance(default_clock(), SystemClock)
