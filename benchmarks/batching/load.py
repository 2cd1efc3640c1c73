"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending one request at a time.

    python -m benchmarks.batching.load PORT PATH BODY [--connections 64] [--warmup 5] [--duration 15]

Prints one JSON object: responses counted in the measured window, per-second rate, p50/p99 latency and
any non-200 statuses. Small enough to stay far below one core at a few hundred requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from time import perf_counter


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length is not None:
        return status, await reader.readexactly(length)
    if not chunked:
        return status, b""
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return status, b"".join(parts)
        parts.append(data[:-2])


async def _client(
    port: int, request: bytes, start: float, stop: float, latencies: list[float], bad: dict[int, int], total: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            sent = perf_counter()
            if sent >= stop:
                return
            writer.write(request)
            status, _ = await _read_response(reader)
            done = perf_counter()
            total[0] += status == 200
            if start <= sent and done <= stop:
                if status == 200:
                    latencies.append(done - sent)
                else:
                    bad[status] = bad.get(status, 0) + 1
    finally:
        writer.close()


async def run(port: int, path: str, body: bytes, connections: int, warmup: float, duration: float) -> dict[str, object]:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    bad: dict[int, int] = {}
    total = [0]
    start = perf_counter() + warmup
    stop = start + duration
    await asyncio.gather(*(_client(port, request, start, stop, latencies, bad, total) for _ in range(connections)))
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {
        "ok": len(latencies),
        "per_second": len(latencies) / duration,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "errors": bad,
        "all_ok": total[0],  # warm-up included: to set against the server's CPU time over the whole run
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("body")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.port, args.path, args.body.encode(), args.connections, args.warmup, args.duration))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
