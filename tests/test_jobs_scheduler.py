"""Cron firing with a manual clock: on time, once across processes, no bursts, no overlap (on both stores)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.job import check_schedule
from chutes.jobs.clock import ManualClock
from chutes.jobs.scheduler import Scheduler, next_fire, time_zone
from chutes.jobs.store import Run, RunStore, open_store

chute = Chute(username="test", name="scheduler-test", image="python:3.11")


@chute.job(schedule="* * * * *")
async def every_minute(self: Chute) -> None:
    return None


@chute.job(schedule="0 2 * * *")
async def nightly(self: Chute) -> None:
    return None


@chute.job()
async def on_demand(self: Chute) -> None:
    return None


@pytest.fixture
def stores(tmp_path: Path, store_env: dict[str, str]) -> Iterator[Callable[[], RunStore]]:
    """Opens connections to one store (both backends in turn), as separate processes would."""
    opened: list[RunStore] = []

    def open_one() -> RunStore:
        opened.append(open_store(store_env.get("database_url"), tmp_path, "scheduler-test"))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def finish(store: RunStore, clock: ManualClock) -> None:
    """Complete the queued scheduled run, as a worker would."""
    run = store.backend.claim("worker", ["every_minute"], clock.time(), clock.time() + 30)
    assert run is not None
    assert run.token is not None
    store.backend.complete(run.id, run.token, "null", clock.time())


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_next_fire_reads_the_schedule_in_its_time_zone() -> None:
    start = ts("2024-01-15T10:30:00")
    assert next_fire("0 2 * * *", time_zone("UTC"), start) == ts("2024-01-16T02:00:00")
    assert next_fire("0 2 * * *", time_zone("Europe/Paris"), start) == ts("2024-01-16T01:00:00")
    assert next_fire("*/15 * * * *", time_zone("UTC"), ts("2024-01-15T10:30:00")) == ts("2024-01-15T10:45:00")


@pytest.mark.parametrize(
    ("macro", "fires"),
    [
        ("@yearly", "2025-01-01T00:00:00"),
        ("@annually", "2025-01-01T00:00:00"),
        ("@monthly", "2024-02-01T00:00:00"),
        ("@weekly", "2024-01-21T00:00:00"),
        ("@daily", "2024-01-16T00:00:00"),
        ("@midnight", "2024-01-16T00:00:00"),
        ("@hourly", "2024-01-15T11:00:00"),
    ],
)
def test_cron_macros_are_accepted_and_fire_when_they_say(macro: str, fires: str) -> None:
    assert check_schedule(macro) == macro
    assert next_fire(macro, time_zone("UTC"), ts("2024-01-15T10:30:00")) == ts(fires)


def test_an_unknown_macro_lists_the_known_ones() -> None:
    with pytest.raises(ChuteDefinitionError, match="'@fortnightly' is not a cron macro: use one of @yearly"):
        check_schedule("@fortnightly")


def test_an_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        time_zone("Mars/Olympus")


def test_only_scheduled_jobs_are_watched_and_next_run_is_reported(stores: Callable[[], RunStore]) -> None:
    clock = ManualClock(ts("2024-01-15T10:30:20"))
    scheduler = Scheduler(chute.jobs.values(), stores(), clock, "UTC")
    assert [job.name for job in scheduler.jobs] == ["every_minute", "nightly"]
    assert scheduler.next_run(chute.jobs["every_minute"]) == ts("2024-01-15T10:31:00")
    assert scheduler.next_run(chute.jobs["on_demand"]) is None


async def _settle(clock: ManualClock, loops: int = 1) -> None:
    """Wait until every schedule loop is asleep on the clock again (its firing, in the store's thread, done)."""
    deadline = time.monotonic() + 5
    await asyncio.sleep(0)
    while clock.sleepers < loops:
        assert time.monotonic() < deadline, "the scheduler did not settle"
        await asyncio.sleep(0.001)


def test_fires_each_time_once_across_two_processes_and_skips_missed_times(stores: Callable[[], RunStore]) -> None:
    async def scenario() -> list[Run]:
        clock = ManualClock(ts("2024-01-15T10:30:20"))
        fired: list[Run] = []
        # Two schedulers on two connections to one file: two server processes sharing a store.
        schedulers = [
            Scheduler([chute.jobs["every_minute"]], stores(), clock, "UTC", on_fire=fired.append) for _ in range(2)
        ]
        store = stores()
        tasks = [asyncio.create_task(scheduler.run()) for scheduler in schedulers]
        await _settle(clock, 2)
        clock.advance(39.0)  # 10:30:59: not yet
        await _settle(clock, 2)
        assert fired == []
        clock.advance(1.0)  # 10:31:00
        await _settle(clock, 2)
        assert len(fired) == 1
        # The run is done before the next minute, so the next time fires too.
        finish(store, clock)
        clock.advance(60.0)  # 10:32:00
        await _settle(clock, 2)
        assert len(fired) == 2
        finish(store, clock)
        # The process stalls for 10 minutes: it fires once on waking, not ten times.
        clock.advance(600.0)
        await _settle(clock, 2)
        assert len(fired) == 3
        assert schedulers[0].next_run(chute.jobs["every_minute"]) == ts("2024-01-15T10:43:00")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return fired

    fired = asyncio.run(scenario())
    assert [run.scheduled_for for run in fired] == [
        ts("2024-01-15T10:31:00"),
        ts("2024-01-15T10:32:00"),
        ts("2024-01-15T10:42:00"),
    ]
    assert all(run.trigger == "schedule" and run.input == {} for run in fired)


def test_a_scheduled_run_still_going_is_not_overlapped(stores: Callable[[], RunStore]) -> None:
    async def scenario() -> list[Run]:
        clock = ManualClock(ts("2024-01-15T10:30:30"))
        fired: list[Run] = []
        store = stores()
        scheduler = Scheduler([chute.jobs["every_minute"]], store, clock, "UTC", on_fire=fired.append)
        task = asyncio.create_task(scheduler.run())
        await _settle(clock)
        clock.advance(30.0)
        await _settle(clock)
        store.backend.claim("worker", ["every_minute"], clock.time(), clock.time() + 300)  # still running later
        clock.advance(60.0)
        await _settle(clock)
        clock.advance(60.0)
        await _settle(clock)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return fired

    fired = asyncio.run(scenario())
    assert [run.scheduled_for for run in fired] == [ts("2024-01-15T10:31:00")]


def test_schedules_start_from_now_without_replaying_the_past(stores: Callable[[], RunStore]) -> None:
    async def scenario() -> list[Run]:
        clock = ManualClock(ts("2024-01-15T10:30:30"))
        fired: list[Run] = []
        store = stores()
        await store.fire("nightly", int(ts("2024-01-14T02:00:00")), 4, ts("2024-01-14T02:00:00"))  # an old firing
        scheduler = Scheduler([chute.jobs["nightly"]], store, clock, "UTC", on_fire=fired.append)
        task = asyncio.create_task(scheduler.run())
        await _settle(clock)
        assert fired == []
        assert scheduler.next_run(chute.jobs["nightly"]) == ts("2024-01-16T02:00:00")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return fired

    assert asyncio.run(scenario()) == []


def _fires(schedule: str, zone: str, start: str, count: int) -> list[str]:
    timestamp, times = datetime.fromisoformat(start).timestamp(), []
    for _ in range(count):
        timestamp = next_fire(schedule, time_zone(zone), timestamp)
        times.append(datetime.fromtimestamp(timestamp, time_zone(zone)).isoformat())
    return times


def test_a_fixed_time_fires_once_when_the_clocks_go_back() -> None:
    # 2024-10-27 in Paris: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
    assert _fires("30 2 * * *", "Europe/Paris", "2024-10-26T12:00:00+02:00", 3) == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
        "2024-10-29T02:30:00+01:00",
    ]
    # A schedule repeating within the hour keeps firing through the repeated hour, as cron does.
    assert _fires("0 * * * *", "Europe/Paris", "2024-10-27T01:30:00+02:00", 3) == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]


