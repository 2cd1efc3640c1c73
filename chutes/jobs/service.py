"""The job service of a running chute: the store, the workers executing runs, the scheduler and the API.

The server runtime creates one per chute, calls :meth:`JobService.start` after the startup hooks and
:meth:`JobService.stop` before the shutdown hooks, and mounts :meth:`JobService.router`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import pydantic_core
from pydantic import ValidationError

from chutes.chute.registry import registry_of
from chutes.jobs.clock import Clock, default_clock
from chutes.jobs.metrics import JobMetrics
from chutes.jobs.runner import Runner
from chutes.jobs.scheduler import Scheduler, next_fire, time_zone
from chutes.jobs.store import Run, RunStore, Trigger, store_path
from chutes.signature import BindingKind

if TYPE_CHECKING:
    from pathlib import Path

    import prometheus_client

    from chutes.chute import Chute
    from chutes.job import Job
    from chutes.settings import Settings

__all__ = ["JobService", "UnknownJobError", "input_json"]

POLL_SECONDS: Final = 0.25  # how often an idle worker looks for runs queued by other processes
HEARTBEAT_SECONDS: Final = 2.0  # lease renewal, cross-process cancellation and orphan recovery


class UnknownJobError(LookupError):
    """The chute has no job of this name."""


def input_json(job: Job, body: bytes) -> str:
    """Validate a run's input as the job's handler would bind it, and return it as JSON text to store.

    Raises pydantic's ``ValidationError`` for bad input. The stored input is the decoded body itself
    (``{}`` when empty, strict JSON), bound again with ``bind_json`` when the run executes.
    """
    job.signature.bind_json(body)
    if not body.strip():
        return "{}"
    try:
        # Strict JSON only: NaN or Infinity would be stored, then break every listing of the run.
        return json.dumps(pydantic_core.from_json(body, allow_inf_nan=False), ensure_ascii=False)
    except ValueError as exc:
        if job.signature.kind is BindingKind.NONE:  # a job without input ignores a body that is not JSON
            return "{}"
        raise ValidationError.from_exception_data(
            "input",
            [{"type": "json_invalid", "loc": (), "input": body.decode(errors="replace"), "ctx": {"error": str(exc)}}],
        ) from None


def iso_seconds(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 UTC to the second, ``2024-01-01T02:00:00Z``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobService:
    """Everything jobs need while a chute runs: store, workers, scheduler, metrics and routes."""

    def __init__(
        self,
        chute: Chute,
        settings: Settings,
        registry: prometheus_client.CollectorRegistry,
        clock: Clock | None = None,
    ) -> None:
        self.chute = chute
        self.settings = settings
        self.clock = clock if clock is not None else default_clock()
        self.metrics = JobMetrics(registry)
        self.store: RunStore | None = None
        self.runner: Runner | None = None
        self.scheduler: Scheduler | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._wake: asyncio.Event | None = None
        self._stopping = False

    @property
    def path(self) -> Path:
        """The run store's file."""
        return store_path(self.settings.data_dir, self.chute.name)

    # -- lifecycle -----------------------------------------------------------------------------------

    def _open(self) -> tuple[RunStore, Runner]:
        zone = self.settings.timezone
        time_zone(zone)  # an unknown zone is a configuration error: fail at start, not at the first firing
        store = self.store = RunStore(self.path)
        runner = self.runner = Runner(self.chute, store, self.clock, self.metrics, self.settings.job_backoff)
        self.scheduler = Scheduler(
            registry_of(self.chute).jobs.values(), store, self.clock, zone, on_fire=lambda run: self.wake()
        )
        self.metrics.watch_queue(self.path, list(registry_of(self.chute).jobs))
        self._wake = asyncio.Event()
        self._stopping = False
        return store, runner

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def start(self) -> None:
        """Open the store, take up runs left by stopped processes, and start the workers and the scheduler.

        A chute without jobs starts nothing and creates no files.
        """
        if not registry_of(self.chute).jobs:
            return
        store, runner = self._open()
        runner.recover()
        for run in store.fail_undefined(list(registry_of(self.chute).jobs), self.clock.time(), self.chute.name):
            self.chute.logger.warning("job %s: run %s failed: %s", run.name, run.id, run.error)
        self._spawn(self._heartbeat(), "chutes-jobs-heartbeat")
        for index in range(self.settings.job_workers):
            self._spawn(self._work(), f"chutes-jobs-worker-{index}")
        if self.settings.scheduler and self.scheduler is not None and self.scheduler.jobs:
            self._spawn(self.scheduler.run(), "chutes-jobs-scheduler")

    async def stop(self) -> None:
        """Stop taking runs, give running ones ``shutdown_grace`` seconds, then requeue those still going."""
        store, runner = self.store, self.runner
        if store is None or runner is None:
            return
        self._stopping = True
        self.wake()
        for background in self._tasks:
            if background.get_name() == "chutes-jobs-scheduler":
                background.cancel()  # no new firings while draining
        running = list(runner.running.values())
        if running:
            await asyncio.wait(running, timeout=self.settings.shutdown_grace)
        leftovers = [task for run_id in list(runner.running) if (task := runner.cancel(run_id, "shutdown"))]
        await asyncio.gather(*leftovers, return_exceptions=True)
        for background in self._tasks:
            background.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        runner.close()
        store.close()
        self.store = self.runner = self.scheduler = None

    def wake(self) -> None:
        """Tell idle workers that a run was queued."""
        if self._wake is not None:
            self._wake.set()

    async def _work(self) -> None:
        assert self.store is not None
        assert self.runner is not None
        assert self._wake is not None
        store, runner, wake = self.store, self.runner, self._wake
        names = list(registry_of(self.chute).jobs)
        while not self._stopping:
            wake.clear()
            try:
                run = store.claim(runner.owner, names, self.clock.time(), runner.lease_until())
            except sqlite3.Error:
                self.chute.logger.exception("jobs: could not claim a run")
                run = None
            except Exception:
                # A worker that dies stops executing runs without a word: log the bug and go on.
                self.chute.logger.exception("jobs: worker error")
                run = None
            if run is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_SECONDS)
                continue
            try:
                await runner.execute(run)
            except sqlite3.Error:
                # The store failed under the run (a disk error, a lock held too long): the run keeps its
                # lease, so recovery takes it up again; this worker goes on with the next one.
                self.chute.logger.exception("jobs: could not record the outcome of run %s", run.id)
            except Exception:
                self.chute.logger.exception("jobs: worker error while executing run %s", run.id)

    async def _heartbeat(self) -> None:
        assert self.runner is not None
        runner = self.runner
        while True:
            await self.clock.sleep(HEARTBEAT_SECONDS)
            try:
                runner.keep_leases()
                if runner.recover():
                    self.wake()
            except sqlite3.Error:
                self.chute.logger.exception("jobs: could not renew run leases")
            except Exception:
                # Without the heartbeat, leases expire and other processes take running runs over.
                self.chute.logger.exception("jobs: heartbeat error")

    # -- operations (the API and the CLI) ------------------------------------------------------------

    def job(self, name: str) -> Job:
        """The job called ``name``; raises ``UnknownJobError``."""
        job = registry_of(self.chute).jobs.get(name)
        if job is None:
            raise UnknownJobError(f"job {name!r} not found")
        return job

    def definitions(self) -> list[dict[str, Any]]:
        """The chute's jobs as ``GET /_jobs`` lists them."""
        return [
            {
                "name": job.name,
                "schedule": job.schedule,
                "next_run": iso_seconds(self.next_run(job)),
                "retry_count": job.retry_count,
                "timeout": job.timeout,
                "description": job.description,
            }
            for job in registry_of(self.chute).jobs.values()
        ]

    def next_run(self, job: Job) -> float | None:
        """When a scheduled job fires next (epoch seconds), ``None`` without a schedule."""
        if job.schedule is None:
            return None
        if self.scheduler is not None:
            return self.scheduler.next_run(job)
        return next_fire(job.schedule, time_zone(self.settings.timezone), self.clock.time())

    def submit(self, name: str, body: bytes, trigger: Trigger = "api") -> Run:
        """Validate ``body`` as the job's input and queue a run; raises ``UnknownJobError`` or ``ValidationError``."""
        job = self.job(name)
        stored = input_json(job, body)
        store = self._store()
        run = store.submit(job.name, stored, job.max_attempts, trigger, self.clock.time())
        self.wake()
        return run

    def cancel(self, run_id: str) -> Run:
        """Cancel a queued or running run; raises ``RunNotFoundError`` or ``RunFinishedError``."""
        now = self.clock.time()
        run = self._store().cancel(run_id, now)
        if self.runner is not None:
            self.runner.cancel(run_id, "cancel")
        if run.name in registry_of(self.chute).jobs:
            self.metrics.finished(run.name, "cancelled", None, now)
        return run

    def _store(self) -> RunStore:
        if self.store is None:
            raise RuntimeError("the job service is not started")
        return self.store

    async def run_once(self, name: str, body: bytes, trigger: Trigger = "cli") -> Run:
        """Run a job once in the foreground with its retries and timeout, recorded in the store (``jobs run``)."""
        job = self.job(name)
        stored = input_json(job, body)
        store, runner = self._open()
        self._spawn(self._heartbeat(), "chutes-jobs-heartbeat")
        try:
            now = self.clock.time()
            run = store.start(job.name, stored, job.max_attempts, trigger, now, runner.owner, runner.lease_until())
            try:
                await runner.execute(run)
            except BaseException:
                # Interrupted (Ctrl-C): a foreground run is nobody else's to finish, so it ends cancelled.
                runner.cancel(run.id, "cancel")
                with contextlib.suppress(LookupError, RuntimeError):
                    store.cancel(run.id, self.clock.time())
                raise
            final = store.get(run.id)
            assert final is not None
            return final
        finally:
            await self.stop()
