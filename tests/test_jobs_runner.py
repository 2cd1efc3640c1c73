"""Executing attempts: rescheduled retries with capped jittered backoff, timeouts, cancellation, orphans, files.

Each test runs against both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict

from chutes.chute import Chute
from chutes.jobs.clock import ManualClock
from chutes.jobs.metrics import JobMetrics
from chutes.jobs.runner import Runner, backoff_delay, is_orphan, new_owner
from chutes.jobs.store import Run, RunStore, open_store

chute = Chute(username="test", name="runner-test", image="python:3.11")
calls: dict[str, int] = {}


class Point(BaseModel):
    x: int
    y: int


@chute.job()
async def add(self: Chute, a: int, b: int = 1) -> Point:
    return Point(x=a + b, y=0)


@chute.job(retry_count=3)
async def flaky(self: Chute, fail_times: int) -> str:
    calls["flaky"] = calls.get("flaky", 0) + 1
    if calls["flaky"] <= fail_times:
        raise RuntimeError(f"failure {calls['flaky']}")
    return "finally"


@chute.job(retry_count=1, timeout=0.02)
async def sleepy(self: Chute) -> None:
    await asyncio.sleep(30)


@chute.job(retry_count=0, timeout=0.02)
def sync_sleepy(self: Chute) -> None:
    time.sleep(0.2)  # the abandoned thread ends on its own shortly after


@chute.job(retry_count=2)
async def own_timeout(self: Chute) -> None:
    raise TimeoutError("the upstream API timed out")


@chute.job(retry_count=2)
async def blocked(self: Chute) -> None:
    await asyncio.sleep(30)


@chute.job(retry_count=2)
async def opaque(self: Chute, kind: str) -> Any:
    return {"object": object(), "nan": float("nan")}[kind]


@chute.job(retry_count=1)
async def exits(self: Chute) -> None:
    raise SystemExit(3)


@chute.job(retry_count=0)
def interrupts(self: Chute) -> None:
    raise KeyboardInterrupt


@chute.job(retry_count=0)
async def self_cancelled(self: Chute) -> None:
    raise asyncio.CancelledError("upstream gave up")


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)
    when: datetime


@chute.job(retry_count=0)
async def strict(self: Chute, value: Strict) -> str:
    return value.when.isoformat()


@pytest.fixture
def store(tmp_path: Path, store_env: dict[str, str]) -> Iterator[RunStore]:
    store = open_store(store_env.get("database_url"), tmp_path, "runner-test")
    yield store
    store.close()


def make_runner(store: RunStore, clock: ManualClock, backoff: float = 1.0, backoff_max: float = 300.0) -> Runner:
    outputs = Path(tempfile.mkdtemp(prefix="outputs-"))
    return Runner(chute, store, clock, JobMetrics(CollectorRegistry()), backoff, backoff_max=backoff_max,
                  outputs_dir=outputs)  # fmt: skip


waits: list[float] = []  # the backoff each retry waited, in the last ``execute``


def execute(store: RunStore, runner: Runner, clock: ManualClock, name: str, data: str = "{}") -> Run:
    """Act as a worker: claim the run, execute each attempt, and jump the clock over each retry's backoff."""
    waits.clear()

    async def scenario() -> Run:
        submitted = await store.submit(name, data, chute.jobs[name].max_attempts, "api", clock.time())
        while True:
            run = await store.claim(runner.owner, [name], clock.time(), runner.lease_until())
            assert run is not None
            assert run.id == submitted.id
            await runner.execute(run)
            current = await store.get(run.id)
            assert current is not None
            if current.status != "queued":
                return current
            waits.append(current.available_at - clock.time())
            clock.advance(current.available_at - clock.time())

    return asyncio.run(scenario())


def test_a_run_completes_with_its_result_as_json(store: RunStore) -> None:
    clock = ManualClock(1000.0)
    run = execute(store, make_runner(store, clock), clock, "add", '{"a": 2}')
    assert (run.status, run.attempts, run.result, run.error) == ("completed", 1, {"x": 3, "y": 0}, None)
    assert run.finished_at == 1000.0


