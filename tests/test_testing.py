"""``chutes.testing``: the test kit users test their chutes with, and the README's example of it."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT

from chutes.chute import Chute
from chutes.testing import DEFAULT_START, ChuteTestClient, FakeClock, JobRun, assert_run

attempts: list[int] = []


def make() -> Chute:
    chute = Chute(username="acme", name="kit", image="python:3.11")

    @chute.cord(public_api_path="/echo")
    async def echo(self: Chute, text: str) -> str:
        return text

    @chute.job(retry_count=2)
    async def flaky(self: Chute, succeed_on: int) -> str:
        attempts.append(1)
        if len(attempts) < succeed_on:
            raise RuntimeError(f"attempt {len(attempts)} failed")
        return "done"

    @chute.job(schedule="@hourly", retry_count=0)
    async def hourly(self: Chute) -> int:
        return 1

    @chute.job(schedule="30 0 * * *", name="half-past")
    def half_past(self: Chute) -> str:
        return "ran"

    return chute


@pytest.fixture(autouse=True)
def _reset() -> None:
    attempts.clear()


def test_the_client_serves_cords_and_runs_jobs_with_their_retries() -> None:
    with ChuteTestClient(make()) as client:
        assert client.post("/echo", json={"text": "hi"}).json() == "hi"
        run = client.run_job("flaky", succeed_on=2)
        assert_run(run, "completed", attempts=2, result="done")
        assert run.finished
        attempts.clear()
        failed = client.run_job("flaky", succeed_on=9)
        assert_run(failed, "failed", attempts=3, error="attempt 3 failed")
        assert_run(failed, error=re.compile(r"attempt \d failed"))
        assert [r.id for r in client.runs("flaky", status="failed")] == [failed.id]
        assert client.run(run.id) == run


def test_advancing_the_clock_fires_each_due_time_once() -> None:
    with ChuteTestClient(make()) as client:
        assert client.clock.now == DEFAULT_START
        client.clock.advance(59 * 60)
        assert [run.name for run in client.runs()] == ["half-past"]
        client.clock.advance(60)
        [first] = client.runs("hourly")
        assert_run(first, "completed", attempts=1, result=1)
        assert first.data["scheduled_for"] == "2025-01-01T01:00:00.000Z"
        client.clock.advance(3 * 3600)
        assert len(client.runs("hourly", status="completed")) == 4
        assert [run.data["scheduled_for"] for run in client.runs("half-past")] == ["2025-01-01T00:30:00.000Z"]
        assert client.clock.now == datetime(2025, 1, 1, 4, 0, tzinfo=UTC)


def test_a_clock_can_start_anywhere_and_settings_can_be_set(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2030, 6, 1, 0, 15, tzinfo=UTC))
    with ChuteTestClient(make(), clock=clock, data_dir=str(tmp_path), settings={"timezone": "Europe/Paris"}) as client:
        client.clock.advance(3600)
        assert [run.name for run in client.runs()] == ["hourly"]
        # 00:30 in Paris is 22:30 UTC the day before: not due in the first hour.
        assert client.runs("half-past") == []
    assert list(tmp_path.iterdir()), "the job store lives in the given folder"


def test_failures_name_what_differs_and_show_the_run() -> None:
    run = JobRun.from_json({"id": "r1", "name": "resize", "status": "failed", "attempts": 2, "error": "boom"})
    assert assert_run(run, "failed", attempts=2, error="boom") is run
    with pytest.raises(AssertionError) as caught:
        assert_run(run, "completed", attempts=1, result=3, error="bang")
    message = str(caught.value)
    assert message.startswith("run r1 of job 'resize': status is 'failed', expected 'completed'; attempts is 2, ")
    assert "result is None, expected 3" in message
    assert "error is 'boom', expected it to contain 'bang'" in message
    assert "'status': 'failed'" in message


def test_a_bad_submission_or_a_stuck_run_fails_the_test_clearly() -> None:
    chute = make()

    @chute.job()
    async def forever(self: Chute) -> None:
        import asyncio

        await asyncio.Event().wait()

    with ChuteTestClient(chute) as client:
        with pytest.raises(AssertionError, match="submitting job 'flaky' answered 422"):
            client.submit_job("flaky", succeed_on="many")
        with pytest.raises(AssertionError, match=r"still running after 0.2s"):
            client.run_job("forever", timeout=0.2)


def test_a_clock_alone_is_a_manual_clock() -> None:
    clock = FakeClock(0)
    clock.advance(5)
    assert clock.time() == 5


def test_the_readme_example_passes_under_pytest(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing a chute\n", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(# test_app\.py\n.*?)```", section, flags=re.DOTALL)
    (tmp_path / "test_app.py").write_text(example, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_app.py"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
