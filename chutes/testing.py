"""A test kit for chutes: call cords, run jobs, fire cron schedules on a fake clock, assert on runs.

``ChuteTestClient(chute)`` is ``TestClient(chute)`` (the lifecycle runs inside ``with``) plus jobs: runs are
submitted and read through the chute's own ``/_jobs`` API, so a test sees exactly what a client of the
server would. Its job store lives in a temporary folder, retries are not delayed, and the job service
reads the time from a :class:`FakeClock` that only moves when the test says::

    with ChuteTestClient(chute) as client:
        run = client.run_job("resize", width=640)
        assert_run(run, status="completed", result={"pixels": 327680})
        client.clock.advance(24 * 3600)          # fires every schedule due in that day
        assert_run(client.runs("nightly_cleanup")[0], status="completed")

It needs ``httpx`` (``TestClient``'s transport), as ``TestClient`` does.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.testclient import TestClient

from chutes.chute import Chute
from chutes.chute.registry import registry_of
from chutes.jobs.clock import ManualClock

__all__ = ["ChuteTestClient", "FakeClock", "JobRun", "assert_run"]

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
"""Where a :class:`FakeClock` starts unless told otherwise: midnight UTC, 1 January 2025 (a Wednesday)."""

_FINISHED = frozenset({"completed", "failed", "cancelled"})


class FakeClock(ManualClock):
    """The job service's clock in tests: it stands still until :meth:`advance` moves it.

    Advancing wakes what waits on the clock in time order (each cron schedule fires for every time it
    passes, as a server left running that long would) and returns once the chute has taken the
    firings in. ``now`` is the fake time as an aware UTC datetime.
    """

    def __init__(self, start: datetime | float = DEFAULT_START) -> None:
        super().__init__(start)
        self._client: ChuteTestClient | None = None

    @property
    def now(self) -> datetime:
        """The fake time, UTC."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward, firing what falls due on the way; waits for the chute to react.

        The clock stops at each cron time on the way, so a schedule fires for every time it passes (a
        daily job fires twice in ``advance(2 * 86400)``), and each firing's run finishes before the next.
        """
        client = self._client
        if client is None or client.portal is None:
            super().advance(seconds)  # not serving: nothing to wake but direct sleepers
            return
        target = self.time() + seconds
        while True:
            due = client.next_firing(self.time())
            step = target if due is None or due > target else due
            waiting = client.portal.call(self._waiting)
            client.portal.call(self._move_to, step)
            client.settle(waiting)
            if step >= target:
                return

    async def _waiting(self) -> int:
        return self.sleepers

    async def _move_to(self, moment: float) -> None:
        # On the chute's event loop: sleepers' futures belong to it.
        ManualClock.advance(self, max(0.0, moment - self.time()))
        await asyncio.sleep(0)


@dataclass(frozen=True)
class JobRun:
    """A run as the ``/_jobs`` API shows it: ``status`` is queued, running, completed, failed or cancelled."""

    id: str
    name: str
    status: str
    attempts: int
    result: Any
    error: str | None
    data: dict[str, Any]
    """Everything the API answered (timestamps, trigger, scheduled_for, ...)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRun:
        """Build one from the API's JSON."""
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            status=str(data["status"]),
            attempts=int(data.get("attempts", 0)),
            result=data.get("result"),
            error=data.get("error"),
            data=data,
        )

    @property
    def finished(self) -> bool:
        """Whether the run is over (completed, failed or cancelled)."""
        return self.status in _FINISHED


_UNSET: Any = object()


def assert_run(
    run: JobRun,
    status: str | None = None,
    *,
    attempts: int | None = None,
    result: Any = _UNSET,
    error: str | re.Pattern[str] | None = None,
) -> JobRun:
    """Assert what a run came to; a failure message shows the whole run. Returns the run.

    Args:
        run: A run from :meth:`ChuteTestClient.run_job` or :meth:`ChuteTestClient.runs`.
        status: ``completed``, ``failed``, ``cancelled``, ``queued`` or ``running``.
        attempts: How many attempts it made.
        result: Its result (compared with ``==``).
        error: A substring of its error, or a compiled regular expression to search for.
    """
    problems = []
    if status is not None and run.status != status:
        problems.append(f"status is {run.status!r}, expected {status!r}")
    if attempts is not None and run.attempts != attempts:
        problems.append(f"attempts is {run.attempts}, expected {attempts}")
    if result is not _UNSET and run.result != result:
        problems.append(f"result is {run.result!r}, expected {result!r}")
    if error is not None:
        found = run.error or ""
        matched = error.search(found) if isinstance(error, re.Pattern) else error in found
        if not matched:
            problems.append(f"error is {run.error!r}, expected it to contain {getattr(error, 'pattern', error)!r}")
    if problems:
        raise AssertionError(f"run {run.id} of job {run.name!r}: " + "; ".join(problems) + f"\nrun: {run.data}")
    return run


