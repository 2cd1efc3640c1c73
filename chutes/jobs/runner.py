"""Executing one claimed attempt of a run: its timeout, its outcome, its output folder, its cancellation.

An attempt ends in one of three ways, each recorded only with the attempt's token (so the result of an
attempt whose run was cancelled or taken over meanwhile is discarded and logged, never recorded):
completed; failed for good; or queued again with ``available_at = now + backoff`` while attempts remain.
Backoff is never slept in a worker, which takes the next run at once.

A sync job function runs in a worker thread. Python cannot stop a thread, so when such an attempt
times out or its run is cancelled the run moves on (to its next attempt, or its final status) and the
thread is abandoned: it keeps running in the background until the function returns, and its result is
dropped. Write long sync jobs to check for their own deadline, or make them ``async``.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import ValidationError

from chutes.chute.registry import registry_of
from chutes.invoke import call_handler
from chutes.job import current_output_dir
from chutes.jobs import outputs
from chutes.jobs.lease import LEASE_SECONDS, LeaseKeeper, is_orphan, live_owners, new_owner
from chutes.jobs.runs import StoreUnavailableError

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.job import Job
    from chutes.jobs.clock import Clock
    from chutes.jobs.metrics import JobMetrics
    from chutes.jobs.runs import Run
    from chutes.jobs.store import RunStore

__all__ = ["LEASE_SECONDS", "Runner", "backoff_delay", "is_orphan", "new_owner", "result_json"]

# How long a run cancelled while no attempt of it executes here is remembered: its claim may be on its
# way to a worker (the store records the claim before the worker has the run), which must then not start it.
CANCELLED_MEMORY = 60.0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """The delay before the attempt after ``attempt``: ``base * 2**(attempt-1)`` capped at ``cap``, jittered.

    The jitter takes the delay anywhere between its half and its whole, so that runs failing together
    (a dependency down) do not all come back at the same instant.
    """
    delay = min(cap, base * 2 ** min(attempt - 1, 60))
    jitter: float = (rng or random).random()
    return float(delay) * (0.5 + 0.5 * jitter)


@dataclass(slots=True)
class _Outcome:
    ok: bool
    value: str  # the result as JSON text when ok, else the error
    retry: bool = True


class Runner:
    """Runs claimed attempts of a chute's jobs, records their outcome, and keeps their leases (in a thread)."""

    def __init__(
        self, chute: Chute, store: RunStore, clock: Clock, metrics: JobMetrics | None, backoff: float,
        lease: float = LEASE_SECONDS, backoff_max: float = 300.0, outputs_dir: Path | None = None,
    ) -> None:  # fmt: skip
        self.chute = chute
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.lease = lease
        self.outputs_dir = outputs_dir if outputs_dir is not None else Path(tempfile.gettempdir()) / "chutes-outputs"
        self.owner = new_owner()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tokens: dict[str, str] = {}  # run id -> token of the attempt executing here
        self._reasons: dict[str, str] = {}
        self._cancelled: dict[str, float] = {}  # run id -> monotonic time it may be forgotten, oldest first
        self.keeper: LeaseKeeper | None = None
        live_owners.add(self.owner)

    def start_leases(self) -> None:
        """Start the thread renewing this runner's leases."""
        if self.keeper is None:
            self.keeper = LeaseKeeper(
                self.store, self.clock, self.lease, lambda: list(self._tokens.values()), self._lost,
                asyncio.get_running_loop(),
            )  # fmt: skip
            self.keeper.start()

    def close(self) -> None:
        """Stop renewing and forget this runner as a live owner: its remaining runs become orphans."""
        if self.keeper is not None:
            self.keeper.stop()
        live_owners.discard(self.owner)

    @property
    def running(self) -> dict[str, asyncio.Task[None]]:
        """Tasks of the runs executing now, by run id."""
        return self._tasks

    def lease_until(self) -> float:
        """The lease deadline a run claimed now gets."""
        return self.clock.time() + self.lease

    async def execute(self, run: Run, *, record_after: bool = False) -> None:
        """Execute one attempt of a run this runner claimed, and record its outcome.

        With ``record_after``, return as soon as the attempt itself has ended and let its outcome be recorded
        meanwhile (the run's task, in :attr:`running` until then): a worker takes its next run without
        waiting for the store's round trip.
        """
        if self._cancelled.pop(run.id, None) is not None:
            self.chute.logger.info("job %s: run %s was cancelled before its attempt started here", run.name, run.id)
            return
        ended = asyncio.get_running_loop().create_future() if record_after else None
        task = asyncio.create_task(self._execute(run, ended), name=f"chutes-job-run-{run.id}")
        self._tasks[run.id] = task
        if run.token is not None:
            self._tokens[run.id] = run.token
        # Shielded: stopping a worker must not stop its run; shutdown cancels runs on purpose (``cancel``).
        await asyncio.shield(task if ended is None else ended)

    def cancel(self, run_id: str, reason: str) -> asyncio.Task[None] | None:
        """Cancel a run executing here; ``reason``: ``cancel`` (by request), ``lost`` or ``shutdown`` (requeue it)."""
        task = self._tasks.get(run_id)
        if task is None or task.done():
            if reason == "cancel":
                self._remember_cancelled(run_id)
            return None
        self._reasons[run_id] = reason
        task.cancel()
        return task

    def _remember_cancelled(self, run_id: str) -> None:
        now = time.monotonic()
        remembered = self._cancelled
        while remembered:
            oldest = next(iter(remembered))
            if remembered[oldest] > now:
                break
            del remembered[oldest]
        remembered[run_id] = now + CANCELLED_MEMORY

    def _lost(self, token: str) -> None:
        for run_id, held in list(self._tokens.items()):
            if held == token:
                self.chute.logger.warning(
                    "job run %s was cancelled or taken over by another process; stopping this attempt", run_id
                )
                self.cancel(run_id, "lost")

    async def _execute(self, run: Run, ended: asyncio.Future[None] | None) -> None:
        job = registry_of(self.chute).jobs[run.name]
        token = run.token or ""
        folder = outputs.path(self.outputs_dir, run.id, token or run.id)
        in_attempt = True
        try:
            outcome = await self._attempt(job, run, folder)
            in_attempt = False
            if ended is not None and not ended.done():
                ended.set_result(None)
            now = self.clock.time()
            final = outcome.ok or run.attempts >= run.max_attempts or not outcome.retry
            files = outputs.collect(folder) if final and job.upload else []
            if outcome.ok:
                recorded, status = await self.store.complete(run.id, token, outcome.value, now, files), "completed"
            elif not final:
                delay = backoff_delay(run.attempts, self.backoff, self.backoff_max)
                recorded, status = await self.store.retry(run.id, token, outcome.value, now + delay), "retry"
            else:
                recorded, status = await self.store.fail(run.id, token, outcome.value, now, files), "failed"
            if not recorded:
                self.chute.logger.warning(
                    "job %s: run %s: attempt %d ended (%s) after its run was cancelled or taken over; "
                    "its outcome is discarded",
                    job.name, run.id, run.attempts, status,
                )  # fmt: skip
            elif status != "retry":
                self._finished(job, status, run, now)
        except asyncio.CancelledError:
            reason = self._reasons.pop(run.id, "cancel")
            if reason == "shutdown":
                # Interrupted by our own shutdown, not by the job: the attempt does not count.
                await self.store.requeue(run.id, token, uncount=in_attempt)
            self.chute.logger.info("job %s: run %s cancelled (%s)", job.name, run.id, reason)
        except StoreUnavailableError:
            # The outcome could not be recorded: the run keeps its lease until it expires, then another
            # attempt takes it up; this worker goes on with the next run.
            self.chute.logger.exception("job %s: could not record the outcome of run %s", job.name, run.id)
        except Exception as exc:
            # A bug, not the job's own error: a run left running under a live owner would never be taken
            # up again, so it fails with the cause when the store lets us.
            self.chute.logger.exception("job %s: run %s: unexpected error", job.name, run.id)
            try:
                now = self.clock.time()
                if await self.store.fail(run.id, token, f"internal error: {type(exc).__name__}: {exc}", now):
                    self._finished(job, "failed", run, now)
            except StoreUnavailableError:
                pass
        finally:
            if ended is not None and not ended.done():
                ended.set_result(None)
            outputs.remove(folder)
            self._reasons.pop(run.id, None)
            self._tasks.pop(run.id, None)
            self._tokens.pop(run.id, None)

    async def _attempt(self, job: Job, run: Run, folder: Path) -> _Outcome:
        try:
            # Bound from the stored JSON exactly as at submit time (strict models accept JSON strings only).
            kwargs = job.bind(run.input_json, folder)
        except ValidationError as exc:
            return _Outcome(False, f"invalid input: {exc}", retry=False)
        current_output_dir.set(folder)  # this task's context only: concurrent runs each see their own
        deadline = asyncio.timeout(job.timeout)
        try:
            async with deadline:
                result = await call_handler(job.func, self.chute, kwargs)
        except TimeoutError as exc:
            if deadline.expired():
                error = f"attempt {run.attempts} of {run.max_attempts} timed out after {job.timeout:g} s"
                self.chute.logger.warning("job %s: run %s: %s", job.name, run.id, error)
                return _Outcome(False, error)
            return self._error(job, run, exc)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return self._error(job, run, exc)  # raised by the job itself, not a cancellation of the run
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt raised by a job fails its attempt; it must not stop the server.
            return self._error(job, run, exc)
        try:
            return _Outcome(True, result_json(result))
        except Exception as exc:  # ValueError mostly; a custom type's serializer may raise anything
            error = f"job {job.name} returned a value that is not JSON-serializable: {exc}"
            self.chute.logger.warning("job %s: run %s: %s", job.name, run.id, error)
            return _Outcome(False, error, retry=False)

    def _error(self, job: Job, run: Run, exc: BaseException) -> _Outcome:
        self.chute.logger.warning(
            "job %s: run %s: attempt %d of %d failed", job.name, run.id, run.attempts, run.max_attempts, exc_info=exc
        )
        return _Outcome(False, f"{type(exc).__name__}: {exc}")

    def _finished(self, job: Job, status: str, run: Run, now: float) -> None:
        if self.metrics is not None:
            started = run.started_at if run.started_at is not None else now
            self.metrics.finished(job.name, status, now - started, now)

    async def recover(self) -> list[Run]:
        """Requeue (or fail, with no attempts left) the running runs of processes that are gone."""
        now = self.clock.time()
        changed = await self.store.recover(now, lambda owner, lease_until: is_orphan(owner, lease_until, now))
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
