"""Executing a claimed run: attempts with a timeout each, exponential backoff between them, cancellation.

A sync job function runs in a worker thread. Python cannot stop a thread, so when such an attempt
times out or its run is cancelled the run moves on (to its next attempt, or its final status) and the
thread is abandoned: it keeps running in the background until the function returns, and its result is
dropped. Write long sync jobs to check for their own deadline, or make them ``async``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pydantic_core
from pydantic import ValidationError

from chutes.chute.registry import registry_of
from chutes.invoke import call_handler

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.job import Job
    from chutes.jobs.clock import Clock
    from chutes.jobs.metrics import JobMetrics
    from chutes.jobs.store import Run, RunStore

__all__ = ["LEASE_SECONDS", "Runner", "is_orphan", "new_owner"]

LEASE_SECONDS: Final = 30.0
_HOST: Final = socket.gethostname()
# Owners (runners) alive in this process: their runs are never orphans, whatever their lease says.
_LIVE_OWNERS: set[str] = set()


def new_owner() -> str:
    """A fresh owner id, ``host:pid:token``, recorded on the runs a runner executes."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except (OSError, IndexError):
        return True


def is_orphan(owner: str | None, lease_until: float | None, now: float) -> bool:
    """Whether a ``running`` run lost its process: its lease expired, or its owner on this host is gone.

    Runs of a live runner in this process are never orphans; a sibling process on this host is asked
    directly (``kill(pid, 0)``), so a restart after a crash takes the dead process's runs up at once;
    other hosts are trusted until their lease expires (runners renew it every ``LEASE_SECONDS / 3``).
    """
    if owner is not None and owner in _LIVE_OWNERS:
        return False
    if owner is None or lease_until is None or lease_until < now:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid == os.getpid() or not _pid_alive(pid)


@dataclass(slots=True)
class _Outcome:
    ok: bool
    value: str  # the result as JSON text when ok, else the error
    retry: bool = True


