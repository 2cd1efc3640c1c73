"""Dynamic batching on a real model: a batched chute cord against LitServe, Ray Serve and BentoML.

all-MiniLM-L6-v2 sentence embeddings on CPU. Each server runs pinned to one core with one torch
thread; 64 closed-loop clients on the other core each send one sentence per request. Five servers in
turn: a chute cord without batching, a batched chute cord, LitServe (``max_batch_size``/``batch_timeout``),
Ray Serve (``@serve.batch``) and BentoML (a batchable API), all at batch size 32. Also prints the
model's own ceiling (``encode`` in-process at batch 8/16/32/64 on the server's core).

Needs the bench venv (``make install-bench``) and ``taskset`` (util-linux):

    .venv-bench/bin/python benchmarks/bench_batching.py [--duration 15] [--warmup 5] [--only chute-batched,litserve]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.batching.model import DIMENSIONS, SENTENCE  # noqa: E402

SERVER_CORE, CLIENT_CORE = 1, 0
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONWARNINGS": "ignore",
    "RAY_USAGE_STATS_ENABLED": "0",
    "BENTOML_DO_NOT_TRACK": "True",
    "CHUTES_QUEUE_SIZE": "1024",
}


@dataclass(frozen=True)
class Server:
    name: str
    path: str
    body: dict[str, object]
    startup: float  # seconds allowed to start

    def command(self, port: int) -> list[str]:
        python = sys.executable
        if self.name.startswith("chute"):
            return [
                python, "-m", "uvicorn", "benchmarks.batching.chute_app:chute", "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
                "--no-access-log",
            ]  # fmt: skip
        if self.name == "bentoml":
            bentoml = str(Path(python).with_name("bentoml"))
            app = "benchmarks.batching.bento_app:Embedder"
            return [bentoml, "serve", app, "--host", "127.0.0.1", "--port", str(port)]
        return [python, "-m", f"benchmarks.batching.{self.name.replace(' ', '_')}_app", str(port)]


SERVERS = {
    "chute": Server("chute", "/embed", {"text": SENTENCE}, 60),
    "chute-batched": Server("chute-batched", "/embed_batched", {"text": SENTENCE}, 60),
    "litserve": Server("litserve", "/predict", {"text": SENTENCE}, 120),
    "ray": Server("ray", "/", {"text": SENTENCE}, 240),
    "bentoml": Server("bentoml", "/embed", {"texts": [SENTENCE]}, 180),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _embedding_of(payload: object) -> list[float] | None:
    """The one embedding in any server's answer: {"embedding": [...]}, [[...]] or [...]."""
    if isinstance(payload, dict):
        payload = payload.get("embedding")
    if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], list):
        payload = payload[0]
    return payload if isinstance(payload, list) and len(payload) == DIMENSIONS else None


