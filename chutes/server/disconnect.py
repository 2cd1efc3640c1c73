"""Noticing that a client left, so the cord call it started can be cancelled.

Listening for ``http.disconnect`` costs a task per call. Most calls end within a few milliseconds, so
listeners start only for calls still running after ``delay``: one watchdog task per server wakes every
``delay`` seconds while calls are in flight and starts the listeners that are due. A call pays a dict
insert and delete, not a timer or a task.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive


class Watch:
    """One call's disconnect listener: marks ``gone`` and, for cancellable calls, cancels the call's task."""

    __slots__ = ("task", "receive", "cancel", "gone", "listener")

    def __init__(self, task: asyncio.Task[Any], receive: Receive, cancel: bool) -> None:
        self.task = task
        self.receive = receive
        self.cancel = cancel
        self.gone = False
        self.listener: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin listening for the disconnect."""
        self.listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                if self.cancel:
                    self.task.cancel()
                return


class Watchdog:
    """Starts the listeners of calls that have run for ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._due: dict[Watch, float] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[Any], receive: Receive, cancel: bool) -> Watch:
        """Register a starting call; pair with :meth:`forget` when it ends."""
        watch = Watch(task, receive, cancel)
        loop = task.get_loop()  # the task's own loop: cheaper than asking for the running one
        self._due[watch] = loop.time() + self.delay
        if self._task is None:
            self._task = loop.create_task(self._run())
        return watch

    def forget(self, watch: Watch) -> None:
        """The call ended: stop its listener, if it had one."""
        del self._due[watch]
        if watch.listener is not None:
            watch.listener.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._due:
                await asyncio.sleep(self.delay)
                now = loop.time()
                for watch, due in list(self._due.items()):
                    if due <= now and watch.listener is None:
                        watch.start()
        finally:
            self._task = None
