"""Streamed tokens/s and time to first token through the vLLM template versus straight from vLLM's server.

One run starts the chute (``python -m chutes serve``) on vLLM's CPU build with the tiny test model; its
own vLLM server is the "direct" side, so both sides share one engine and differ only by the chute's
passthrough. Rounds alternate between the two, each with ``--streams`` concurrent streamed completions
of ``--tokens`` tokens (``ignore_eos``). Needs ``.venv-vllm`` (``make install-engines``).

    python benchmarks/bench_templates.py [--streams 16] [--tokens 128] [--rounds 7]

The engine is pinned to core 0 and the chute and the load generator to core 1 (``--engine-cpus``,
``--client-cpus``): vLLM's CPU build spins one OpenMP thread per core it may use, and any other process
preempting one of them stalls every step, which would charge the relay for the machine's contention.

Target: at least 0.95x the direct throughput, at most +5 ms to the first token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.template_server import served_template  # noqa: E402


async def one_stream(client: httpx.AsyncClient, url: str, headers: dict[str, str], tokens: int) -> tuple[float, int]:
    body = {"model": "tiny", "prompt": "hello", "max_tokens": tokens, "stream": True, "ignore_eos": True}
    started = time.perf_counter()
    first = 0.0
    count = 0
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                if not first:
                    first = time.perf_counter() - started
                count += 1
    return first, count


async def load(url: str, headers: dict[str, str], streams: int, tokens: int) -> tuple[float, float]:
    """Tokens per second over all streams, and the median time to first token."""
    limits = httpx.Limits(max_connections=streams * 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*(one_stream(client, url, headers, tokens) for _ in range(streams)))
        elapsed = time.perf_counter() - started
    return sum(count for _, count in results) / elapsed, statistics.median(first for first, _ in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--engine-cpus", default="0", help="cores for vLLM (taskset list); '' for no pinning")
    parser.add_argument("--client-cpus", default="1", help="cores for the chute and the load generator")
    args = parser.parse_args()
    env: dict[str, str] = {}
    prefix: list[str] = []
    if args.engine_cpus:
        env = {"BENCH_ENGINE_CPUS": args.engine_cpus, "VLLM_CPU_OMP_THREADS_BIND": args.engine_cpus}
    if args.client_cpus:
        prefix = ["taskset", "-c", args.client_cpus]
        os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    with served_template(env, prefix) as (base, engine):
        sides = {
            "vLLM direct": (
                f"http://127.0.0.1:{engine['port']}/v1/completions",
                {"Authorization": f"Bearer {engine['key']}"},
            ),
            "template": (f"{base}/v1/completions", {}),
        }
        for url, headers in sides.values():  # warm both paths up
            asyncio.run(load(url, headers, 2, 8))
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, (url, headers) in sides.items():
                figures[name].append(asyncio.run(load(url, headers, args.streams, args.tokens)))
    print(f"{args.streams} concurrent streams x {args.tokens} tokens, {args.rounds} alternating rounds (median)")
    medians = {}
    for name, rounds in figures.items():
        rate = statistics.median(r for r, _ in rounds)
        ttft = statistics.median(t for _, t in rounds)
        medians[name] = (rate, ttft)
        print(f"  {name:12s} {rate:8.0f} tokens/s   TTFT {ttft * 1000:7.1f} ms   rounds: "
              + ", ".join(f"{r:.0f}" for r, _ in rounds))  # fmt: skip
    direct, template = medians["vLLM direct"], medians["template"]
    print(f"throughput ratio (template / direct): {template[0] / direct[0]:.3f}  (target >= 0.95)")
    print(f"TTFT difference (template - direct): {(template[1] - direct[1]) * 1000:+.1f} ms  (target <= +5 ms)")


if __name__ == "__main__":
    main()
