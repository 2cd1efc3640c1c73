"""Benchmark: no-op job runs per second through the SQLite store, from submit to completed.

Usage: ``python benchmarks/bench_jobs.py [--runs N] [--workers N]``. Each run is submitted through
``JobService.submit`` (validated, stored), claimed by a worker, executed and recorded as completed:
four writes to the WAL database per run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chutes.chute import Chute  # noqa: E402
from chutes.jobs.service import JobService  # noqa: E402
from chutes.settings import Settings  # noqa: E402

chute = Chute(username="bench", name="bench-jobs", image="python:3.11")


@chute.job(retry_count=0)
async def noop(self: Chute, n: int = 0) -> int:
    return n


async def measure(runs: int, workers: int, data_dir: Path) -> float:
    settings = Settings(data_dir=data_dir, job_workers=workers, scheduler=False)
    service = JobService(chute, settings, CollectorRegistry())
    await service.start()
    assert service.store is not None
    store = service.store
    started = time.perf_counter()
    ids = [service.submit("noop", b'{"n": %d}' % i).id for i in range(runs)]
    while store.queued_counts() or service.runner is not None and service.runner.running:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    completed = store.runs(name="noop", status="completed", limit=runs + 1)
    assert len(completed) == runs, f"{len(completed)} of {runs} runs completed"
    assert {run.id for run in completed} == set(ids)
    await service.stop()
    return runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rate = asyncio.run(measure(args.runs, args.workers, Path(folder)))
    detail = f"submit -> completed, {args.runs} runs, {args.workers} worker(s)"
    print(f"jobs: {rate:,.0f} no-op runs/s through the store ({detail})")


if __name__ == "__main__":
    main()