class ChuteTestClient(TestClient):
    """``TestClient(chute)`` with jobs: :meth:`run_job`, :meth:`runs`, and a :class:`FakeClock` for cron.

    Args:
        chute: The chute under test.
        clock: The job service's clock (default: a new :class:`FakeClock` at :data:`DEFAULT_START`).
        data_dir: Where the job store lives (default: a temporary folder removed when the client closes).
        settings: Other ``CHUTES_*`` settings by field name (``job_workers=2``); they win over the
            environment. ``job_backoff`` defaults to 0, so retries happen at once.
        **kwargs: Passed to ``TestClient`` (``base_url``, ``headers``, ...).
    """

    def __init__(
        self,
        chute: Chute,
        *,
        clock: FakeClock | None = None,
        data_dir: str | None = None,
        settings: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(chute, **kwargs)
        self.chute = chute
        self.clock = clock if clock is not None else FakeClock()
        self.clock._client = self
        self._folder = tempfile.TemporaryDirectory(prefix="chutes-test-") if data_dir is None else None
        overrides: dict[str, Any] = {"job_backoff": 0.0, **(settings or {})}
        overrides["data_dir"] = data_dir if self._folder is None else self._folder.name
        runtime = chute._serving()
        runtime.clock = self.clock
        runtime.setting_overrides = overrides

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
        finally:
            if self._folder is not None:
                self._folder.cleanup()

    def submit_job(self, name: str, **job_input: Any) -> JobRun:
        """Submit a run of job ``name`` with ``job_input`` as its input; returns it as queued (``202``)."""
        response = self.post(f"/_jobs/{name}", json=job_input)
        if response.status_code != 202:
            raise AssertionError(f"submitting job {name!r} answered {response.status_code}: {response.text}")
        return JobRun.from_json(response.json())

    def run_job(self, name: str, timeout: float = 10.0, **job_input: Any) -> JobRun:
        """Submit a run of job ``name`` and wait (real time, at most ``timeout`` seconds) until it finishes."""
        return self.wait(self.submit_job(name, **job_input).id, timeout)

    def run(self, run_id: str) -> JobRun:
        """One run, as ``GET /_jobs/runs/{id}`` shows it."""
        response = self.get(f"/_jobs/runs/{run_id}")
        if response.status_code != 200:
            raise AssertionError(f"run {run_id!r}: {response.status_code} {response.text}")
        return JobRun.from_json(response.json())

    def runs(self, name: str | None = None, status: str | None = None) -> list[JobRun]:
        """Runs, newest first, optionally of one job or in one status."""
        params = {key: value for key, value in (("name", name), ("status", status)) if value is not None}
        response = self.get("/_jobs/runs", params=params)
        if response.status_code != 200:
            raise AssertionError(f"listing runs answered {response.status_code}: {response.text}")
        return [JobRun.from_json(item) for item in response.json()]

    def wait(self, run_id: str, timeout: float = 10.0) -> JobRun:
        """Wait until a run has finished; raises ``AssertionError`` with the run when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run.finished:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} of job {run.name!r} still {run.status} after {timeout}s: {run.data}"
                )
            time.sleep(0.005)

    def next_firing(self, after: float) -> float | None:
        """The first time after ``after`` (epoch seconds) at which one of the chute's schedules fires."""
        from chutes.jobs.scheduler import next_fire, time_zone

        runtime = self.chute._serving()
        zone = time_zone(runtime.settings.timezone)
        times = [next_fire(job.schedule, zone, after) for job in registry_of(self.chute).jobs.values() if job.schedule]
        return min(times, default=None)

    def settle(self, sleepers: int, timeout: float = 5.0) -> None:
        """Wait until ``sleepers`` tasks wait on the clock again and the runs it fired have finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.portal is not None and self.portal.call(self.clock._waiting) >= sleepers:
                break
            time.sleep(0.002)
        while time.monotonic() < deadline and any(not run.finished for run in self.runs()):
            time.sleep(0.005)
