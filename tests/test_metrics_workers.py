"""``/_metrics`` under ``serve --workers N`` reports the whole server, whichever worker answers."""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from chutes.server.shared_metrics import merge, snapshot

Start = Callable[..., tuple[int, subprocess.Popen[bytes]]]

MODULE = """
import asyncio
import os
from chutes.chute import Chute

chute = Chute(username="acme", name="pool", image="python:3.11", concurrency=3)


@chute.cord(public_api_path="/pid", method="GET")
async def pid(self) -> int:
    await asyncio.sleep(0.02)
    return os.getpid()
"""


def test_two_workers_report_every_request_whichever_answers(tmp_path: Path, start_server: Start) -> None:
    (tmp_path / "pool.py").write_text(MODULE)
    port, _ = start_server(["chutes", "serve", "pool:chute", "--port", "{port}", "--workers", "2"])

    def call(_: int) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/pid", timeout=10) as response:
            return int(json.loads(response.read()))

    with concurrent.futures.ThreadPoolExecutor(6) as pool:  # new connections, at once: both workers take some
        pids = set(pool.map(call, range(120)))
    assert pids
    time.sleep(1.5)  # each worker writes its samples every second
    for _ in range(4):  # whichever worker answers the scrape, it reports the same totals
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_metrics", timeout=5) as response:
            text = response.read().decode()
        total = re.search(r'chutes_requests_total\{method="GET",path="/pid",status="200"\} (\S+)', text)
        assert total is not None, text
        assert float(total.group(1)) == 120.0
        assert 'chutes_request_duration_seconds_count{method="GET",path="/pid",status="200"} 120.0' in text
        assert "chutes_concurrency 6.0" in text  # both workers' samples, merged: 3 slots each
        assert "chutes_requests_in_flight 0.0" in text


def test_merge_sums_counters_everywhere_and_gauges_of_live_workers_only() -> None:
    def worker(requests: float, in_flight: float, queued_runs: float) -> list[dict[str, object]]:
        registry = CollectorRegistry()
        Counter("chutes_requests", "r", ["path"], registry=registry).labels("/a").inc(requests)
        Gauge("chutes_requests_in_flight", "f", registry=registry).set(in_flight)
        Gauge("chutes_job_runs_queued", "q", ["job"], registry=registry).labels("j").set(queued_runs)
        return json.loads(json.dumps(snapshot(registry)))  # as written to and read from the folder

    families = {family.name: family for family in merge([(True, worker(5, 1, 7)), (True, worker(3, 2, 7)),
                                                          (False, worker(10, 4, 9))])}  # fmt: skip
    values = {family.name: [sample.value for sample in family.samples] for family in families.values()}
    assert values["chutes_requests"] == [18.0]  # a dead worker's requests stay counted
    assert values["chutes_requests_in_flight"] == [3.0]  # but not its in-flight calls
    assert values["chutes_job_runs_queued"] == [7.0]  # the store's count, the same in every worker
    assert all(not sample.name.endswith("_created") for family in families.values() for sample in family.samples)