class Runner:
    """Runs claimed runs of a chute's jobs, records their outcome, and keeps their leases."""

    def __init__(
        self, chute: Chute, store: RunStore, clock: Clock, metrics: JobMetrics | None, backoff: float,
        lease: float = LEASE_SECONDS,
    ) -> None:  # fmt: skip
        self.chute = chute
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.backoff = backoff
        self.lease = lease
        self.owner = new_owner()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reasons: dict[str, str] = {}
        _LIVE_OWNERS.add(self.owner)

    def close(self) -> None:
        """Forget this runner as a live owner: its remaining runs become orphans for the next process."""
        _LIVE_OWNERS.discard(self.owner)

    @property
    def running(self) -> dict[str, asyncio.Task[None]]:
        """Tasks of the runs executing now, by run id."""
        return self._tasks

    def lease_until(self) -> float:
        """The lease deadline a run claimed now gets."""
        return self.clock.time() + self.lease

    async def execute(self, run: Run) -> None:
        """Execute a run this runner claimed (its first attempt already counted) to a final status."""
        task = asyncio.create_task(self._execute(run), name=f"chutes-job-run-{run.id}")
        self._tasks[run.id] = task
        # Shielded: stopping a worker must not stop its run; shutdown cancels runs on purpose (``cancel``).
        await asyncio.shield(task)

    def cancel(self, run_id: str, reason: str) -> asyncio.Task[None] | None:
        """Cancel a run executing here; ``reason`` is ``cancel`` (by request) or ``shutdown`` (requeue it)."""
        task = self._tasks.get(run_id)
        if task is None or task.done():
            return None
        self._reasons[run_id] = reason
        task.cancel()
        return task

    async def _execute(self, run: Run) -> None:
        job = registry_of(self.chute).jobs[run.name]
        started = time.monotonic()
        attempt = run.attempts
        in_attempt = False
        try:
            while True:
                in_attempt = True
                outcome = await self._attempt(job, run, attempt)
                in_attempt = False
                now = self.clock.time()
                if outcome.ok:
                    if self.store.complete(run.id, self.owner, outcome.value, now):
                        self._finished(job, "completed", started, now)
                    return
                if attempt >= run.max_attempts or not outcome.retry:
                    if self.store.fail(run.id, self.owner, outcome.value, now):
                        self._finished(job, "failed", started, now)
                    return
                await self.clock.sleep(self.backoff * 2 ** (attempt - 1))
                next_attempt = self.store.next_attempt(run.id, self.owner, outcome.value)
                if next_attempt is None:  # cancelled or taken over while it waited
                    return
                attempt = next_attempt
        except asyncio.CancelledError:
            if self._reasons.pop(run.id, "cancel") == "shutdown":
                # Interrupted by our own shutdown, not by the job: the attempt does not count.
                self.store.requeue(run.id, self.owner, uncount=in_attempt)
            self.chute.logger.info("job %s: run %s cancelled", job.name, run.id)
        except Exception as exc:
            # A bug or a store failure, not the job's own error: a run left running under a live owner
            # would never be taken up again, so it fails with the cause when the store lets us.
            self.chute.logger.exception("job %s: run %s: unexpected error", job.name, run.id)
            with contextlib.suppress(sqlite3.Error):
                if self.store.fail(
                    run.id, self.owner, f"internal error: {type(exc).__name__}: {exc}", self.clock.time()
                ):
                    self._finished(job, "failed", started, self.clock.time())
        finally:
            self._reasons.pop(run.id, None)
            self._tasks.pop(run.id, None)

    async def _attempt(self, job: Job, run: Run, attempt: int) -> _Outcome:
        try:
            # Bound from the stored JSON exactly as at submit time (strict models accept JSON strings only).
            kwargs = job.signature.bind_json(run.input_json.encode())
        except ValidationError as exc:
            return _Outcome(False, f"invalid input: {exc}", retry=False)
        deadline = asyncio.timeout(job.timeout)
        try:
            async with deadline:
                result = await call_handler(job.func, self.chute, kwargs)
        except TimeoutError as exc:
            if deadline.expired():
                error = f"attempt {attempt} of {run.max_attempts} timed out after {job.timeout:g} s"
                self.chute.logger.warning("job %s: run %s: %s", job.name, run.id, error)
                return _Outcome(False, error)
            return self._error(job, run, attempt, exc)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return self._error(job, run, attempt, exc)  # raised by the job itself, not a cancellation of the run
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt raised by a job fails its attempt; it must not stop the server.
            return self._error(job, run, attempt, exc)
        try:
            return _Outcome(True, result_json(result))
        except Exception as exc:  # ValueError mostly; a custom type's serializer may raise anything
            error = f"job {job.name} returned a value that is not JSON-serializable: {exc}"
            self.chute.logger.warning("job %s: run %s: %s", job.name, run.id, error)
            return _Outcome(False, error, retry=False)

    def _error(self, job: Job, run: Run, attempt: int, exc: BaseException) -> _Outcome:
        self.chute.logger.warning(
            "job %s: run %s: attempt %d of %d failed", job.name, run.id, attempt, run.max_attempts, exc_info=exc
        )
        return _Outcome(False, f"{type(exc).__name__}: {exc}")

    def _finished(self, job: Job, status: str, started: float, now: float) -> None:
        if self.metrics is not None:
            self.metrics.finished(job.name, status, time.monotonic() - started, now)

    def keep_leases(self) -> None:
        """Renew the leases of our runs, and stop those cancelled or taken over by another process."""
        if not self._tasks:
            return
        alive = self.store.renew(self.owner, list(self._tasks), self.lease_until())
        for run_id in list(self._tasks):
            if run_id not in alive:
                self.cancel(run_id, "cancel")

    def recover(self) -> list[Run]:
        """Requeue (or fail, with no attempts left) the running runs of processes that are gone."""
        now = self.clock.time()
        changed = self.store.recover(now, lambda owner, lease_until: is_orphan(owner, lease_until, now))
        for run in changed:
            if run.status == "failed" and self.metrics is not None and run.name in registry_of(self.chute).jobs:
                self.metrics.finished(run.name, "failed", None, now)
            self.chute.logger.warning("job %s: run %s left running by a stopped process is now %s", run.name, run.id,
                                      run.status)  # fmt: skip
        return changed


def result_json(value: Any) -> str:
    """A job result as JSON text (pydantic models, dataclasses, datetimes... as JSON).

    Raises ``ValueError`` for what strict JSON cannot hold (unknown types, NaN and infinities, lone
    surrogates), which would otherwise break every later listing of the run.
    """
    text = json.dumps(pydantic_core.to_jsonable_python(value), allow_nan=False, ensure_ascii=False)
    text.encode()  # UnicodeEncodeError (a ValueError) for lone surrogates
    return text
