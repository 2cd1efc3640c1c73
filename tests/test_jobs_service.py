"""The job service: workers, graceful shutdown, recovery after a crash, the scheduler and foreground runs.

Each test runs against both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from chutes.chute import Chute
from chutes.jobs.clock import ManualClock
from chutes.jobs.runner import new_owner
from chutes.jobs.service import HEARTBEAT_SECONDS, JobService, UnknownJobError
from chutes.jobs.store import Backend, Run, open_backend
from chutes.settings import Settings

chute = Chute(username="test", name="service-test", image="python:3.11")
gates: dict[str, asyncio.Event] = {}
T0 = 1_705_314_630.0  # 2024-01-15T10:30:30Z


@chute.job()
async def echo(self: Chute, value: Any = None) -> Any:
    return value


@chute.job(retry_count=1)
async def gated(self: Chute, gate: str) -> str:
    await gates[gate].wait()
    return gate


@chute.job(retry_count=0)
async def broken(self: Chute) -> None:
    raise ValueError("nope")


@chute.job(retry_count=0)
async def quits(self: Chute) -> None:
    raise SystemExit(1)


calls: dict[str, int] = {}


@chute.job(retry_count=1)
async def flaky(self: Chute) -> str:
    calls["flaky"] = calls.get("flaky", 0) + 1
    if calls["flaky"] == 1:
        raise RuntimeError("first attempt fails")
    return "second attempt"


@chute.job(schedule="* * * * *")
async def ticker(self: Chute) -> str:
    return "tick"


@pytest.fixture(autouse=True)
def _store(store_env: dict[str, str]) -> Iterator[None]:
    """Every test of this module runs once per store: ``make`` and ``backend`` pick up the current one."""
    ENV.clear()
    ENV.update(store_env)
    yield
    for opened in OPENED:
        opened.close()
    OPENED.clear()


ENV: dict[str, str] = {}
OPENED: list[Backend] = []


def make(tmp_path: Path, clock: ManualClock | None = None, target: Chute = chute, **overrides: Any) -> JobService:
    values: dict[str, Any] = {"data_dir": tmp_path, "job_backoff": 0.0, "shutdown_grace": 0.05} | ENV | overrides
    return JobService(target, Settings(**values), CollectorRegistry(), clock or ManualClock(T0))


def backend(tmp_path: Path) -> Backend:
    """A connection to the service's store of its own, as another process (or the CLI) would have."""
    opened = open_backend(ENV.get("database_url"), tmp_path, "service-test")
    OPENED.append(opened)
    return opened


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)
    return value


def status(service: JobService, run_id: str) -> str | None:
    assert service.store is not None
    run = service.store.backend.get(run_id)
    return None if run is None else run.status


def test_a_chute_without_jobs_creates_no_files(tmp_path: Path) -> None:
    empty = Chute(username="test", name="no-jobs", image="python:3.11")
    service = make(tmp_path / "data", target=empty)

    async def scenario() -> None:
        await service.start()
        assert service.definitions() == []
        await service.stop()

    asyncio.run(scenario())
    assert not (tmp_path / "data").exists()


def test_submitted_runs_complete(tmp_path: Path) -> None:
    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        run = await service.submit("echo", b'{"value": [1, 2]}')
        assert (run.status, run.trigger, run.input) == ("queued", "api", {"value": [1, 2]})
        await eventually(lambda: status(service, run.id) == "completed")
        assert service.store is not None
        assert (await service.store.get(run.id)).result == [1, 2]  # type: ignore[union-attr]
        with pytest.raises(UnknownJobError):
            await service.submit("missing", b"{}")
        await service.stop()

    asyncio.run(scenario())


def test_job_workers_run_several_runs_at_once(tmp_path: Path) -> None:
    service = make(tmp_path, job_workers=2)

    async def scenario() -> None:
        gates["a"], gates["b"] = asyncio.Event(), asyncio.Event()
        await service.start()
        runs = [await service.submit("gated", b'{"gate": "a"}'), await service.submit("gated", b'{"gate": "b"}')]
        await eventually(lambda: all(status(service, run.id) == "running" for run in runs))
        gates["a"].set()
        gates["b"].set()
        await eventually(lambda: all(status(service, run.id) == "completed" for run in runs))
        await service.stop()

    asyncio.run(scenario())