def test_a_fixed_time_skipped_when_the_clocks_go_forward_fires_once_after_the_change() -> None:
    # 2024-03-31 in Paris: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that night.
    assert _fires("30 2 * * *", "Europe/Paris", "2024-03-30T12:00:00+01:00", 2) == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]


def test_a_failing_firing_is_logged_and_the_schedules_go_on(
    stores: Callable[[], RunStore], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> list[Run]:
        clock = ManualClock(ts("2024-01-15T10:30:30"))
        fired: list[Run] = []
        store = stores()
        fire = store.fire
        failures = iter([RuntimeError("firing bug")])

        async def flaky_fire(*args: Any) -> Run | None:
            for failure in failures:
                raise failure
            return await fire(*args)

        monkeypatch.setattr(store, "fire", flaky_fire)
        scheduler = Scheduler([chute.jobs["every_minute"]], store, clock, "UTC", on_fire=fired.append)
        task = asyncio.create_task(scheduler.run())
        await _settle(clock)
        clock.advance(30.0)  # 10:31: the firing fails
        await _settle(clock)
        clock.advance(60.0)  # 10:32: fires
        await _settle(clock)
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return fired

    fired = asyncio.run(scenario())
    assert [run.scheduled_for for run in fired] == [ts("2024-01-15T10:32:00")]
    assert "firing bug" in caplog.text


def test_a_schedule_that_never_fires_is_refused_at_definition() -> None:
    with pytest.raises(ChuteDefinitionError, match=r"schedule '0 0 30 2 \*' never fires \(no such date\)"):
        check_schedule("0 0 30 2 *")
    assert check_schedule("0 0 29 2 *") == "0 0 29 2 *"  # leap days exist
