"""Dynamic batching on a real model: a batched chute cord against LitServe, Ray Serve and BentoML.

all-MiniLM-L6-v2 sentence embeddings on CPU. Each server runs pinned to one core with one torch
thread; 64 closed-loop clients on the other core each send one sentence per request. Five servers in
turn: a chute cord without batching, a batched chute cord (both with ``chutes serve``), LitServe
(``max_batch_size``/``batch_timeout``), Ray Serve (``@serve.batch``) and BentoML (a batchable API), all
at batch size 32. Also prints the model's own ceiling (``encode`` in-process at batch 8/16/32/64 on the
server's core).

The servers take turns for ``--rounds`` rounds, each started afresh; a round's ratios compare servers
measured minutes apart at most, and the medians over rounds are the headline (one round on this kind
of machine moves by 5-10 % with whatever else it does).

Needs the bench venv (``make install-bench``) and ``taskset`` (util-linux):

    .venv-bench/bin/python benchmarks/bench_batching.py [--rounds 3] [--duration 15] [--warmup 5]
        [--only chute-batched,litserve]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
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
            return [python, "-m", "chutes", "serve", "benchmarks.batching.chute_app:chute", "--host", "127.0.0.1",
                    "--port", str(port), "--log-level", "warning"]  # fmt: skip
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


def measure(name: str, logs: Path, warmup: float, duration: float) -> dict[str, object] | None:
    """Start one server, load it, stop it; its figures, or ``None`` if it failed (the reason printed)."""
    server = SERVERS[name]
    port = free_port()
    print(f"{name}: starting ...", flush=True)
    try:
        proc = start(server, port, logs / f"{name}.log")
    except RuntimeError as exc:
        print(f"{name}: FAILED to start: {exc}")
        return None
    try:
        before = cpu_seconds(proc.pid)
        result = load(server, port, warmup, duration)
        used = cpu_seconds(proc.pid) - before
        result["per_cpu_second"] = float(result["all_ok"]) / used if used else float("nan")  # type: ignore[arg-type]
    except subprocess.SubprocessError as exc:
        print(f"{name}: load FAILED: {exc}")
        return None
    finally:
        stop(proc)
    print(f"{name}: {result['per_second']:.1f} items/s  p50 {result['p50'] * 1000:.0f} ms  "  # type: ignore[operator]
          f"p99 {result['p99'] * 1000:.0f} ms  {result['per_cpu_second']:.1f} items/CPU-s  "  # type: ignore[operator]
          f"errors {result['errors']}", flush=True)  # fmt: skip
    return result


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all the servers in turn")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds of load before that")
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers to run")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bench_batching"), help="servers' output")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is required: apt-get install util-linux")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the server, one for the clients")
    names = args.only.split(",")
    if unknown := [name for name in names if name not in SERVERS]:
        raise SystemExit(f"unknown servers {unknown}; choose from {list(SERVERS)}")
    args.logs.mkdir(parents=True, exist_ok=True)

    print(f"model ceiling (encode in-process, core {SERVER_CORE}, 1 thread):")
    top = ceiling(3.0)
    for size, rate in top["wall"].items():
        print(f"  batch {size:>3}: {rate:7.1f} sentences/s  {top['cpu'][size]:7.1f} sentences/CPU-s")
    best_ceiling = max(top["wall"].values())
    best_cpu_ceiling = max(top["cpu"].values())

    rounds: list[dict[str, dict[str, object]]] = []
    for number in range(1, args.rounds + 1):
        print(f"\n-- round {number} of {args.rounds}", flush=True)
        rounds.append({name: r for name in names if (r := measure(name, args.logs, args.warmup, args.duration))})
    results = {name: [r[name] for r in rounds if name in r] for name in names}
    results = {name: runs for name, runs in results.items() if runs}

    print(f"\nmedians over {args.rounds} rounds")
    print(f"{'server':<15}{'items/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'of ceil.':>10}{'items/CPU-s':>13}{'of ceil.':>10}")
    for name, runs in results.items():
        rate, cpu = _median(runs, "per_second"), _median(runs, "per_cpu_second")
        print(f"{name:<15}{rate:>9.1f}{_median(runs, 'p50') * 1000:>9.0f}{_median(runs, 'p99') * 1000:>9.0f}"
              f"{rate / best_ceiling:>10.2f}{cpu:>13.1f}{cpu / best_cpu_ceiling:>10.2f}")  # fmt: skip
    if "chute-batched" not in results:
        return 1

    def ratios(other: str, key: str) -> list[float]:
        """The batched chute over ``other`` in each round that measured both."""
        return [float(r["chute-batched"][key]) / float(r[other][key])  # type: ignore[arg-type]
                for r in rounds if "chute-batched" in r and other in r]  # fmt: skip

    def show(label: str, values: list[float], target: float | None = None) -> bool:
        goal = f" (target >= {target:.2f})" if target is not None else ""
        print(f"{label}: {statistics.median(values):.2f}x{goal}; per round {[round(v, 2) for v in values]}")
        return target is None or statistics.median(values) >= target

    verdict = True
    peers = [name for name in ("litserve", "ray", "bentoml") if name in results]
    if peers:
        best = max(peers, key=lambda name: _median(results[name], "per_second"))
        verdict &= show(f"\nbatched chute / best peer ({best}) items/s", ratios(best, "per_second"), 1.2)
        frugal = max(peers, key=lambda name: _median(results[name], "per_cpu_second"))
        show(f"batched chute / best peer ({frugal}) per server CPU-second", ratios(frugal, "per_cpu_second"))
    if "litserve" in results:
        ours, theirs = _median(results["chute-batched"], "p99"), _median(results["litserve"], "p99")
        verdict &= ours <= theirs
        print(f"batched chute p99 {ours * 1000:.0f} ms vs LitServe {theirs * 1000:.0f} ms (target: no higher)")
    if "chute" in results:
        verdict &= show("batched chute / unbatched cord", ratios("chute", "per_second"), 2.2)
        show("batched chute / unbatched cord per server CPU-second", ratios("chute", "per_cpu_second"))
    rate, cpu = _median(results["chute-batched"], "per_second"), _median(results["chute-batched"], "per_cpu_second")
    share = f"{rate / best_ceiling:.2f} per second, {cpu / best_cpu_ceiling:.2f} per CPU-second"
    print(f"batched chute / model ceiling: {share}")
    print("PASS" if verdict else "FAIL (on a loaded machine, rerun in a quiet window before concluding)")
    return 0 if verdict else 1


if __name__ == "__main__":
    raise SystemExit(main())
