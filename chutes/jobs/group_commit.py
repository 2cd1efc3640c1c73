"""Group commit: calls of one store operation that arrive while one is in flight go to the store together.

The first call starts a flush on the next turn of the event loop; calls made meanwhile (and while that
flush runs) wait and go out together in the following one, as one statement or one transaction. There
is no timer: a lone call waits for nothing, and under load a batch is whatever queued up during the
previous round trip, so batches grow with the load and round trips per item shrink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    """Coalesces awaited calls of one operation into batches sent by ``flush`` (one result per item, in order).

    When a batch fails with an error in ``whole`` (the store is down), every caller of it gets that error;
    any other error sends the batch's items again one by one, so that one bad item fails alone.
    ``dropped(item, result)`` is told of results whose caller was cancelled meanwhile (a run claimed
    for a worker that left must be given back).
    """

    def __init__(
        self,
        flush: Callable[[list[I]], Awaitable[list[R]]],
        whole: tuple[type[BaseException], ...] = (),
        dropped: Callable[[I, R], None] | None = None,
    ) -> None:
        self._flush = flush
        self._whole = whole
        self._dropped = dropped
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: I) -> R:
        """Send ``item`` with the next batch and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        task = self._task
        if task is not None and (task.done() or task.get_loop() is not loop):
            task = None  # a drain of an event loop that is gone (tests run several loops in turn)
            self._pending = [entry for entry in self._pending if entry[1].get_loop() is loop]
        self._pending.append((item, future))
        if task is None:
            self._task = loop.create_task(self._drain(), name="chutes-jobs-group-commit")
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                # Callers cancelled before their batch went out are not sent at all.
                batch = [entry for entry in batch if not entry[1].done()]
                if batch:
                    await self._send(batch)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _send(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except self._whole as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for entry in batch:
                await self._send([entry])
            return
        if len(results) != len(batch):  # a bug in a backend: fail the callers rather than leave them waiting
            error = RuntimeError(f"a store batch of {len(batch)} items returned {len(results)} results")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (item, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
            elif self._dropped is not None:
                self._dropped(item, result)
