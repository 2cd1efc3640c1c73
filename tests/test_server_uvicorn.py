"""One real uvicorn server: admission under parallel load answers 200 or 429, never 500."""

from __future__ import annotations

import http.client
import json
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import Popen

APP = textwrap.dedent(
    """
    import asyncio
    from pydantic import BaseModel
    from chutes.chute import Chute

    chute = Chute(username="acme", name="loaded", image="python:3.11", concurrency=2)

    class Job(BaseModel):
        ms: int

    @chute.cord(public_api_path="/work")
    async def work(self, job: Job) -> dict:
        await asyncio.sleep(job.ms / 1000)
        return {"slept": job.ms}
    """
)


def post(port: int, body: dict[str, int]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/work", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_admission_under_parallel_load(tmp_path: Path, start_server: Callable[..., tuple[int, Popen[bytes]]]) -> None:
    (tmp_path / "loaded_app.py").write_text(APP)
    env = {"CHUTES_QUEUE_SIZE": "4", "CHUTES_QUEUE_WAIT": "2"}
    port, proc = start_server(["uvicorn", "loaded_app:chute", "--host", "127.0.0.1", "--port", "{port}"], env=env)
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda _: post(port, {"ms": 150}), range(24)))
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 6  # 2 running + 4 queued at least once
    assert statuses.count(429) >= 1
    for status, headers, body in results:
        assert headers["x-request-id"]
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert int(headers["x-chutes-conn-used"]) == 2
            assert headers["x-chutes-conn-available"] == "0"
            assert json.loads(body)["detail"] == "Server at capacity, retry later"
        else:
            assert json.loads(body) == {"slept": 150}
    # the server is still healthy and serving
    assert post(port, {"ms": 1})[0] == 200
    assert proc.poll() is None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/_metrics")
    metrics = conn.getresponse().read().decode()
    conn.close()
    assert 'chutes_requests_total{method="POST",path="/work",status="429"}' in metrics
    assert "chutes_request_duration_seconds_bucket" in metrics


def test_bad_settings_stop_uvicorn_at_startup(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "loaded_app.py").write_text(APP)
    env = {**os.environ, "CHUTES_QUEUE_WAIT": "soon", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "loaded_app:chute", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "CHUTES_QUEUE_WAIT='soon'" in result.stderr
    assert "Application startup failed" in result.stderr
