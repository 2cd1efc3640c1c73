"""Reading request bodies within the size limit and the body timeout, for cords and every other route.

Timing out a read with ``asyncio.timeout`` costs a timer per request (several microseconds on uvloop, as
much as the rest of a cord call). Instead, a read registers its task with a deadline in a dict, and one
ticker task per server, awake only while reads are pending, cancels the reads that are past due.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from chutes.errors import ChutesError

TICK = 0.1  # seconds between checks of the pending reads: the body timeout's resolution


class ClientGone(ChutesError):
    """The client disconnected; the work it started was cancelled."""


class BodyTooLarge(ChutesError, HTTPException):
    """The request body is over ``CHUTES_MAX_BODY_SIZE`` (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds {limit} bytes")


class BodyTimeout(ChutesError, HTTPException):
    """The request body did not fully arrive within ``CHUTES_BODY_TIMEOUT`` seconds (408)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"Request body not received within {seconds:g} seconds")


class Deadlines:
    """Cancels reads still waiting past their deadline, from one ticker task."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    async def receive(self, receive: Receive, deadline: float, timeout: float) -> Message:
        """``await receive()``, or :class:`BodyTimeout` once the loop's clock passes ``deadline``."""
        task = asyncio.current_task()
        assert task is not None
        self._due[task] = deadline
        ticker = self._ticker
        if ticker is None or ticker.get_loop() is not asyncio.get_running_loop():
            self._start()
        try:
            message = await receive()
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                task.uncancel()
                raise BodyTimeout(timeout) from None
            raise
        finally:
            self._due.pop(task, None)
        if task in self._expired:
            # Expired just as the message arrived: the cancellation is still pending; take it here.
            self._expired.discard(task)
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                task.uncancel()
            raise BodyTimeout(timeout)
        return message

    def _start(self) -> None:
        # A ticker left on a loop that was closed meanwhile (test clients run one loop each) is forgotten.
        loop = asyncio.get_running_loop()
        self._due = {task: due for task, due in self._due.items() if task.get_loop() is loop}
        self._expired = {task for task in self._expired if task.get_loop() is loop}
        self._ticker = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._due:
                await asyncio.sleep(self.tick)
                now = loop.time()
                for task, due in list(self._due.items()):
                    if due <= now and task not in self._expired:
                        del self._due[task]
                        self._expired.add(task)
                        task.cancel()
        finally:
            if self._ticker is asyncio.current_task():
                self._ticker = None


class BodyLimits:
    """The size limit and timeout of request bodies, and the deadlines that enforce the timeout."""

    __slots__ = ("max_size", "timeout", "deadlines")

    def __init__(self, max_size: int, timeout: float) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self.deadlines = Deadlines()

    def deadline(self) -> float:
        """When a body starting to arrive now must be complete, on the loop's clock."""
        return asyncio.get_running_loop().time() + self.timeout

    async def read(self, receive: Receive) -> bytes:
        """The whole body; raises :class:`BodyTooLarge`, :class:`BodyTimeout` or :class:`ClientGone`."""
        deadline = self.deadline()
        message = await self.deadlines.receive(receive, deadline, self.timeout)
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > self.max_size:
                raise BodyTooLarge(self.max_size)
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await self.deadlines.receive(receive, deadline, self.timeout)
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_size:
                raise BodyTooLarge(self.max_size)
            chunks.append(chunk)
        return b"".join(chunks)

    def wrap(self, receive: Receive) -> Receive:
        """``receive`` for an app that reads the body itself: limited, timed, and raising as :meth:`read` does."""
        return LimitedReceive(self, receive)


class LimitedReceive:
    """A ``receive`` that enforces the body limits on whoever reads the body (a route, a middleware)."""

    __slots__ = ("limits", "receive", "deadline", "size", "complete")

    def __init__(self, limits: BodyLimits, receive: Receive) -> None:
        self.limits = limits
        self.receive = receive
        self.deadline = limits.deadline()
        self.size = 0
        self.complete = False

    async def __call__(self) -> Message:
        """The next message, once the body checks pass."""
        if self.complete:  # the body is in: what is left to receive is the disconnect, whenever it comes
            return await self.receive()
        limits = self.limits
        message = await limits.deadlines.receive(self.receive, self.deadline, limits.timeout)
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > limits.max_size:
                self.complete = True
                raise BodyTooLarge(limits.max_size)
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message
