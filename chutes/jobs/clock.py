"""The clock jobs read the time from and sleep on, injectable so cron and backoff are testable without waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "ManualClock", "OffsetClock", "ScaledClock", "SystemClock", "default_clock", "set_default_clock"]


class Clock(Protocol):
    """Where jobs read the time (epoch seconds) and wait: cron firings, retry backoff and run leases."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


def utcnow(clock: Clock) -> datetime:
    """The clock's time as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.time(), UTC)


class SystemClock:
    """The real time and ``asyncio.sleep``."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class OffsetClock:
    """The system clock corrected by ``offset`` seconds: the database's clock, read without a round trip.

    The job service measures the offset when it opens a shared store and again at every heartbeat, so
    leases and schedules agree between machines whose own clocks drift apart.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def time(self) -> float:
        """The corrected time."""
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock that starts at ``start`` and runs ``speed`` times faster than the real one.

    Processes that share one ``start`` instant and one real-time anchor agree on the time, which lets a
    test watch several processes fire a once-a-minute schedule within a second or two.
    """

    def __init__(self, start: float, speed: float = 1.0, anchor: float | None = None) -> None:
        self._start = start
        self._speed = speed
        self._anchor = time.time() if anchor is None else anchor

    def time(self) -> float:
        """The scaled time."""
        return self._start + (time.time() - self._anchor) * self._speed

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of scaled time."""
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """A clock that only moves when told to (:meth:`advance`); sleepers wake once their time has come."""

    def __init__(self, start: float | datetime = 0.0) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.slept: list[float] = []  # every requested sleep, so tests can check backoff delays

    def time(self) -> float:
        """The current manual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` has moved the clock ``seconds`` forward."""
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on the clock."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    @property
    def next_wakeup(self) -> float | None:
        """The earliest time a sleeper waits for, if any."""
        pending = [deadline for deadline, _, future in self._sleepers if not future.done()]
        return min(pending) if pending else None

    def advance(self, seconds: float) -> None:
        """Move the time forward and wake the sleepers whose deadline has passed."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


_default: Clock = SystemClock()


def default_clock() -> Clock:
    """The clock a ``JobService`` uses when it is given none (the system clock unless replaced)."""
    return _default


def set_default_clock(clock: Clock | None) -> None:
    """Replace the default clock process-wide (a testing hook: a chute module may call it at import)."""
    global _default
    _default = clock if clock is not None else SystemClock()
