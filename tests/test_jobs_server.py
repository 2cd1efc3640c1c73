"""Jobs in real server processes: a run survives SIGKILL, and two processes fire a schedule once (both stores)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from chutes.jobs.postgres_store import schema_name
from chutes.jobs.store import open_backend

ROOT = Path(__file__).resolve().parents[1]

CRASH_MODULE = """
import asyncio
import os
from pathlib import Path

from chutes.chute import Chute

chute = Chute(username="test", name="crash-test", image="python:3.11")


@chute.job(retry_count=2)
async def survive(self, label: str) -> str:
    marker = Path(os.environ["MARKER"])
    if not marker.exists():
        marker.write_text("first attempt started")
        await asyncio.sleep(60)  # the server is killed meanwhile
    return f"{label} survived"
"""

CRON_MODULE = """
import os

from chutes.chute import Chute
from chutes.jobs.clock import ScaledClock, set_default_clock

# Both processes share one start and anchor, so they agree on a clock where a minute lasts a second.
set_default_clock(ScaledClock(float(os.environ["FAKE_START"]), speed=60.0, anchor=float(os.environ["ANCHOR"])))
chute = Chute(username="test", name="cron-test", image="python:3.11")


@chute.job(schedule="* * * * *")
async def tick(self) -> int:
    return os.getpid()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path, module: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = os.environ | {"PYTHONPATH": str(ROOT), "CHUTES_DATA_DIR": str(folder / "data")} | env
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:chute", "--host", "127.0.0.1", "--port", str(port)]
        + ["--log-level", "warning", "--app-dir", str(folder)],
        cwd=folder,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else "server exited"
        try:
            if httpx.get(f"{url}/_ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become ready")


def server_env(store_env: dict[str, str]) -> dict[str, str]:
    """The environment selecting the store under test."""
    return {"CHUTES_DATABASE_URL": store_env["database_url"]} if store_env else {}


def query(store_env: dict[str, str], tmp_path: Path, chute: str, sql: str) -> list[Any]:
    """Rows of ``sql`` read straight from the chute's store, whichever it is."""
    if not store_env:
        db = sqlite3.connect(tmp_path / "data" / f"{chute}.jobs.sqlite3")
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()
    import psycopg

    with psycopg.connect(store_env["database_url"], options=f"-c search_path={schema_name(chute)}") as db:
        return db.execute(sql.encode()).fetchall()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()


def test_a_run_interrupted_by_sigkill_completes_after_restart(tmp_path: Path, store_env: dict[str, str]) -> None:
    (tmp_path / "crashy.py").write_text(CRASH_MODULE)
    marker = tmp_path / "marker"
    env = {"MARKER": str(marker), "CHUTES_JOB_BACKOFF": "0"} | server_env(store_env)
    first, url = start_server(tmp_path, "crashy", env)
    try:
        wait_ready(first, url)
        response = httpx.post(f"{url}/_jobs/survive", json={"label": "run"})
        assert response.status_code == 202
        run_id = response.json()["id"]
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        stop(first)
    store = open_backend(store_env.get("database_url"), tmp_path / "data", "crash-test")
    orphan = store.get(run_id)
    store.close()
    assert orphan is not None
    assert (orphan.status, orphan.attempts) == ("running", 1)

    second, url = start_server(tmp_path, "crashy", env)
    try:
        wait_ready(second, url)
        deadline = time.monotonic() + 10
        while (run := httpx.get(f"{url}/_jobs/runs/{run_id}").json())["status"] != "completed":
            assert run["status"] in ("queued", "running"), run
            assert time.monotonic() < deadline, run
            time.sleep(0.02)
    finally:
        stop(second)
    assert (run["result"], run["attempts"]) == ("run survived", 2)


def test_two_processes_sharing_a_store_fire_each_scheduled_time_once(tmp_path: Path, store_env: dict[str, str]) -> None:
    (tmp_path / "crony.py").write_text(CRON_MODULE)
    env = {"FAKE_START": str(1_700_000_000.0), "ANCHOR": repr(time.time())} | server_env(store_env)
    servers = [start_server(tmp_path, "crony", env) for _ in range(2)]
    try:
        for process, url in servers:
            wait_ready(process, url)
        time.sleep(2.5)  # two and a half minutes of the shared clock, both processes scheduling
    finally:
        for process, _ in servers:
            stop(process)
    runs = query(
        store_env, tmp_path, "cron-test",
        "SELECT scheduled_for, status, result FROM runs WHERE trigger = 'schedule' ORDER BY scheduled_for",
    )  # fmt: skip
    firings = [
        row[0] for row in query(store_env, tmp_path, "cron-test", "SELECT scheduled_for FROM firings ORDER BY 1")
    ]
    times = [row[0] for row in runs]
    assert len(times) >= 2
    assert len(set(times)) == len(times), "a scheduled time fired twice"
    assert times == firings
    assert all(later - earlier == 60 for earlier, later in zip(times, times[1:], strict=False))
    assert all(status == "completed" for _, status, _ in runs[:-1])  # the last may have fired during shutdown
