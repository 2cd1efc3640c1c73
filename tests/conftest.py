"""Shared fixtures: a real uvicorn server in a subprocess, on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited early with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not ready after {timeout}s")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., tuple[int, subprocess.Popen[bytes]]]]:
    """Start ``python -m <args>`` with a fresh port; every server is stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        # No drain after SIGTERM unless a test asks for one: teardown stops servers with SIGTERM.
        full_env = {
            **os.environ,
            "CHUTES_DATA_DIR": str(tmp_path / "data"),
            "CHUTES_DRAIN_SECONDS": "0",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        argv = [sys.executable, "-m", *[a.replace("{port}", str(port)) for a in args]]
        proc = subprocess.Popen(
            argv, cwd=cwd or tmp_path, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        procs.append(proc)
        wait_ready(port, proc)
        return port, proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def require(available: bool, what: str) -> None:
    """Skip a test whose real dependency (an engine, a database, a browser) is missing on this machine.

    Under CI, which installs all of them through ``make install``, a missing one fails the test instead:
    a real-thing test that CI skips would prove nothing.
    """
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing, but CI installs it (make install)")
    pytest.skip(f"{what} is missing here: `make install` installs it")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL server for the whole session (``tests/postgres.py``)."""
    from postgres import Cluster, server_bin

    bindir = server_bin()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bindir = None
    require(bindir is not None, "PostgreSQL (postgresql-15 and the postgres extra: psycopg)")
    assert bindir is not None
    cluster = Cluster(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(postgres_cluster: Any) -> str:
    """The URL of an empty PostgreSQL database of this test's own."""
    return str(postgres_cluster.new_database())


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings that select each run store in turn: ``{}`` (SQLite) or ``{"database_url": ...}``."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("database_url")}
