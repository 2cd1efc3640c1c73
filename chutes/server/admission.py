"""Admission control: ``concurrency`` slots, a bounded wait queue, and an honest Retry-After."""

from __future__ import annotations

import asyncio
import math
from collections import deque


class Admission:
    """Caps cord calls executing at once; up to ``queue_size`` more wait at most ``queue_wait`` seconds.

    Two counts, for two resources:

    - a *place* (:meth:`enter` / :meth:`leave`) is held by every admitted call, from before its body is
      read until it is answered; at most ``capacity + queue_size`` calls hold one, so request bodies in
      memory are bounded by ``(capacity + queue_size) * max_body_size``. A call that finds no place is
      turned away (429) before its body is read.
    - a *slot* (:meth:`try_acquire` / :meth:`acquire` / :meth:`release`) is held while the work executes;
      there are ``capacity`` of them. A call takes one only once its body has fully arrived, so a slow
      client cannot hold a slot while it trickles its body in. A batcher takes one slot per batch.

    A released slot passes straight to the oldest waiter, so waiters are served in arrival order and a
    newcomer cannot overtake the queue.
    """

    __slots__ = ("capacity", "queue_size", "queue_wait", "in_use", "places", "_waiters", "_service_time")

    def __init__(self, capacity: int, queue_size: int, queue_wait: float) -> None:
        self.capacity = capacity
        self.queue_size = queue_size
        self.queue_wait = queue_wait
        self.in_use = 0
        self.places = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._service_time = 0.05  # seconds; a smoothed average of recent calls, for Retry-After

    @property
    def queued(self) -> int:
        """Calls waiting for a slot."""
        return len(self._waiters)

    @property
    def available(self) -> int:
        """Free slots."""
        return max(0, self.capacity - self.in_use)

    @property
    def max_places(self) -> int:
        """Calls that may be admitted at once: executing, waiting for a slot, or still reading their body."""
        return self.capacity + (self.queue_size if self.queue_wait > 0 else 0)

    def enter(self) -> bool:
        """Admit a call (before reading its body); ``False`` when the server is full: answer 429."""
        # max_places inlined: read on every call
        if self.places >= self.capacity + (self.queue_size if self.queue_wait > 0 else 0):
            return False
        self.places += 1
        return True

    def leave(self) -> None:
        """An admitted call is done (answered, refused or gone)."""
        self.places -= 1

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody is waiting; never blocks."""
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return True
        return False

    def can_queue(self) -> bool:
        """Whether a call that finds no free slot may wait for one."""
        return len(self._waiters) < self.queue_size and self.queue_wait > 0

    async def acquire(self) -> bool:
        """Take a slot, waiting in the queue if needed; ``False`` when the queue is full or the wait ran out."""
        if self.try_acquire():
            return True
        if not self.can_queue():
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.queue_wait, self._expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # the slot was handed to us just as we were cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)
            self._waiters.remove(waiter)

    def release(self) -> None:
        """Give a slot back: to the oldest waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self.in_use -= 1

    def observe(self, seconds: float) -> None:
        """Feed one call's duration into the service-time estimate."""
        self._service_time += (seconds - self._service_time) * 0.1

    def retry_after(self) -> int:
        """Seconds a rejected client should wait: the time to drain the queue at the observed pace."""
        backlog = (len(self._waiters) + self.in_use + 1) / self.capacity
        return max(1, min(60, math.ceil(backlog * self._service_time)))
