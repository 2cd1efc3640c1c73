"""Firing jobs on their cron schedules: each scheduled time once across every process sharing the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from chutes.job import cron_fields
from chutes.jobs.runs import StoreUnavailableError

if TYPE_CHECKING:
    from chutes.job import Job
    from chutes.jobs.clock import Clock
    from chutes.jobs.runs import Run
    from chutes.jobs.store import RunStore

__all__ = ["Scheduler", "next_fire", "time_zone"]

_log = logging.getLogger("chutes.jobs")


def time_zone(name: str) -> ZoneInfo:
    """The time zone cron schedules are read in; raises ``ValueError`` for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (CHUTES_TIMEZONE): use an IANA name like 'UTC' or 'Europe/Paris'"
        ) from None


def next_fire(schedule: str, zone: ZoneInfo, timestamp: float) -> float:
    """The first time ``schedule`` fires strictly after ``timestamp`` (epoch seconds), read in ``zone``."""
    schedule = cron_fields(schedule)
    times = croniter(schedule, datetime.fromtimestamp(timestamp, zone))
    minute, hour = schedule.split()[:2]
    fixed_time = not minute.startswith("*") and not hour.startswith("*")
    while True:
        fire = float(times.get_next(datetime).timestamp())
        local = datetime.fromtimestamp(fire, zone)
        # As in cron: when the clocks go back, a fixed time of day fires in the first pass only; schedules
        # with a '*' minute or hour fire in both passes, since they mean "every ...".
        if not (fixed_time and local.fold and local.replace(fold=0).utcoffset() != local.utcoffset()):
            return fire


class Scheduler:
    """Waits for each scheduled job's next cron time and queues its run.

    Schedules start from the current time, so times missed while no server ran are not replayed. The
    store decides which process fires a time, and skips it while the job's last scheduled run is
    still queued or running.
    """

    def __init__(
        self, jobs: Iterable[Job], store: RunStore, clock: Clock, timezone: str,
        on_fire: Callable[[Run], None] | None = None,
    ) -> None:  # fmt: skip
        self.jobs = [job for job in jobs if job.schedule is not None]
        self.store = store
        self.clock = clock
        self.zone = time_zone(timezone)
        self._on_fire = on_fire
        self._next: dict[str, float] = {}

    def after(self, job: Job, timestamp: float) -> float:
        """The first scheduled time of ``job`` strictly after ``timestamp`` (epoch seconds)."""
        assert job.schedule is not None
        return next_fire(job.schedule, self.zone, timestamp)

    def latest(self, job: Job, timestamp: float) -> float:
        """The last scheduled time of ``job`` at or before ``timestamp``."""
        assert job.schedule is not None
        following = datetime.fromtimestamp(self.after(job, timestamp), self.zone)
        return float(croniter(cron_fields(job.schedule), following).get_prev(datetime).timestamp())

    def next_run(self, job: Job) -> float | None:
        """When ``job`` fires next: the time its loop waits for, else the next one from now."""
        if job.schedule is None:
            return None
        return self._next.get(job.name) or self.after(job, self.clock.time())

    async def run(self) -> None:
        """Fire every scheduled job until cancelled."""
        async with asyncio.TaskGroup() as group:
            for job in self.jobs:
                group.create_task(self._loop(job), name=f"chutes-job-schedule-{job.name}")

    async def _loop(self, job: Job) -> None:
        due = self.after(job, self.clock.time())
        while True:
            self._next[job.name] = due
            await self.clock.sleep(due - self.clock.time())
            now = self.clock.time()
            if now < due:  # woke a hair early
                continue
            following = self.after(job, due)
            if now >= following:
                # The loop fell behind (a stalled process): fire once, for the latest time due, not for each missed one.
                due = self.latest(job, now)
            try:
                run = await self.store.fire(job.name, int(due), job.max_attempts, now)
            except StoreUnavailableError as exc:
                _log.error("job %s: could not fire its schedule: %s", job.name, exc)
                run = None
            except Exception:
                # One failing loop would end every schedule of the task group, silently: log it and go on.
                _log.exception("job %s: error while firing its schedule", job.name)
                run = None
            if run is not None and self._on_fire is not None:
                self._on_fire(run)
            due = self.after(job, max(due, now))
