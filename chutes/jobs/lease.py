"""Who owns a running attempt, how it keeps its lease, and how a lost one is recognised.

A worker's lease is renewed by a thread, not by the event loop its jobs run on: an ``async def`` job that
computes for minutes without awaiting stalls the loop, never the renewals, so no sibling takes its run
over while it is alive. A process that dies stops renewing; on the same host its pid tells at once, on
another host the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from chutes.pids import pid_alive

if TYPE_CHECKING:
    from chutes.jobs.clock import Clock
    from chutes.jobs.store import RunStore

__all__ = ["LEASE_SECONDS", "LeaseKeeper", "is_orphan", "live_owners", "new_owner"]

LEASE_SECONDS: Final = 30.0
_HOST: Final = socket.gethostname()
_log = logging.getLogger("chutes.jobs")
# Owners (runners) alive in this process: their runs are never orphans, whatever their lease says.
live_owners: set[str] = set()


def new_owner() -> str:
    """A fresh owner id, ``host:pid:nonce``, recorded on the runs a runner executes."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_orphan(owner: str | None, lease_until: float | None, now: float) -> bool:
    """Whether a ``running`` run lost its process.

    Runs of a live runner in this process are never orphans. On this host the owner's pid is asked first
    (``kill(pid, 0)``): a dead process's runs are taken up at once, before their lease expires. Otherwise
    (another host, or a live pid that may have been reused) the lease decides.
    """
    if owner is not None and owner in live_owners:
        return False
    if owner is None or lease_until is None:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == _HOST and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid() or not pid_alive(pid):
            return True  # this process holds no live runner of that name, or the process is gone
    return lease_until < now


class LeaseKeeper:
    """A thread that renews the leases of the attempts a runner holds, every third of the lease.

    ``tokens`` returns the live attempts' tokens (read from the thread, so it must be a cheap snapshot);
    ``lost`` is called on the event loop with each token whose run ended elsewhere (cancelled, taken over).
    """

    def __init__(
        self, store: RunStore, clock: Clock, lease: float, tokens: Callable[[], list[str]],
        lost: Callable[[str], None], loop: asyncio.AbstractEventLoop,
    ) -> None:  # fmt: skip
        self.store = store
        self.clock = clock
        self.lease = lease
        self._tokens = tokens
        self._lost = lost
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chutes-jobs-lease", daemon=True)

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the thread ends within one period)."""
        self._stop.set()

    def renew_now(self) -> None:
        """Renew once, here and now (blocking: call it from a thread)."""
        tokens = self._tokens()
        if not tokens:
            return
        alive = self.store.call_sync(self.store.backend.renew, tokens, self.clock.time() + self.lease, timeout=30)
        for token in tokens:
            if token not in alive:
                self._loop.call_soon_threadsafe(self._lost, token)

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.renew_now()
            except RuntimeError:
                return  # the loop or the store closed under us: the service is stopping
            except Exception:
                # A store outage: the lease runs on; the next renewal may succeed before it expires.
                _log.exception("jobs: could not renew run leases")
