"""Noticing that a client left, so the cord call it started can be cancelled.

Listening for ``http.disconnect`` costs a task per call. Most calls end within a few milliseconds, so
listeners start only for calls still running after ``delay``: one watchdog task per server wakes every
``delay`` seconds while calls without a listener are in flight, starts the listeners that are due, and
ends once every call in flight has one (the next call starts it again). A call pays a dict insert and
delete, not a timer or a task, and calls that run long (a model in a thread) are not interrupted by
wake-ups once they are listened to.
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
        self._due: dict[Watch, float] = {}  # calls in flight (cleared by forget), and when to listen to them
        self._task: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[Any], receive: Receive, cancel: bool) -> Watch:
        """Register a starting call; pair with :meth:`forget` when it ends."""
        watch = Watch(task, receive, cancel)
        loop = task.get_loop()  # the task's own loop: cheaper than asking for the running one
        self._due[watch] = loop.time() + self.delay
        runner = self._task
        if runner is None or runner.get_loop() is not loop:
            if runner is not None:
                # Left on a loop that was closed meanwhile (test clients run one loop each): forget its calls.
                self._due = {entry: due for entry, due in self._due.items() if entry.task.get_loop() is loop}
            self._task = loop.create_task(self._run())
        return watch

    def listen(self, task: asyncio.Task[Any], receive: Receive, cancel: bool) -> Watch:
        """Register a call that is known to wait (a batched one): its listener starts now, not after the delay."""
        watch = Watch(task, receive, cancel)
        watch.start()
        return watch

    def forget(self, watch: Watch) -> None:
        """The call ended: stop its listener, if it had one."""
        self._due.pop(watch, None)
        if watch.listener is not None:
            watch.listener.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        try:
            waiting = True
            while waiting and self._due:
                await asyncio.sleep(self.delay)
                now = loop.time()
                waiting = False
                for watch, due in list(self._due.items()):
                    if watch.listener is None:
                        if due <= now:
                            watch.start()
                        else:
                            waiting = True
            # Every call in flight is listened to: nothing to wake up for until the next call starts.
        finally:
            if self._task is me:  # not a newer watchdog started on another loop
                self._task = None
