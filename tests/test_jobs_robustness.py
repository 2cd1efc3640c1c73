"""Jobs under real faults, in real server processes: SIGKILL storms on PostgreSQL, event loops stalled by
CPU-bound jobs, another process holding the SQLite write lock."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from chutes.chute import Chute
from chutes.jobs.postgres_store import schema_name
from chutes.jobs.store import open_backend

ROOT = Path(__file__).resolve().parents[1]

MODULE = """
import asyncio
import os
import time
from typing import Any
from pathlib import Path

from chutes.chute import Chute

chute = Chute(username="test", name="robust", image="python:3.11")


@chute.cord(public_api_path="/ping", method="GET")
async def ping(self) -> str:
    return "pong"


@chute.job(retry_count=5)
async def work(self, n: int) -> int:
    await asyncio.sleep(0.05)
    return n * 2


@chute.job(retry_count=3)
async def crunch(self, seconds: float) -> int:
    # CPU-bound on the event loop, longer than the lease: nothing else on this loop runs meanwhile.
    with open(os.environ["EXECUTIONS"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        total += 1
    return os.getpid()
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``chutes serve`` process of the test chute on loopback."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = (
            os.environ
            | {"PYTHONPATH": f"{ROOT}:{folder}", "CHUTES_DATA_DIR": str(folder / "data"), "CHUTES_DRAIN_SECONDS": "0"}
            | env
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "chutes", "serve", "robust_chute:chute", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=self.folder, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.url}/_ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.url} not ready")

    def kill_and_restart(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = self._start()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "robust_chute.py").write_text(MODULE)
    return tmp_path


def test_three_servers_on_postgresql_complete_every_run_once_while_being_killed(
    folder: Path, database_url: str
) -> None:
    import psycopg

    store = open_backend(database_url, folder / "data", "robust")  # creates the schema
    schema = schema_name("robust")
    with psycopg.connect(database_url, autocommit=True, options=f"-c search_path={schema}") as db:
        # Every transition to 'completed', recorded by the database itself: a run completed twice shows twice.
        db.execute(
            b"CREATE TABLE completions (run_id TEXT NOT NULL);"
            b"CREATE FUNCTION log_completion() RETURNS trigger LANGUAGE plpgsql AS $$ "
            b"BEGIN INSERT INTO completions VALUES (NEW.id); RETURN NULL; END $$;"
            b"CREATE TRIGGER completion AFTER UPDATE OF status ON runs FOR EACH ROW "
            b"WHEN (NEW.status = 'completed') EXECUTE FUNCTION log_completion();"
        )
    env = {"CHUTES_DATABASE_URL": database_url, "CHUTES_JOB_WORKERS": "4", "CHUTES_JOB_BACKOFF": "0"}
    servers = [Server(folder, env) for _ in range(3)]
    try:
        for server in servers:
            server.wait_ready()
        ids = [store.submit("work", f'{{"n": {n}}}', 6, "api", time.time()).id for n in range(1000)]
        rng = random.Random(11)
        deadline = time.monotonic() + 120
        kills = 0
        while True:
            counts = store.queued_counts().get("work", 0) + len(store.runs(name="work", status="running", limit=1000))
            if counts == 0:
                break
            assert time.monotonic() < deadline, f"{counts} runs still pending"
            if kills < 6:
                time.sleep(0.75)
                rng.choice(servers).kill_and_restart()  # SIGKILL: no shutdown, leases left behind
                kills += 1
            else:
                time.sleep(0.2)
        runs = {run.id: run for run in store.runs(name="work", limit=2000)}
    finally:
        for server in servers:
            server.stop()
    assert kills >= 3
    assert all(runs[run_id].status == "completed" for run_id in ids), {
        run.status for run in runs.values() if run.status != "completed"
    }
    assert [runs[run_id].result for run_id in ids] == [n * 2 for n in range(1000)]
    with psycopg.connect(database_url, options=f"-c search_path={schema}") as db:
        rows = db.execute(b"SELECT run_id, COUNT(*) FROM completions GROUP BY run_id HAVING COUNT(*) > 1").fetchall()
        total = db.execute(b"SELECT COUNT(*) FROM completions").fetchone()
    assert rows == [], "runs completed twice"
    assert total == (1000,)
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "sqlite":
        return {}
    return {"CHUTES_DATABASE_URL": request.getfixturevalue("database_url")}


def test_a_cpu_bound_job_longer_than_the_lease_runs_once(folder: Path, shared_env: dict[str, str]) -> None:
    executions = folder / "executions.log"
    env = {"CHUTES_JOB_LEASE": "0.6", "EXECUTIONS": str(executions)} | shared_env
    servers = [Server(folder, env) for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        response = httpx.post(f"{servers[0].url}/_jobs/crunch", json={"seconds": 2.5})
        assert response.status_code == 202
        run_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while (run := httpx.get(f"{servers[1].url}/_jobs/runs/{run_id}").json())["status"] != "completed":
            assert run["status"] in ("queued", "running"), run
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
    finally:
        for server in servers:
            server.stop()
    assert run["attempts"] == 1
    assert executions.read_text().splitlines() == [str(run["result"])]  # one execution, by the process that won


def test_a_held_store_lock_does_not_slow_cords(folder: Path) -> None:
    server = Server(folder, {"CHUTES_JOB_WORKERS": "2"})
    latencies: list[float] = []
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/_jobs/work", json={"n": 1}).status_code == 202  # the store exists, jobs poll it
            holder = sqlite3.connect(folder / "data" / "robust.jobs.sqlite3", isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock (and blocks readers)
            try:
                until = time.monotonic() + 2.5
                while time.monotonic() < until:
                    started = time.perf_counter()
                    assert client.get("/ping").json() == "pong"
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.02)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert client.get("/_health").status_code == 200
    finally:
        server.stop()
    assert len(latencies) > 20
    # The workers' claims wait on the lock in the store's thread; the event loop never does.
    assert max(latencies) < 1.0, max(latencies)


def test_a_database_outage_answers_503_and_health_recovers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> None:
    import psycopg
    from fastapi.testclient import TestClient

    chute = Chute(username="test", name="outage", image="python:3.11")

    @chute.job()
    async def note(self: Chute, value: int) -> int:
        return value

    monkeypatch.setenv("CHUTES_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHUTES_DATABASE_URL", database_url)
    name = database_url.rsplit("/", 1)[1]
    admin = psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)

    def health(client: TestClient, expected: int) -> dict[str, Any]:
        deadline = time.monotonic() + 30  # the pool reconnects with a backoff of its own
        while (response := client.get("/_health")).status_code != expected:
            assert time.monotonic() < deadline, response.json()
            time.sleep(0.05)
        return dict(response.json())

    with TestClient(chute) as client:
        assert client.post("/_jobs/note", json={"value": 1}).status_code == 202
        # The database goes away: no new connections, the pool's connections cut.
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'.encode())
        admin.execute(b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        response = client.post("/_jobs/note", json={"value": 2})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        body = response.json()
        assert body["detail"].startswith("the job store is unavailable: ")
        assert body["request_id"] == response.headers["x-request-id"]
        assert client.get("/_jobs/runs").status_code == 503
        report = health(client, 503)
        assert report["status"] == "unhealthy"
        assert report["error"].startswith("job store unavailable: ")
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'.encode())
        health(client, 200)
        assert client.post("/_jobs/note", json={"value": 3}).status_code == 202
    admin.close()
