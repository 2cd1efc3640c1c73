"""Job runs per second over HTTP, submit to completed, on the SQLite store and on PostgreSQL, side by side.

A real server (``chutes serve``, uvloop and httptools) runs a no-op job; wrk's 64 connections submit
runs with ``POST /_jobs/noop`` for ``--duration`` seconds; the clock stops when the last submitted run
is completed (read from the store, so polling adds no HTTP load). Runs per second = completed runs /
that time. Each round starts a fresh server on an empty store; the figures are the median of
``--rounds`` rounds per store, with their spread, and their ratio to ``--target``. Needs ``wrk``.

Durability is comparable on both stores: safe when the process crashes, not against power loss.
SQLite runs as the store always does (WAL, ``synchronous=NORMAL``); PostgreSQL is a throwaway cluster
(``initdb``) with ``fsync`` and ``full_page_writes`` on and ``synchronous_commit=off`` (a commit does not
wait for its WAL flush), not the unsynced cluster the tests use.

    python benchmarks/bench_jobs.py [--duration 5] [--rounds 3] [--job-workers 16] [--workers 1] [--target 1000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from chutes.jobs.store import Backend, open_backend  # noqa: E402

MODULE = """
from chutes.chute import Chute

chute = Chute(username="bench", name="bench-jobs", image="python:3.11")


@chute.job(retry_count=0)
async def noop(self, n: int = 0) -> int:
    return n
"""
LUA = """wrk.method = "POST"
wrk.body = '{"n": 1}'
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(folder: Path, env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "chutes", "serve", "bench_jobs_chute:chute", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
    environment = os.environ | {"PYTHONPATH": f"{ROOT}:{folder}", "CHUTES_DATA_DIR": str(folder / "data"),
                                "CHUTES_QUEUE_SIZE": "1024", "CHUTES_DRAIN_SECONDS": "0"} | env  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=folder, env=environment, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ready", timeout=1) as response:
                if response.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def pending(store: Backend) -> int:
    return store.queued_counts().get("noop", 0) + len(store.runs(name="noop", status="running", limit=100_000))


def measure(folder: Path, env: dict[str, str], args: argparse.Namespace, script: str) -> tuple[float, str]:
    """One round: submit for ``--duration`` seconds, wait for the last run; runs per second and a summary."""
    proc, port = serve(folder, env, args.workers)
    store = open_backend(env.get("CHUTES_DATABASE_URL"), folder / "data", "bench-jobs")
    try:
        cmd = ["wrk", "-t2", "-c64", f"-d{args.duration}s", "-s", script, f"http://127.0.0.1:{port}/_jobs/noop"]
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        while pending(store):
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        completed = len(store.runs(name="noop", status="completed", limit=1_000_000))
        failed = len(store.runs(name="noop", status="failed", limit=1_000_000))
    finally:
        store.close()
        proc.terminate()
        proc.wait(timeout=30)
    refused = int(bad.group(1)) if bad else 0
    return completed / elapsed, f"{completed} completed in {elapsed:.1f} s, failed {failed}, refused {refused}"


def rounds(name: str, scratch: Path, env: Callable[[], dict[str, str]], args: argparse.Namespace,
           script: str) -> list[float]:  # fmt: skip
    """``--rounds`` rounds on one store, each on a fresh data folder and ``env()`` (a fresh database)."""
    rates = []
    for index in range(args.rounds):
        folder = scratch / f"{name}-{index}"
        folder.mkdir()
        (folder / "bench_jobs_chute.py").write_text(MODULE)
        rate, summary = measure(folder, env(), args, script)
        print(f"  {name:10s} round {index + 1}: {rate:6.0f} runs/s   ({summary})", flush=True)
        rates.append(rate)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds wrk submits runs")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per store (the median is reported)")
    parser.add_argument("--job-workers", type=int, default=16, help="CHUTES_JOB_WORKERS of the server")
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    parser.add_argument("--target", type=float, default=1000.0, help="runs per second each store must reach")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install wrk")
    from postgres import Cluster, server_bin

    base = {"CHUTES_JOB_WORKERS": str(args.job_workers)}
    print(f"{args.rounds} rounds per store, {args.duration} s of submissions each, 64 connections, "
          f"CHUTES_JOB_WORKERS={args.job_workers}, {args.workers} server process(es)")  # fmt: skip
    print("durability: SQLite WAL synchronous=NORMAL; PostgreSQL fsync=on full_page_writes=on synchronous_commit=off")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        script = str(Path(scratch) / "submit.lua")
        Path(script).write_text(LUA)
        results["sqlite"] = rounds("sqlite", Path(scratch), lambda: base, args, script)
        bindir = server_bin()
        if bindir is None:
            print("postgresql: not installed (make install-system), skipped")
        else:
            cluster = Cluster(bindir, crash_safe=True)
            try:
                results["postgresql"] = rounds(
                    "postgresql", Path(scratch), lambda: base | {"CHUTES_DATABASE_URL": cluster.new_database()},
                    args, script,
                )  # fmt: skip
            finally:
                cluster.stop()
    print(f"{'store':12s} {'median':>8s} {'min':>7s} {'max':>7s}   ratio to {args.target:.0f} runs/s")
    for name, rates in results.items():
        median = statistics.median(rates)
        print(f"{name:12s} {median:8.0f} {min(rates):7.0f} {max(rates):7.0f}   {median / args.target:.2f}x "
              f"({'met' if median >= args.target else 'NOT met'})")  # fmt: skip
    print(f"target >= {args.target:.0f} runs/s on each store (BentoML tasks: 189-275 runs/s on this kind of machine)")
    return 0 if results and all(statistics.median(rates) >= args.target for rates in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