def test_a_worker_takes_its_next_run_while_the_last_outcome_is_recorded(tmp_path: Path) -> None:
    service = make(tmp_path, job_workers=1, shutdown_grace=5.0)

    async def scenario() -> tuple[str | None, str | None]:
        await service.start()
        store = service.store
        assert store is not None
        complete, recording, release = store.complete, asyncio.Event(), asyncio.Event()

        async def slow(*args: Any) -> bool:
            recording.set()
            await release.wait()  # the store is slow to record the first outcome
            return await complete(*args)

        store.complete = slow  # type: ignore[method-assign]
        first = await service.submit("echo", b'{"value": 1}')
        await asyncio.wait_for(recording.wait(), 5)
        store.complete = complete  # type: ignore[method-assign]
        gates["next"] = asyncio.Event()
        second = await service.submit("gated", b'{"gate": "next"}')
        # The only worker runs the second run while the first one's outcome is still on its way.
        await eventually(lambda: status(service, second.id) == "running")
        assert status(service, first.id) == "running"
        gates["next"].set()
        asyncio.get_running_loop().call_later(0.05, release.set)
        await service.stop()  # waits for the outcomes being recorded (within the grace period)
        check = backend(tmp_path)
        return check.get(first.id).status, check.get(second.id).status  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == ("completed", "completed")


def test_stop_waits_for_runs_that_finish_within_the_grace_period(tmp_path: Path) -> None:
    service = make(tmp_path, shutdown_grace=5.0)

    async def scenario() -> str | None:
        gates["soon"] = asyncio.Event()
        await service.start()
        run = await service.submit("gated", b'{"gate": "soon"}')
        await eventually(lambda: status(service, run.id) == "running")
        asyncio.get_running_loop().call_later(0.02, gates["soon"].set)
        store = service.store
        await service.stop()
        assert store is not None
        return backend(tmp_path).get(run.id).status  # type: ignore[union-attr]

    assert asyncio.run(scenario()) == "completed"


def test_stop_requeues_runs_past_the_grace_period_and_the_next_start_runs_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        gates["never"] = asyncio.Event()
        first = make(tmp_path, shutdown_grace=0.02)
        await first.start()
        running = await first.submit("gated", b'{"gate": "never"}')
        waiting = await first.submit("echo", b'{"value": 1}')
        await eventually(lambda: status(first, running.id) == "running")
        await first.stop()
        store = backend(tmp_path)
        interrupted = store.get(running.id)
        assert interrupted is not None
        assert (interrupted.status, interrupted.attempts, interrupted.owner) == ("queued", 0, None)
        assert store.get(waiting.id).status in ("queued", "completed")  # type: ignore[union-attr]

        gates["never"].set()
        second = make(tmp_path)
        await second.start()
        await eventually(lambda: status(second, running.id) == "completed")
        await eventually(lambda: status(second, waiting.id) == "completed")
        assert store.get(running.id).attempts == 1  # type: ignore[union-attr]
        await second.stop()

    asyncio.run(scenario())


def _dead_owner() -> str:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    host, _, token = new_owner().split(":")
    return f"{host}:{process.pid}:{token}"


def test_start_takes_up_runs_of_a_crashed_process(tmp_path: Path) -> None:
    store = backend(tmp_path)
    retry = store.submit("echo", '{"value": "again"}', 4, "api", T0)
    spent = store.submit("broken", "{}", 1, "api", T0)
    dead = _dead_owner()
    store.claim(dead, ["echo"], T0, T0 + 30)
    store.claim(dead, ["broken"], T0, T0 + 30)
    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        await eventually(lambda: status(service, retry.id) == "completed")
        await service.stop()

    asyncio.run(scenario())
    done = store.get(retry.id)
    assert done is not None
    assert (done.attempts, done.result) == (2, "again")
    failed = store.get(spent.id)
    assert failed is not None
    assert failed.status == "failed"
    assert "no attempts left" in (failed.error or "")