def test_retries_are_rescheduled_with_exponential_jittered_backoff_then_succeed(store: RunStore) -> None:
    calls.clear()
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff=1.5), clock, "flaky", '{"fail_times": 3}')
    assert (run.status, run.attempts, run.result) == ("completed", 4, "finally")
    assert len(waits) == 3
    for wait, full in zip(waits, [1.5, 3.0, 6.0], strict=True):
        assert full / 2 <= wait <= full
    assert run.finished_at == pytest.approx(sum(waits))
    assert run.error is None  # a completed run carries no error
    assert clock.slept == []  # nothing slept: the run waited in the queue


def test_a_run_fails_once_its_attempts_are_spent_and_backoff_is_capped(store: RunStore) -> None:
    calls.clear()
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff_max=1.5), clock, "flaky", '{"fail_times": 10}')
    assert (run.status, run.attempts, run.error) == ("failed", 4, "RuntimeError: failure 4")
    assert 0.5 <= waits[0] <= 1.0
    assert all(0.75 <= wait <= 1.5 for wait in waits[1:])


def test_backoff_delay_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(7)
    delays = [backoff_delay(attempt, 2.0, 10.0, rng) for attempt in (1, 2, 3, 4, 50, 5000)]
    for delay, full in zip(delays, [2.0, 4.0, 8.0, 10.0, 10.0, 10.0], strict=True):
        assert full / 2 <= delay <= full
    assert len({round(d, 6) for d in delays[3:]}) == 3  # jittered: capped delays still differ
    assert backoff_delay(3, 0.0, 10.0) == 0.0


def test_each_attempt_is_bounded_by_the_timeout(store: RunStore) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff=0.0), clock, "sleepy")
    assert (run.status, run.attempts) == ("failed", 2)
    assert run.error == "attempt 2 of 2 timed out after 0.02 s"


def test_a_sync_job_that_times_out_is_abandoned(store: RunStore) -> None:
    clock = ManualClock(0.0)
    started = time.monotonic()
    run = execute(store, make_runner(store, clock), clock, "sync_sleepy")
    assert time.monotonic() - started < 0.15
    assert (run.status, run.error) == ("failed", "attempt 1 of 1 timed out after 0.02 s")


def test_a_timeout_error_raised_by_the_job_is_an_ordinary_failure(store: RunStore) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff=0.0), clock, "own_timeout")
    assert (run.status, run.attempts, run.error) == ("failed", 3, "TimeoutError: the upstream API timed out")


def test_invalid_stored_input_fails_without_retrying(store: RunStore) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock), clock, "add", '{"a": "not a number"}')
    assert (run.status, run.attempts) == ("failed", 1)
    assert run.error is not None
    assert run.error.startswith("invalid input: ")


def test_metrics_count_finished_runs(store: RunStore) -> None:
    clock = ManualClock(50.0)
    registry = CollectorRegistry()
    runner = Runner(chute, store, clock, JobMetrics(registry), 0.0)
    execute(store, runner, clock, "add", '{"a": 1}')
    assert registry.get_sample_value("chutes_job_runs_total", {"job": "add", "status": "completed"}) == 1
    assert registry.get_sample_value("chutes_job_run_duration_seconds_count", {"job": "add"}) == 1
    assert registry.get_sample_value("chutes_job_last_success_timestamp_seconds", {"job": "add"}) == 50.0


async def _start_blocked(store: RunStore, runner: Runner, clock: ManualClock) -> tuple[Run, asyncio.Task[None]]:
    await store.submit("blocked", "{}", 3, "api", clock.time())
    run = await store.claim(runner.owner, ["blocked"], clock.time(), runner.lease_until())
    assert run is not None
    task = asyncio.create_task(runner.execute(run))
    await asyncio.sleep(0.01)
    assert run.id in runner.running
    return run, task


