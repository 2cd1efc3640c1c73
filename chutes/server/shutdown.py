"""Shutting down without dropping calls: SIGTERM first drains, then the server's own exit runs.

On SIGTERM the chute turns ``/_ready`` to 503 at once (load balancers stop sending it work) but keeps
taking requests for ``CHUTES_DRAIN_SECONDS`` (a load balancer that has not yet noticed still gets
answers). Then the server's own SIGTERM handler runs: uvicorn stops accepting connections and gives
in-flight calls and streams ``CHUTES_SHUTDOWN_GRACE`` seconds (its ``timeout_graceful_shutdown``, which
``chutes serve`` and ``run_local`` set) before cancelling them, while running jobs get the same grace in
parallel. A second SIGTERM skips what is left of the drain.

The handler chains to the one the server installed, so it works under ``chutes serve``, ``run_local``,
``uvicorn module:chute`` and each ``--workers`` process alike; it is installed only when the lifespan
runs in the main thread (a test client's lifespan runs in another, and is left alone).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("chutes.server")

Handler = Callable[[int, FrameType | None], Any] | int | None


class Drain:
    """The SIGTERM handler of one running chute."""

    def __init__(self, seconds: float, on_drain: Callable[[], None], on_exit: Callable[[], None]) -> None:
        self.seconds = seconds
        self.on_drain = on_drain  # readiness off (on the event loop)
        self.on_exit = on_exit  # the drain is over: stop jobs (on the event loop, before the server's handler)
        self._previous: Handler = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._installed = False
        self._exited = False

    def install(self) -> None:
        """Chain in front of the current SIGTERM handler (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_signal)
        self._installed = True

    def uninstall(self) -> None:
        """Put the previous handler back, if ours is still the one installed."""
        if self._installed and signal.getsignal(signal.SIGTERM) == self._on_signal:
            signal.signal(signal.SIGTERM, self._previous)
        self._installed = False
        if self._timer is not None:
            self._timer.cancel()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler runs between two bytecodes of whatever the main thread was doing: only hand
        # the work over to the event loop.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._start, sig)

    def _start(self, sig: int) -> None:
        if self._timer is not None or self.seconds <= 0:
            self._exit(sig)  # a second SIGTERM, or no drain at all
            return
        logger.info("SIGTERM: /_ready answers 503; taking requests for %g more seconds", self.seconds)
        self.on_drain()
        assert self._loop is not None
        self._timer = self._loop.call_later(self.seconds, self._exit, sig)

    def _exit(self, sig: int) -> None:
        if self._exited:
            return
        self._exited = True
        if self._timer is not None:
            self._timer.cancel()
        self.on_drain()
        self.on_exit()
        previous = self._previous
        self.uninstall()
        if callable(previous):
            previous(sig, None)
        else:  # no server handler to chain to: the default action, as if we had not been here
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
            signal.raise_signal(signal.SIGTERM)