def start(server: Server, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server on SERVER_CORE in a session of its own; return once it answers a real request."""
    cmd = ["taskset", "-c", str(SERVER_CORE), *server.command(port)]
    out = log.open("wb")
    env = {**os.environ, **ONE_THREAD}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + server.startup
    body = json.dumps(server.body).encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log}")
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{server.path}", data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=5) as response:
                if _embedding_of(json.loads(response.read())) is None:
                    raise RuntimeError(f"{server.name} answered something that is not one {DIMENSIONS}-d embedding")
                return proc
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 503):  # listening, but the model's route is not up yet (Ray's proxy)
                time.sleep(0.5)
                continue
            stop(proc)
            raise RuntimeError(f"{server.name} answered {exc.code}: {exc.read()[:300]!r}") from None
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"{server.name} did not answer within {server.startup:.0f}s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it spawned (its session's process group)."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            time.sleep(1)  # helpers of the group (Ray's raylet, Bento's workers) exit after their parent
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def cpu_seconds(leader: int) -> float:
    """CPU time used so far by the live processes of a server: its session, its group and all descendants.

    Unlike items/s, items per CPU-second hardly moves when other work shares the machine: it is what the
    server would serve with its core to itself. (Ray's daemons leave the session but stay descendants.)
    """
    stats: dict[int, tuple[int, int, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the name: state, ppid, pgrp, session, ...; utime and stime are the 12th and 13th.
        stats[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[3]), int(fields[11]) + int(fields[12]))
    members = {pid for pid, (_, group, session, _) in stats.items() if leader in (group, session)} | {leader}
    grew = True
    while grew:
        children = {pid for pid, (parent, _, _, _) in stats.items() if parent in members} - members
        members |= children
        grew = bool(children)
    return sum(stats[pid][3] for pid in members if pid in stats) / os.sysconf("SC_CLK_TCK")


def load(server: Server, port: int, warmup: float, duration: float) -> dict[str, object]:
    cmd = [
        "taskset", "-c", str(CLIENT_CORE), sys.executable, "-m", "benchmarks.batching.load", str(port), server.path,
        json.dumps(server.body), "--connections", "64", "--warmup", str(warmup), "--duration", str(duration),
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=warmup + duration + 120)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def ceiling(seconds: float) -> dict[str, dict[str, float]]:
    cmd = ["taskset", "-c", str(SERVER_CORE), sys.executable, "-m", "benchmarks.batching.model", str(seconds)]
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True, check=True)
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds of load before that")
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers to run")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench_batching"), help="servers' output")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is required: apt-get install util-linux")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the server, one for the clients")
    args.logs.mkdir(parents=True, exist_ok=True)

    print(f"model ceiling (encode in-process, core {SERVER_CORE}, 1 thread):")
    top = ceiling(3.0)
    for size, rate in top["wall"].items():
        print(f"  batch {size:>3}: {rate:7.1f} sentences/s  {top['cpu'][size]:7.1f} sentences/CPU-s")
    best_ceiling = max(top["wall"].values())
    best_cpu_ceiling = max(top["cpu"].values())

    results: dict[str, dict[str, object]] = {}
    for name in args.only.split(","):
        server = SERVERS[name]
        port = free_port()
        print(f"\n{name}: starting ...", flush=True)
        try:
            proc = start(server, port, args.logs / f"{name}.log")
        except RuntimeError as exc:
            print(f"{name}: FAILED to start: {exc}")
            continue
        try:
            before = cpu_seconds(proc.pid)
            results[name] = load(server, port, args.warmup, args.duration)
            used = cpu_seconds(proc.pid) - before
            results[name]["per_cpu_second"] = float(results[name]["all_ok"]) / used if used else float("nan")
        except subprocess.SubprocessError as exc:
            print(f"{name}: load FAILED: {exc}")
        finally:
            stop(proc)
        if name in results:
            r = results[name]
            print(f"{name}: {r['per_second']:.1f} items/s  p50 {r['p50'] * 1000:.0f} ms  p99 {r['p99'] * 1000:.0f} ms  "
                  f"{r['per_cpu_second']:.1f} items/CPU-s  errors {r['errors']}", flush=True)  # fmt: skip

    print(
        f"\n{'server':<15}{'items/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'of ceil.':>10}{'items/CPU-s':>13}{'of ceil.':>10}"
    )
    for name, r in results.items():
        rate = float(r["per_second"])
        print(f"{name:<15}{rate:>9.1f}{float(r['p50']) * 1000:>9.0f}{float(r['p99']) * 1000:>9.0f}"
              f"{rate / best_ceiling:>10.2f}{float(r['per_cpu_second']):>13.1f}"
              f"{float(r['per_cpu_second']) / best_cpu_ceiling:>10.2f}")  # fmt: skip
    chute = results.get("chute-batched")
    peers = {n: r for n, r in results.items() if n in ("litserve", "ray", "bentoml")}
    if chute is None:
        return 1
    rate = float(chute["per_second"])
    verdict = True
    if peers:
        best = max(peers, key=lambda n: float(peers[n]["per_second"]))
        ratio = rate / float(peers[best]["per_second"])
        verdict &= ratio >= 1.2
        print(f"\nbatched chute / best peer ({best}): {ratio:.2f}x items/s (target >= 1.20)")
        frugal = max(peers, key=lambda n: float(peers[n]["per_cpu_second"]))
        ratio = float(chute["per_cpu_second"]) / float(peers[frugal]["per_cpu_second"])
        print(f"batched chute / best peer ({frugal}) per server CPU-second: {ratio:.2f}x (steadier when shared)")
    if "litserve" in results:
        ours, theirs = float(chute["p99"]), float(results["litserve"]["p99"])
        verdict &= ours <= theirs
        print(f"batched chute p99 {ours * 1000:.0f} ms vs LitServe {theirs * 1000:.0f} ms (target: no higher)")
    if "chute" in results:
        ratio = rate / float(results["chute"]["per_second"])
        verdict &= ratio >= 2.2
        print(f"batched chute / unbatched cord: {ratio:.2f}x (target >= 2.20)")
        ratio = float(chute["per_cpu_second"]) / float(results["chute"]["per_cpu_second"])
        print(f"batched chute / unbatched cord per server CPU-second: {ratio:.2f}x")
    print(f"batched chute / model ceiling: {rate / best_ceiling:.2f} per second, "
          f"{float(chute['per_cpu_second']) / best_cpu_ceiling:.2f} per CPU-second")  # fmt: skip
    print("PASS" if verdict else "FAIL (on a loaded machine, rerun in a quiet window before concluding)")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
