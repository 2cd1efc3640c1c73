"""Dynamic batching: concurrent calls of one cord gathered into batches that run as one call of its function.

Items, not requests, are counted: a call brings one item or a list of them (the request's ``batch_field``),
and a list longer than the room left is split across batches and reassembled in order. A batch runs as
soon as it holds ``max_batch_size`` items, or ``batch_wait`` seconds after its oldest item arrived,
and it takes one slot of the chute's admission control for as long as it runs: ``concurrency`` bounds
batches in flight. Each caller gets its own outputs back, or the batch's error; a caller that leaves is
dropped from the queue (or its outputs discarded) without touching the others.

The hot path of a call is one future, one deque append and one await; timers and tasks are per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["BatchError", "BatchOverloadedError", "BatchTooLargeError", "Batcher", "Clock", "Slots"]


# A timer may fire a little before its deadline (asyncio allows its clock's resolution): close enough.
_EARLY = 1e-4


class BatchError(RuntimeError):
    """The batch function broke its contract (it returned the wrong number of outputs): a server-side bug."""


class BatchOverloadedError(Exception):
    """The batch queue is full, or a slot did not come within the queue wait: answer 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"batch queue full, retry in {retry_after} s")
        self.retry_after = retry_after


class BatchTooLargeError(Exception):
    """One call brings more items than the queue can ever hold: retrying cannot help (answer 413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"the request has {count} items; at most {limit} can wait to be batched")
        self.count = count
        self.limit = limit


class Cancellable(Protocol):
    """A scheduled callback that can be called off (``asyncio.TimerHandle``)."""

    def cancel(self) -> None:
        """Call it off."""
        ...


class Clock(Protocol):
    """What the batcher needs of time: a monotonic reading and a timer (``asyncio`` loops have both)."""

    def time(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Cancellable:
        """Run ``callback`` once ``time()`` reaches ``when``; the handle can cancel it."""
        ...


class Slots(Protocol):
    """Admission control as the batcher takes it: one slot per batch (``chutes.server.admission.Admission``)."""

    def try_acquire(self) -> bool:
        """Take a slot if one is free now."""
        ...

    async def acquire(self) -> bool:
        """Wait for a slot; ``False`` when refused (queue full or wait ran out)."""
        ...

    def release(self) -> None:
        """Give a slot back."""
        ...


class BatchRecorder(Protocol):
    """Where each batch's size and its oldest item's wait are recorded (the cord's metrics)."""

    def record_batch(self, size: int, wait: float) -> None:
        """Count one batch that started."""
        ...


class _Caller:
    """One call waiting for its outputs: its items, how many are taken into batches, how many came back."""

    __slots__ = ("items", "outputs", "future", "taken", "left", "arrived", "running")

    def __init__(self, items: Sequence[Any], future: asyncio.Future[list[Any]], arrived: float) -> None:
        self.items = items
        self.outputs: list[Any] = [None] * len(items)
        self.future = future
        self.taken = 0  # items already placed in a batch
        self.left = len(items)  # items whose outputs have not come back
        self.arrived = arrived
        self.running: list[tuple[asyncio.Task[None], list[_Part]]] = []  # its batches in flight


# One caller's share of a batch: (caller, first item, end of its items).
_Part = tuple[_Caller, int, int]


class Batcher:
    """Gathers the items of concurrent calls into batches for ``func(owner, items) -> outputs``.

    ``func`` may be a coroutine function (awaited on the loop) or a plain one (run in a worker thread so
    the loop keeps accepting requests meanwhile). ``clock`` defaults to the running loop; tests give a
    fake one to check timing without sleeping.
    """

    def __init__(
        self,
        func: Callable[[Any, list[Any]], Any],
        owner: object,
        *,
        max_batch_size: int,
        batch_wait: float,
        slots: Slots,
        max_queued: int,
        clock: Clock | None = None,
        recorder: BatchRecorder | None = None,
        name: str = "batch",
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size!r}")
        if batch_wait < 0:
            raise ValueError(f"batch_wait must be 0 or more seconds, got {batch_wait!r}")
        self.func = func
        self.owner = owner
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait
        self.slots = slots
        self.max_queued = max(max_queued, max_batch_size)  # a full batch must always fit
        self.name = name
        self._clock = clock
        self._recorder = recorder
        # An object with an ``async def __call__`` counts as a coroutine function too.
        self._is_coroutine = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__)
        self._queue: deque[_Caller] = deque()
        self.queued = 0  # items waiting, not yet in a batch (callers that left included until skipped)
        self.running = 0  # batches in flight
        self._timer: Cancellable | None = None
        self._slot_waiter: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._service_time = 0.05  # seconds per batch, smoothed: for Retry-After

    # -- callers ------------------------------------------------------------------------------------

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Queue one call's items and wait for their outputs, in order; raises the batch's error if it failed.

        An empty list answers at once. Raises :class:`BatchOverloadedError` when the queue cannot take
        the items. Cancelling the caller (its client left) drops its items that are still queued.
        """
        count = len(items)
        if count == 0:
            return []
        if self.queued + count > self.max_queued:
            if count > self.max_queued:
                raise BatchTooLargeError(count, self.max_queued)
            raise BatchOverloadedError(self.retry_after())
        clock = self._clock
        if clock is None:
            clock = self._clock = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        caller = _Caller(items, future, clock.time())
        self._queue.append(caller)
        self.queued += count
        if self.queued >= self.max_batch_size:
            self._dispatch()
        elif self._timer is None and self._slot_waiter is None:
            self._timer = clock.call_at(caller.arrived + self.batch_wait, self._on_timer)
        try:
            return await future
        except asyncio.CancelledError:
            # The caller is gone (its future is cancelled with it): its queued items stop counting now and
            # are skipped when reached; outputs of its items already running are dropped.
            future.cancel()
            self.queued -= len(items) - caller.taken
            caller.taken = len(items)
            if self._is_coroutine:
                # A coroutine batch that nobody waits for any more is stopped, freeing its slot (a thread
                # cannot be stopped: its batch runs to the end and its outputs are dropped).
                for task, parts in caller.running:
                    if all(other.future.done() for other, _, _ in parts):
                        task.cancel()
            raise

    async def call(self, item: Any) -> Any:
        """Submit one item and return its output."""
        return (await self.submit((item,)))[0]

    def retry_after(self) -> int:
        """Seconds a refused caller should wait: the batches queued ahead of it, at the observed pace."""
        batches = self.queued / self.max_batch_size + self.running + 1
        return max(1, min(60, math.ceil(batches * self._service_time)))

    # -- forming batches ----------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _oldest(self) -> _Caller | None:
        """The oldest caller still waiting, dropping the ones that left."""
        queue = self._queue
        while queue:
            caller = queue[0]
            if not caller.future.done():
                return caller
            queue.popleft()
            self.queued -= len(caller.items) - caller.taken
        return None

    def _due(self, now: float) -> bool:
        """Whether the queue holds a batch that should start now: full, or its oldest item waited long enough."""
        oldest = self._oldest()
        if oldest is None:
            return False
        return self.queued >= self.max_batch_size or oldest.arrived + self.batch_wait <= now + _EARLY

    def _dispatch(self) -> None:
        """Start every batch that is due and has a slot; arrange to be called again when one is not."""
        assert self._clock is not None
        clock = self._clock
        while self._due(clock.time()):
            if self._slot_waiter is not None:
                return  # a slot is on its way: that batch forms when it comes
            if not self.slots.try_acquire():
                self._wait_for_slot()
                return
            self._start(self._take())
        oldest = self._oldest()
        if oldest is not None and self._timer is None and self._slot_waiter is None:
            self._timer = clock.call_at(oldest.arrived + self.batch_wait, self._on_timer)

    def _take(self) -> list[_Part]:
        """Remove up to ``max_batch_size`` items from the front of the queue, splitting a caller if needed."""
        parts: list[_Part] = []
        room = self.max_batch_size
        queue = self._queue
        while room and queue:
            caller = queue[0]
            if caller.future.done():  # left while queued
                queue.popleft()
                self.queued -= len(caller.items) - caller.taken
                continue
            start = caller.taken
            end = min(len(caller.items), start + room)
            parts.append((caller, start, end))
            caller.taken = end
            room -= end - start
            self.queued -= end - start
            if end == len(caller.items):
                queue.popleft()
        return parts

    def _wait_for_slot(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slot_waiter = asyncio.get_running_loop().create_task(self._acquire_slot())

    async def _acquire_slot(self) -> None:
        """Wait for admission to hand us a slot; the batch forms from what is queued when it comes."""
        try:
            granted = await self.slots.acquire()
        except asyncio.CancelledError:
            self._slot_waiter = None
            raise
        self._slot_waiter = None
        if not granted:
            self._refuse_queued()
        elif self._oldest() is None:  # everyone left meanwhile
            self.slots.release()
        else:
            self._start(self._take())
        self._dispatch()

    def _refuse_queued(self) -> None:
        """No slot within the queue wait: every queued caller gets a 429."""
        error = BatchOverloadedError(self.retry_after())
        while self._queue:
            caller = self._queue.popleft()
            if not caller.future.done():
                caller.future.set_exception(error)
        self.queued = 0

    # -- running batches ----------------------------------------------------------------------------

    def _start(self, parts: list[_Part]) -> None:
        assert self._clock is not None
        now = self._clock.time()
        size = sum(end - start for _, start, end in parts)
        if self._recorder is not None:
            self._recorder.record_batch(size, now - min(caller.arrived for caller, _, _ in parts))
        self.running += 1
        task = asyncio.get_running_loop().create_task(self._run(parts, size, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for caller, _, _ in parts:
            caller.running.append((task, parts))

    async def _run(self, parts: list[_Part], size: int, started: float) -> None:
        """Run one batch in its slot and hand each caller its outputs (or the batch's error)."""
        items: list[Any] = []
        for caller, start, end in parts:
            if end - start == 1:
                items.append(caller.items[start])
            else:
                items.extend(caller.items[start:end])
        try:
            if self._is_coroutine:
                outputs = await self.func(self.owner, items)
            else:
                outputs = await asyncio.to_thread(self.func, self.owner, items)
            if not isinstance(outputs, list | tuple) or len(outputs) != size:
                got = f"{len(outputs)} outputs" if isinstance(outputs, list | tuple) else repr(type(outputs).__name__)
                raise BatchError(f"{self.name} returned {got} for {size} inputs; it must return one output per input")
        except Exception as exc:
            for caller, _, _ in parts:
                if not caller.future.done():
                    caller.future.set_exception(exc)
        except BaseException:
            for caller, _, _ in parts:
                caller.future.cancel()
            raise
        else:
            offset = 0
            for caller, start, end in parts:
                count = end - start
                if not caller.future.done():
                    caller.outputs[start:end] = outputs[offset : offset + count]
                    caller.left -= count
                    if caller.left == 0:
                        caller.future.set_result(caller.outputs)
                offset += count
        finally:
            task = asyncio.current_task()
            for caller, _, _ in parts:
                caller.running = [entry for entry in caller.running if entry[0] is not task]
            self.running -= 1
            self.slots.release()
            assert self._clock is not None
            self._service_time += (self._clock.time() - started - self._service_time) * 0.2
            if self._queue:
                self._dispatch()

    async def aclose(self) -> None:
        """Cancel queued calls and wait for running batches (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._slot_waiter is not None:
            self._slot_waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._slot_waiter
        while self._queue:
            caller = self._queue.popleft()
            caller.future.cancel()
        self.queued = 0
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