def test_cancel_by_request_stops_the_run(store: RunStore) -> None:
    async def scenario() -> None:
        clock = ManualClock(0.0)
        runner = make_runner(store, clock)
        run, task = await _start_blocked(store, runner, clock)
        await store.cancel(run.id, 1.0)
        assert runner.cancel(run.id, "cancel") is not None
        await asyncio.wait_for(task, 1)
        assert runner.running == {}
        assert (await store.get(run.id)).status == "cancelled"  # type: ignore[union-attr]
        assert runner.cancel(run.id, "cancel") is None

    asyncio.run(scenario())


def test_a_run_cancelled_by_another_process_stops_at_the_next_lease_renewal(store: RunStore) -> None:
    async def scenario() -> None:
        clock = ManualClock(0.0)
        runner = make_runner(store, clock)
        runner.start_leases()
        assert runner.keeper is not None
        run, task = await _start_blocked(store, runner, clock)
        clock.advance(5.0)
        await asyncio.to_thread(runner.keeper.renew_now)  # the lease thread's work, done now
        await asyncio.sleep(0.01)
        assert not task.done()
        assert (await store.get(run.id)).lease_until == 5.0 + runner.lease  # type: ignore[union-attr]
        await store.cancel(run.id, 6.0)  # as another process would, through its API
        await asyncio.to_thread(runner.keeper.renew_now)
        await asyncio.wait_for(task, 1)
        assert (await store.get(run.id)).status == "cancelled"  # type: ignore[union-attr]
        runner.close()

    asyncio.run(scenario())


def test_shutdown_puts_the_run_back_without_counting_the_attempt(store: RunStore) -> None:
    async def scenario() -> None:
        clock = ManualClock(0.0)
        runner = make_runner(store, clock)
        run, task = await _start_blocked(store, runner, clock)
        runner.cancel(run.id, "shutdown")
        await asyncio.wait_for(task, 1)
        stored = await store.get(run.id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.owner) == ("queued", 0, None)

    asyncio.run(scenario())


def test_orphans_are_runs_whose_process_is_gone() -> None:
    store_owner = new_owner()
    host, pid, _ = store_owner.split(":")
    assert int(pid) == os.getpid()
    assert is_orphan(None, None, 0.0)
    assert is_orphan(f"{host}:{pid}:gone", 100.0, 0.0)  # this process, but no runner of that name lives here
    assert not is_orphan("elsewhere:1:abc", 100.0, 0.0)  # another host: trusted until its lease expires
    assert is_orphan("elsewhere:1:abc", 100.0, 101.0)
    assert not is_orphan(f"{host}:{os.getppid()}:abc", 100.0, 0.0)  # a live sibling process
    dead = _dead_pid()
    assert is_orphan(f"{host}:{dead}:abc", 100.0, 0.0)


def test_a_live_runner_never_loses_its_runs(store: RunStore) -> None:
    clock = ManualClock(0.0)
    runner = make_runner(store, clock)
    assert not is_orphan(runner.owner, 0.0, 1e9)  # even with its lease long expired (a manual clock jump)
    runner.close()
    assert is_orphan(runner.owner, 0.0, 1e9)


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_recover_requeues_a_dead_process_run(store: RunStore) -> None:
    clock = ManualClock(0.0)
    runner = make_runner(store, clock)
    run = store.backend.submit("add", '{"a": 1}', 4, "api", 0.0)
    host = runner.owner.split(":")[0]
    store.backend.claim(f"{host}:{_dead_pid()}:x", ["add"], 0.0, 30.0)
    changed = asyncio.run(runner.recover())  # at once: the lease (until 30.0) has not expired
    assert [(r.id, r.status, r.attempts) for r in changed] == [(run.id, "queued", 1)]


