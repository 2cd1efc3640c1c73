"""Reading request bodies within the size limit and the body timeout, for cords and every other route.

Timing out a read with ``asyncio.timeout`` costs a timer per request (several microseconds on uvloop, as
much as the rest of a cord call). Instead, a read registers its task with a deadline in a dict, and one
ticker task per server, awake only while reads are pending, cancels the reads that are past due.
"""

from __future__ import annotations

import asyncio
import time
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
    """Cancels tasks still running past their deadline, from one ticker task (deadlines on ``time.monotonic``).

    ``arm(task, due)`` before the wait, ``disarm(task)`` after it: ``True`` means the deadline passed and
    the task was cancelled for it (the cancellation was delivered, or is pending: :func:`absorb` takes it).
    """

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None

    def arm(self, task: asyncio.Task[Any], due: float) -> None:
        """Cancel ``task`` if it is still armed when ``time.monotonic()`` passes ``due``."""
        self._due[task] = due
        ticker = self._ticker
        if ticker is None or ticker.get_loop() is not task.get_loop():
            self._start(task.get_loop())

    def disarm(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching ``task``; whether its deadline had passed (and it was cancelled for that)."""
        if self._due.pop(task, None) is not None:
            return False
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def receive(self, receive: Receive, task: asyncio.Task[Any], due: float, timeout: float) -> Message:
        """``await receive()``, or :class:`BodyTimeout` once ``due`` has passed."""
        self.arm(task, due)
        try:
            message = await receive()
        except asyncio.CancelledError:
            if self.disarm(task):
                task.uncancel()
                raise BodyTimeout(timeout) from None
            raise
        if self.disarm(task):  # expired just as the message arrived
            await absorb(task)
            raise BodyTimeout(timeout)
        return message

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # A ticker left on a loop that was closed meanwhile (test clients run one loop each) is forgotten.
        self._due = {task: due for task, due in self._due.items() if task.get_loop() is loop}
        self._expired = {task for task in self._expired if task.get_loop() is loop}
        self._ticker = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            while self._due:
                await asyncio.sleep(self.tick)
                now = time.monotonic()
                for task, due in list(self._due.items()):
                    if due <= now:
                        del self._due[task]
                        self._expired.add(task)
                        task.cancel()
        finally:
            if self._ticker is asyncio.current_task():
                self._ticker = None


async def absorb(task: asyncio.Task[Any]) -> None:
    """Take a cancellation requested of ``task`` that it has not received yet (its deadline passed as it finished)."""
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task.uncancel()


class BodyLimits:
    """The size limit and timeout of request bodies, and the deadlines that enforce the timeout."""

    __slots__ = ("max_size", "timeout", "deadlines")

    def __init__(self, max_size: int, timeout: float) -> None:
        self.max_size = max_size
        self.timeout = timeout
        self.deadlines = Deadlines()

    def deadline(self) -> float:
        """When a body starting to arrive now must be complete, on ``time.monotonic``."""
        return time.monotonic() + self.timeout

    async def read(self, receive: Receive, task: asyncio.Task[Any] | None = None) -> bytes:
        """The whole body; raises :class:`BodyTooLarge`, :class:`BodyTimeout` or :class:`ClientGone`.

        ``task`` is the current task, when the caller has it already (looking it up costs as much as a
        tenth of a cord call).
        """
        if task is None:
            task = asyncio.current_task()
            assert task is not None
        deadline = time.monotonic() + self.timeout
        # Deadlines.receive inlined for the first message, usually the whole body: one frame less per call.
        deadlines = self.deadlines
        deadlines.arm(task, deadline)
        try:
            message = await receive()
        except asyncio.CancelledError:
            if deadlines.disarm(task):
                task.uncancel()
                raise BodyTimeout(self.timeout) from None
            raise
        if deadlines.disarm(task):
            await absorb(task)
            raise BodyTimeout(self.timeout)
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
            message = await self.deadlines.receive(receive, task, deadline, self.timeout)
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
        task = asyncio.current_task()
        assert task is not None
        message = await limits.deadlines.receive(self.receive, task, self.deadline, limits.timeout)
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > limits.max_size:
                self.complete = True
                raise BodyTooLarge(limits.max_size)
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        return message