def test_the_scheduler_fires_runs_with_empty_input(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    service = make(tmp_path, clock)

    async def scenario() -> list[Run]:
        await service.start()
        assert service.next_run(chute.jobs["ticker"]) == T0 + 30
        assert service.definitions()[-1]["next_run"] == "2024-01-15T10:31:00Z"
        await eventually(lambda: clock.sleepers == 2)  # the heartbeat and the schedule wait on the clock
        clock.advance(30)
        assert service.store is not None
        store = service.store
        runs = await eventually(lambda: [run for run in store.backend.runs(name="ticker") if run.status == "completed"])
        await service.stop()
        return runs

    [run] = asyncio.run(scenario())
    assert (run.trigger, run.input, run.result, run.scheduled_for) == ("schedule", {}, "tick", T0 + 30)


def test_the_scheduler_can_be_switched_off(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    service = make(tmp_path, clock, scheduler=False)

    async def scenario() -> list[Run]:
        await service.start()
        assert service.next_run(chute.jobs["ticker"]) == T0 + 30  # still reported, for CronJobs
        await eventually(lambda: clock.sleepers == 1)  # the heartbeat only
        clock.advance(120)
        await asyncio.sleep(0.02)
        assert service.store is not None
        runs = await service.store.runs()
        await service.stop()
        return runs

    assert asyncio.run(scenario()) == []


def test_cancel_a_running_run_and_count_it(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    settings = Settings(data_dir=tmp_path, job_backoff=0.0, shutdown_grace=0.01, **ENV)
    service = JobService(chute, settings, registry, ManualClock(T0))

    async def scenario() -> None:
        gates["cancel"] = asyncio.Event()
        await service.start()
        run = await service.submit("gated", b'{"gate": "cancel"}')
        await eventually(lambda: status(service, run.id) == "running")
        assert (await service.cancel(run.id)).status == "cancelled"
        assert service.runner is not None
        await eventually(lambda: not service.runner.running)  # type: ignore[union-attr]
        assert status(service, run.id) == "cancelled"
        assert registry.get_sample_value("chutes_job_runs_total", {"job": "gated", "status": "cancelled"}) == 1
        await service.stop()

    asyncio.run(scenario())


def test_a_run_cancelled_before_its_claim_reaches_a_worker_never_starts(tmp_path: Path) -> None:
    # The store records a claim before the worker it is for has the run: a cancel in between finds no
    # attempt to stop, and the worker must then not start one.
    service = make(tmp_path)

    async def scenario() -> str | None:
        gates["early"] = asyncio.Event()  # never set: an attempt that started would never end
        store, runner = await service._open()  # the store and runner, without workers that would claim first
        run = await service.submit("gated", b'{"gate": "early"}')
        claimed = await store.claim(runner.owner, ["gated"], service.clock.time(), runner.lease_until())
        assert claimed is not None
        assert claimed.id == run.id
        assert (await service.cancel(run.id)).status == "cancelled"
        await asyncio.wait_for(runner.execute(claimed), 5)
        assert not runner.running
        final = status(service, run.id)
        await service.stop()
        return final

    assert asyncio.run(scenario()) == "cancelled"


def test_the_lease_thread_stops_runs_cancelled_by_another_process(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    service = make(tmp_path, clock, job_lease=0.3)  # renewed every 0.1 s

    async def scenario() -> None:
        gates["remote"] = asyncio.Event()
        await service.start()
        run = await service.submit("gated", b'{"gate": "remote"}')
        await eventually(lambda: status(service, run.id) == "running")
        backend(tmp_path).cancel(run.id, T0)  # another process's API
        assert service.runner is not None
        await eventually(lambda: not service.runner.running)  # type: ignore[union-attr]
        await service.stop()

    asyncio.run(scenario())


def test_queued_runs_are_reported_in_the_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    settings = Settings(data_dir=tmp_path, job_backoff=0.0, shutdown_grace=0.01, **ENV)
    service = JobService(chute, settings, registry, ManualClock(T0))

    async def scenario() -> None:
        gates["hold"] = asyncio.Event()
        await service.start()
        first = await service.submit("gated", b'{"gate": "hold"}')
        await eventually(lambda: status(service, first.id) == "running")
        await service.submit("echo", b"{}")
        await service.submit("echo", b"{}")
        await service.beat()  # the heartbeat counts them
        assert registry.get_sample_value("chutes_job_runs_queued", {"job": "echo"}) == 2
        assert registry.get_sample_value("chutes_job_runs_queued", {"job": "ticker"}) == 0
        gates["hold"].set()
        await service.stop()

    asyncio.run(scenario())


def test_run_once_runs_in_the_foreground_and_records_the_run(tmp_path: Path) -> None:
    async def scenario() -> tuple[Run, Run]:
        ok = await make(tmp_path).run_once("echo", b'{"value": {"k": 1}}')
        failed = await make(tmp_path).run_once("broken", b"")
        return ok, failed

    ok, failed = asyncio.run(scenario())
    assert (ok.status, ok.trigger, ok.result, ok.attempts) == ("completed", "cli", {"k": 1}, 1)
    assert (failed.status, failed.error) == ("failed", "ValueError: nope")
    assert backend(tmp_path).get(ok.id) == ok


def test_a_bad_time_zone_fails_the_start(tmp_path: Path) -> None:
    service = make(tmp_path, timezone="Nowhere/Land")
    with pytest.raises(ValueError, match="unknown time zone"):
        asyncio.run(service.start())


def test_runs_of_a_job_no_longer_defined_fail_at_start(tmp_path: Path) -> None:
    store = backend(tmp_path)
    queued = store.submit("retired", "{}", 4, "api", T0)
    left_running = store.submit("retired", "{}", 4, "api", T0)
    store.claim(_dead_owner(), ["retired"], T0, T0 + 30)
    kept = store.submit("echo", '{"value": 1}', 4, "api", T0)
    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        await eventually(lambda: status(service, kept.id) == "completed")
        await service.stop()

    asyncio.run(scenario())
    for run_id in (queued.id, left_running.id):
        run = store.get(run_id)
        assert run is not None
        assert (run.status, run.error) == ("failed", "job 'retired' is no longer defined in chute service-test")
        assert run.finished_at == T0


def test_a_job_raising_system_exit_fails_its_run_and_the_workers_go_on(tmp_path: Path) -> None:
    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        quitting = await service.submit("quits", b"")
        after = await service.submit("echo", b'{"value": "still here"}')
        await eventually(lambda: status(service, after.id) == "completed")
        assert service.store is not None
        assert (await service.store.get(quitting.id)).error == "SystemExit: 1"  # type: ignore[union-attr]
        await service.stop()

    asyncio.run(scenario())


def test_the_worker_loop_logs_unexpected_errors_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        assert service.store is not None
        claim = service.store.claim
        failures = iter([RuntimeError("claim bug")])

        async def flaky_claim(*args: Any) -> Run | None:
            for failure in failures:
                raise failure
            return await claim(*args)

        monkeypatch.setattr(service.store, "claim", flaky_claim)
        run = await service.submit("echo", b'{"value": 2}')
        await eventually(lambda: status(service, run.id) == "completed")
        await service.stop()

    asyncio.run(scenario())
    assert "jobs: worker error" in caplog.text
    assert "claim bug" in caplog.text


def test_the_heartbeat_logs_unexpected_errors_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(T0)
    service = make(tmp_path, clock, scheduler=False)
    beats: list[int] = []

    async def scenario() -> None:
        await service.start()
        assert service.runner is not None

        async def recover() -> list[Run]:
            beats.append(1)
            if len(beats) == 1:
                raise RuntimeError("heartbeat bug")
            return []

        monkeypatch.setattr(service.runner, "recover", recover)
        for _ in range(2):
            await eventually(lambda: clock.sleepers == 1)
            clock.advance(HEARTBEAT_SECONDS)
            await asyncio.sleep(0.01)
        await service.stop()

    asyncio.run(scenario())
    assert len(beats) == 2
    assert "heartbeat bug" in caplog.text


def test_a_retry_backing_off_does_not_block_other_runs(tmp_path: Path) -> None:
    # One worker (the default), a long backoff: the failing run waits in the queue, not in the worker.
    clock = ManualClock(T0)
    service = make(tmp_path, clock, job_backoff=600.0)

    async def scenario() -> None:
        calls.clear()
        await service.start()
        failing = await service.submit("flaky", b"{}")
        await eventually(lambda: (run := backend(tmp_path).get(failing.id)) is not None and run.attempts == 1
                         and run.status == "queued")  # fmt: skip
        waiting = backend(tmp_path).get(failing.id)
        assert waiting is not None
        assert T0 + 150 <= waiting.available_at <= T0 + 300  # capped (CHUTES_JOB_BACKOFF_MAX), jittered
        others = [await service.submit("echo", f'{{"value": {n}}}'.encode()) for n in range(3)]
        await eventually(lambda: all(status(service, run.id) == "completed" for run in others))
        assert status(service, failing.id) == "queued"  # still backing off
        clock.advance(600.0)
        service.wake()
        await eventually(lambda: status(service, failing.id) == "completed")
        assert backend(tmp_path).get(failing.id).attempts == 2  # type: ignore[union-attr]
        await service.stop()

    asyncio.run(scenario())


def test_store_failures_are_unavailable_errors_and_health_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chutes.jobs.store import StoreUnavailableError

    service = make(tmp_path)

    async def scenario() -> None:
        await service.start()
        assert service.store is not None
        store = service.store
        real = {name: getattr(store.backend, name) for name in ("submit_many", "claim_many")}
        fault = sqlite3.OperationalError("database or disk is full")
        if ENV:
            import psycopg

            fault = psycopg.OperationalError("connection to server failed: Connection refused")

        def failing(*args: Any, **kwargs: Any) -> Run:
            raise fault

        for name in real:  # the fault, injected where the database answers (the workers' polls fail too)
            monkeypatch.setattr(store.backend, name, failing)
        with pytest.raises(StoreUnavailableError, match="the job store is unavailable: OperationalError: "):
            await service.submit("echo", b"{}")
        await asyncio.sleep(0.3)  # a worker's poll fails too
        assert not service.healthy
        for name, method in real.items():
            monkeypatch.setattr(store.backend, name, method)
        run = await service.submit("echo", b'{"value": 1}')
        assert service.healthy
        await eventually(lambda: status(service, run.id) == "completed")
        await service.stop()

    asyncio.run(scenario())
