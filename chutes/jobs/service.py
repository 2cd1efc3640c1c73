"""The job service of a running chute: the store, the workers executing runs, the scheduler and the API.

The server runtime creates one per chute, awaits :meth:`JobService.start` after the startup hooks and
:meth:`JobService.stop` before the shutdown hooks, and mounts :meth:`JobService.router`.

For tests of a chute's jobs (``chutes.testing``): build ``JobService(chute, settings, registry,
clock=ManualClock(...))`` (any :class:`~chutes.jobs.clock.Clock`: cron firings, backoff and leases read
it) and ``await service.run_now(name, input)``, which runs the job to its final status, retries
included, and returns the finished :class:`~chutes.jobs.runs.Run`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pydantic_core
from pydantic import ValidationError

from chutes.chute.registry import registry_of
from chutes.errors import ChutesError
from chutes.jobs.clock import Clock, OffsetClock, SystemClock, default_clock
from chutes.jobs.metrics import JobMetrics
from chutes.jobs.runner import Runner
from chutes.jobs.scheduler import Scheduler, next_fire, time_zone
from chutes.jobs.store import Run, RunStore, StoreUnavailableError, Trigger, open_store, store_path
from chutes.signature import BindingKind

if TYPE_CHECKING:
    import prometheus_client

    from chutes.chute import Chute
    from chutes.job import Job
    from chutes.settings import Settings

__all__ = ["JobService", "UnknownJobError", "input_json"]

POLL_SECONDS: Final = 0.25  # how often an idle worker looks for runs queued by other processes (or due retries)
HEARTBEAT_SECONDS: Final = 2.0  # orphan recovery, queue gauge, database clock, store health
PRUNE_SECONDS: Final = 300.0  # how often finished runs past their retention are deleted


class _IdleWorkers:
    """Idle workers waiting for a run; each queued run wakes one of them, not all (no herd of empty claims)."""

    def __init__(self, workers: int) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._missed = 0  # wakes that found every worker busy: the next ones to go idle claim again at once
        self._limit = workers

    async def wait(self, timeout: float) -> None:
        """Wait until woken, or ``timeout`` seconds (workers also poll for runs of other processes)."""
        if self._missed:
            self._missed -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def wake(self, count: int = 1) -> None:
        """Wake ``count`` idle workers."""
        while count and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
        self._missed = min(self._limit, self._missed + count)

    def wake_all(self) -> None:
        """Wake every idle worker (or, all busy, the next to go idle): their claims go out as one batch."""
        self.wake(max(1, len(self._waiters)))


class UnknownJobError(ChutesError, LookupError):
    """The chute has no job of this name."""


def input_json(job: Job, body: bytes) -> str:
    """Validate a run's input as the job's handler would bind it, and return it as JSON text to store.

    Raises pydantic's ``ValidationError`` for bad input. The stored input is the decoded body itself
    (``{}`` when empty, strict JSON), bound again when the run executes.
    """
    job.signature.bind_json(body)
    if not body.strip():
        return "{}"
    try:
        # Strict JSON only: NaN or Infinity would be stored, then break every listing of the run.
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if job.signature.kind is BindingKind.NONE and not job.keywords:  # no input: a body that is not JSON is ignored
            return "{}"
        raise ValidationError.from_exception_data(
            "input",
            [{"type": "json_invalid", "loc": (), "input": body.decode(errors="replace"), "ctx": {"error": str(exc)}}],
        ) from None
    if job.keywords and not isinstance(value, dict):
        # `**job_data` receives the input's keys: it must be an object.
        raise ValidationError.from_exception_data("input", [{"type": "dict_type", "loc": (), "input": value}])
    return json.dumps(value, ensure_ascii=False)


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
        self._idle: _IdleWorkers | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._listener: threading.Thread | None = None
        self._last_prune = float("-inf")

    @property
    def path(self) -> Path:
        """The SQLite run store's file (when ``CHUTES_DATABASE_URL`` is unset)."""
        return store_path(self.settings.data_dir, self.chute.name)

    @property
    def outputs_dir(self) -> Path:
        """Where the output folders of attempts executing in this process are made."""
        return Path(self.settings.data_dir) / "outputs" / self.chute.name

    @property
    def healthy(self) -> bool:
        """Whether the store answered its last call (``/_health`` turns 503 otherwise)."""
        return self.store is None or self.store.healthy

    # -- lifecycle -----------------------------------------------------------------------------------

    async def _open(self) -> tuple[RunStore, Runner]:
        zone = self.settings.timezone
        time_zone(zone)  # an unknown zone is a configuration error: fail at start, not at the first firing
        settings = self.settings
        store = await asyncio.to_thread(open_store, settings.database_url or None, settings.data_dir, self.chute.name)
        self.store = store
        if isinstance(self.clock, SystemClock) and (db_time := await store.time()) is not None:
            # A shared database: leases and schedules follow its clock, not this machine's.
            self.clock = OffsetClock(db_time - self.clock.time())
        runner = self.runner = Runner(
            self.chute, store, self.clock, self.metrics, settings.job_backoff, settings.job_lease,
            settings.job_backoff_max, self.outputs_dir,
        )  # fmt: skip
        runner.start_leases()
        self.scheduler = Scheduler(
            registry_of(self.chute).jobs.values(), store, self.clock, zone, on_fire=lambda run: self.wake()
        )
        self.metrics.watch_queue(list(registry_of(self.chute).jobs))
        self._idle = _IdleWorkers(self.settings.job_workers)
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        listen = getattr(store.backend, "listen", None)
        if listen is not None:
            self._listener = threading.Thread(
                target=listen, args=(self._wake_threadsafe,), name="chutes-jobs-listen", daemon=True
            )
            self._listener.start()
        return store, runner

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def start(self) -> None:
        """Open the store, take up runs left by stopped processes, and start the workers and the scheduler.

        A chute without jobs starts nothing and creates no files.
        """
        if not registry_of(self.chute).jobs:
            return
        store, runner = await self._open()
        await runner.recover()
        for run in await store.fail_undefined(list(registry_of(self.chute).jobs), self.clock.time(), self.chute.name):
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
        self.wake(self.settings.job_workers)
        for background in self._tasks:
            if background.get_name() == "chutes-jobs-scheduler":
                background.cancel()  # no new firings while draining
        # Idle workers leave at once; busy ones when their run ends (or a claim in flight, once its run
        # has executed), and runs whose outcome is being recorded once it is: all within the grace period,
        # after which the runs still going are requeued.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        workers = [task for task in self._tasks if task.get_name().startswith("chutes-jobs-worker-")]
        if workers:
            await asyncio.wait(workers, timeout=self.settings.shutdown_grace)
        if runner.running:
            await asyncio.wait(list(runner.running.values()), timeout=max(0.0, deadline - loop.time()))
        leftovers = [task for run_id in list(runner.running) if (task := runner.cancel(run_id, "shutdown"))]
        await asyncio.gather(*leftovers, return_exceptions=True)
        for background in self._tasks:
            background.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        runner.close()
        await store.aclose()
        self.store = self.runner = self.scheduler = None
        self._listener = None

    def wake(self, count: int = 1) -> None:
        """Tell ``count`` idle workers that runs were queued."""
        if self._idle is not None:
            self._idle.wake(count)

    def _wake_threadsafe(self) -> None:
        # Another process queued runs (one notification per transaction, however many runs it queued).
        loop, idle = self._loop, self._idle
        if loop is not None and idle is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(idle.wake_all)

    async def _work(self) -> None:
        assert self.store is not None
        assert self.runner is not None
        assert self._idle is not None
        store, runner, idle = self.store, self.runner, self._idle
        names = list(registry_of(self.chute).jobs)
        while not self._stopping:
            try:
                run = await store.claim(runner.owner, names, self.clock.time(), runner.lease_until())
            except StoreUnavailableError as exc:
                self.chute.logger.warning("jobs: could not claim a run: %s", exc)
                run = None
            except Exception:
                # A worker that dies stops executing runs without a word: log the bug and go on.
                self.chute.logger.exception("jobs: worker error")
                run = None
            if run is None:
                await idle.wait(POLL_SECONDS)
                continue
            try:
                await runner.execute(run, record_after=True)
            except Exception:
                self.chute.logger.exception("jobs: worker error while executing run %s", run.id)

    async def _heartbeat(self) -> None:
        while self.store is not None:
            await self.clock.sleep(HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except StoreUnavailableError as exc:
                self.chute.logger.warning("jobs: heartbeat: %s", exc)
            except Exception:
                # Without the heartbeat, dead processes' runs are never taken up again.
                self.chute.logger.exception("jobs: heartbeat error")

    async def beat(self) -> None:
        """One heartbeat: take up orphans, refresh the queue gauge and the database clock, prune old runs."""
        runner, store = self.runner, self.store
        if runner is None or store is None:
            return
        if changed := await runner.recover():
            self.wake(len(changed))
        self.metrics.queued = await store.queued_counts()
        if isinstance(self.clock, OffsetClock) and (db_time := await store.time()) is not None:
            self.clock.offset += db_time - self.clock.time()
        now = self.clock.time()
        if now - self._last_prune >= PRUNE_SECONDS:
            self._last_prune = now
            pruned = await store.prune(now - self.settings.job_retention)
            if pruned:
                self.chute.logger.info("jobs: pruned %d finished runs older than CHUTES_JOB_RETENTION", pruned)

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

    async def submit(self, name: str, body: bytes, trigger: Trigger = "api") -> Run:
        """Validate ``body`` as the job's input and queue a run; raises ``UnknownJobError`` or ``ValidationError``.

        Raises ``StoreUnavailableError`` when the store cannot take it (the API answers 503).
        """
        job = self.job(name)
        stored = input_json(job, body)
        run = await self._store().submit(job.name, stored, job.max_attempts, trigger, self.clock.time())
        self.wake()
        return run

    async def cancel(self, run_id: str) -> Run:
        """Cancel a queued or running run; raises ``RunNotFoundError`` or ``RunFinishedError``."""
        now = self.clock.time()
        run = await self._store().cancel(run_id, now)
        if self.runner is not None:
            self.runner.cancel(run_id, "cancel")
        if run.name in registry_of(self.chute).jobs:
            self.metrics.finished(run.name, "cancelled", None, now)
        return run

    def _store(self) -> RunStore:
        if self.store is None:
            raise RuntimeError("the job service is not started")
        return self.store

    async def run_now(self, name: str, data: Any = None, trigger: Trigger = "cli") -> Run:
        """Run a job now, in the foreground, to its final status; return the finished run.

        ``data`` is the input (JSON bytes, or a value to encode as JSON). Retries wait their backoff on
        the service's clock, so with a ``ManualClock`` the caller advances it (or sets
        ``job_backoff=0``). The run is recorded in the store like any other, with ``trigger``.
        """
        body = data if isinstance(data, bytes) else (b"" if data is None else json.dumps(data).encode())
        return await self.run_once(name, body, trigger)

    async def run_once(self, name: str, body: bytes, trigger: Trigger = "cli") -> Run:
        """Run a job once in the foreground with its retries and timeout, recorded in the store (``jobs run``)."""
        job = self.job(name)
        stored = input_json(job, body)
        store, runner = await self._open()
        try:
            now = self.clock.time()
            run: Run | None = await store.start(
                job.name, stored, job.max_attempts, trigger, now, runner.owner, runner.lease_until()
            )
            assert run is not None
            run_id = run.id
            try:
                while run is not None:
                    await runner.execute(run)
                    current = await store.get(run_id)
                    if current is None or current.status != "queued":
                        break
                    # A retry: wait for its backoff, then take the run again ourselves.
                    await self.clock.sleep(current.available_at - self.clock.time())
                    run = await store.claim(runner.owner, [job.name], self.clock.time(), runner.lease_until(), run_id)
            except BaseException:
                # Interrupted (Ctrl-C): a foreground run is nobody else's to finish, so it ends cancelled.
                runner.cancel(run_id, "cancel")
                with contextlib.suppress(LookupError, RuntimeError):
                    await store.cancel(run_id, self.clock.time())
                raise
            final = await store.get(run_id)
            assert final is not None
            return final
        finally:
            await self.stop()