def test_sync_jobs_run_off_the_event_loop(store: RunStore) -> None:
    seen: list[int | None] = []
    local = Chute(username="test", name="thread-test", image="python:3.11")

    @local.job()
    def where(self: Chute) -> None:
        seen.append(threading.get_ident())

    clock = ManualClock(0.0)
    runner = Runner(local, store, clock, None, 0.0)

    async def scenario() -> None:
        await store.submit("where", "{}", 1, "api", 0.0)
        run = await store.claim(runner.owner, ["where"], 0.0, 30.0)
        assert run is not None
        await runner.execute(run)

    asyncio.run(scenario())
    assert seen
    assert seen[0] != threading.get_ident()


@pytest.mark.parametrize(("kind", "detail"), [("object", "Unable to serialize unknown type"), ("nan", "Out of range")])
def test_a_result_that_is_not_json_fails_the_run_without_retrying(store: RunStore, kind: str, detail: str) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock), clock, "opaque", f'{{"kind": "{kind}"}}')
    assert (run.status, run.attempts, run.result_json) == ("failed", 1, None)
    assert run.error is not None
    assert run.error.startswith("job opaque returned a value that is not JSON-serializable: ")
    assert detail in run.error


@pytest.mark.parametrize(("name", "error"), [("exits", "SystemExit: 3"), ("interrupts", "KeyboardInterrupt: ")])
def test_system_exit_or_keyboard_interrupt_in_a_job_only_fails_the_attempt(
    store: RunStore, name: str, error: str
) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff=0.0), clock, name)
    assert (run.status, run.attempts, run.error) == ("failed", chute.jobs[name].max_attempts, error)


def test_stored_input_is_bound_as_json_like_at_submit_time(store: RunStore) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock), clock, "strict", '{"when": "2024-01-01T00:00:00Z"}')
    assert (run.status, run.result) == ("completed", "2024-01-01T00:00:00+00:00")


def test_an_unexpected_error_fails_the_run_instead_of_leaving_it_running(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_complete(*args: Any) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "complete", broken_complete)
    clock = ManualClock(0.0)
    runner = make_runner(store, clock)
    run = execute(store, runner, clock, "add", '{"a": 1}')
    assert (run.status, run.owner, run.error) == ("failed", None, "internal error: RuntimeError: boom")
    assert runner.running == {}


def test_a_cancelled_error_raised_by_the_job_itself_is_an_ordinary_failure(store: RunStore) -> None:
    clock = ManualClock(0.0)
    run = execute(store, make_runner(store, clock, backoff=0.0), clock, "self_cancelled")
    assert (run.status, run.attempts, run.error) == ("failed", 1, "CancelledError: upstream gave up")


@chute.job(retry_count=2)
async def gated(self: Chute) -> str:
    await gates["stale"].wait()
    return "stale"


gates: dict[str, asyncio.Event] = {}


def test_a_stale_attempt_s_result_is_discarded_and_logged(store: RunStore, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        gates["stale"] = asyncio.Event()
        clock = ManualClock(0.0)
        runner = make_runner(store, clock)
        await store.submit("gated", "{}", 3, "api", 0.0)
        run = await store.claim(runner.owner, ["gated"], 0.0, runner.lease_until())
        assert run is not None
        task = asyncio.create_task(runner.execute(run))
        await asyncio.sleep(0.01)
        # Another process decides this attempt is lost and runs the run itself.
        await store.recover(100.0, lambda owner, lease_until: True)
        taken = await store.claim("elsewhere", ["gated"], 100.0, 130.0)
        assert taken is not None
        assert taken.token is not None
        gates["stale"].set()  # the stale attempt ends and tries to record its result
        await asyncio.wait_for(task, 5)
        current = await store.get(run.id)
        assert current is not None
        assert (current.status, current.owner, current.result) == ("running", "elsewhere", None)
        assert await store.complete(run.id, taken.token, '"live"', 101.0)
        assert (await store.get(run.id)).result == "live"  # type: ignore[union-attr]

    asyncio.run(scenario())
    assert "after its run was cancelled or taken over; its outcome is discarded" in caplog.text
