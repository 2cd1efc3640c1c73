"""Throughput and p99 of a chute cord against the same route hand-written in FastAPI.

Each server runs the way its users serve it, pinned to one core: the chute with ``chutes serve`` (uvicorn,
httptools and uvloop, with the chute's protocol that sends each response in one write), the FastAPI app
with ``uvicorn`` (httptools, uvloop, no access log). wrk, pinned to the other core, loads them in
alternation with 64 connections. For reference it also loads the FastAPI app served over the chute's
protocol (``fastapi-1w``), so that what the protocol alone is worth stays in view. The chute runs with
every guard on, as a server exposed to the internet would: API keys, a per-client rate limit (set high
enough never to refuse the benchmark, so every request pays for the check), a body size limit, the body
timeout, admission control, metrics and request ids. Needs ``wrk`` (Debian/Ubuntu: ``apt-get install
wrk``) and ``taskset`` (util-linux).

    python benchmarks/bench_server.py [--duration 5] [--rounds 3]
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
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = '{"prompt": "Write a haiku about throughput and tail latency.", "max_tokens": 32, "temperature": 0.5}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "bench-key"
"""
GUARDS = {
    "CHUTES_API_KEYS": "bench-key",
    "CHUTES_RATE_LIMIT": "1000000000",
    "CHUTES_MAX_BODY_SIZE": "65536",
    "CHUTES_BODY_TIMEOUT": "30",
    "CHUTES_QUEUE_SIZE": "1024",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# FastAPI served over the chute's one-write protocol: not how FastAPI is served, printed for reference so the
# headline's share that comes from the protocol rather than from the cord path is in plain sight.
ONE_WRITE = (
    "import sys, uvicorn; from chutes.server.protocol import HttpProtocol; "
    "uvicorn.run('benchmarks.apps:fastapi_app', host='127.0.0.1', port=int(sys.argv[1]), loop='uvloop', "
    "http=HttpProtocol, log_level='warning', access_log=False)"
)


def command(app: str, port: int) -> list[str]:
    """How the app's users serve it (``one-write:`` prefix: FastAPI over the chute's protocol)."""
    if app.startswith("one-write:"):
        return [sys.executable, "-c", ONE_WRITE, str(port)]
    if app.endswith(":chute"):
        return [sys.executable, "-m", "chutes", "serve", app, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--log-level", "warning", "--no-access-log"]  # fmt: skip


def start(app: str, port: int, core: int) -> subprocess.Popen[bytes]:
    cmd = ["taskset", "-c", str(core), *command(app, port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **GUARDS})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/echo", data=BODY.encode(), method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("X-API-Key", "bench-key")
            urllib.request.urlopen(req, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{app} did not start on port {port}")


def check_guarded(port: int) -> None:
    """The chute really runs its guards: a call without the key is refused."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/echo", data=BODY.encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        urllib.request.urlopen(req, timeout=5).read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return
    raise SystemExit("the chute answered a call without its API key: the guards are not on")


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def load(port: int, duration: int, core: int, script: str) -> tuple[float, float, int]:
    """Run wrk once; returns (requests/s, p99 seconds, non-2xx count)."""
    cmd = ["taskset", "-c", str(core), "wrk", "-t1", "-c64", f"-d{duration}s", "--latency", "-s", script]
    out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/echo"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, _seconds(*p99.groups()) if p99 else float("nan"), int(bad.group(1)) if bad else 0  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--target", type=float, default=3.0, help="throughput ratio the chute must reach")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'}")
    cores = sorted(os.sched_getaffinity(0))
    server_core, load_core = cores[0], cores[-1]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(LUA)
    servers = {
        "chute": ("benchmarks.apps:chute", free_port()),
        "fastapi": ("benchmarks.apps:fastapi_app", free_port()),
        "fastapi-1w": ("one-write:fastapi", free_port()),
    }
    procs = [start(app, port, server_core) for app, port in servers.values()]
    check_guarded(servers["chute"][1])
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in servers}
    try:
        for _, port in servers.values():  # warm up each
            load(port, 1, load_core, handle.name)
        for _ in range(args.rounds):
            for name, (_, port) in servers.items():
                results[name].append(load(port, args.duration, load_core, handle.name))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        os.unlink(handle.name)
    summary = {}
    for name, runs in results.items():
        rps = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        bad = sum(r[2] for r in runs)
        summary[name] = (rps, p99)
        rounds = [round(r[0]) for r in runs]
        print(f"{name:10s} {rps:10.0f} req/s   p99 {p99 * 1000:7.2f} ms   non-2xx {bad}   runs {rounds}")
    # Each round loads both servers back to back, so a round's ratio compares like with like even when
    # the machine's speed drifts between rounds; the median of those ratios is the headline.
    ratios = [c[0] / f[0] for c, f in zip(results["chute"], results["fastapi"], strict=True)]
    ratio = statistics.median(ratios)
    p99_ratio = summary["chute"][1] / summary["fastapi"][1]
    per_round = [round(r, 2) for r in ratios]
    print(f"throughput ratio chute/fastapi: {ratio:.2f}x (target >= {args.target}x); per round {per_round}")
    print(f"p99 ratio chute/fastapi: {p99_ratio:.2f} (target < 1)")
    same = [c[0] / f[0] for c, f in zip(results["chute"], results["fastapi-1w"], strict=True)]
    print(f"for reference, chute / FastAPI served over the chute's one-write protocol (fastapi-1w): "
          f"{statistics.median(same):.2f}x; per round {[round(r, 2) for r in same]}")  # fmt: skip
    return 0 if ratio >= args.target and p99_ratio < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
