"""Whole-server metrics under ``serve --workers N``: every worker's samples in one folder, merged at scrape.

Prometheus-client's multiprocess mode, done for our own collectors too (cord latency is kept in plain
integers on the hot path, which that mode cannot see): each worker writes its samples to
``CHUTES_METRICS_DIR/<pid>.json`` every second and when scraped; ``/_metrics`` in any worker answers
with all of them merged. Counters and histograms are summed over every worker that ever wrote (a
restarted worker's counts stay counted); gauges are summed over the live workers (in-flight, queued,
``chutes_concurrency`` the server's total capacity), except the ones every worker reports alike (the
job queue, read from the store) or that are instants (last success), whose maximum is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from chutes.pids import pid_alive

__all__ = ["ENV", "SharedMetrics"]

ENV: Final = "CHUTES_METRICS_DIR"
INTERVAL: Final = 1.0
_MAX_GAUGES: Final = frozenset({"chutes_job_runs_queued", "chutes_job_last_success_timestamp_seconds"})


def snapshot(registry: CollectorRegistry) -> list[dict[str, Any]]:
    """The registry's families as JSON-able data (``_created`` samples left out: they cannot be merged)."""
    families = []
    for family in registry.collect():
        samples = [
            [sample.name, sample.labels, sample.value]
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]
        families.append({"name": family.name, "type": family.type, "help": family.documentation, "samples": samples})
    return families


class _Merged:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def merge(snapshots: list[tuple[bool, list[dict[str, Any]]]]) -> list[Metric]:
    """Merge (alive, families) snapshots of several workers into families, by the rules above."""
    kinds: dict[str, tuple[str, str]] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for alive, families in snapshots:
        for family in families:
            name, kind = family["name"], family["type"]
            if kind == "gauge" and not alive:
                continue  # a dead worker's in-flight calls are not in flight
            kinds.setdefault(name, (kind, family["help"]))
            merged = values.setdefault(name, {})
            for sample, labels, value in family["samples"]:
                key = (sample, tuple(sorted(labels.items())))
                if kind == "gauge" and name in _MAX_GAUGES:
                    merged[key] = max(merged.get(key, value), value)
                else:
                    merged[key] = merged.get(key, 0.0) + value
    result = []
    for name, (kind, documentation) in kinds.items():
        metric = Metric(name, documentation, kind)
        for (sample, labels), value in values[name].items():
            metric.add_sample(sample, dict(labels), value)
        result.append(metric)
    return result


class SharedMetrics:
    """One worker's side of the shared folder: writing its samples, merging everyone's."""

    def __init__(self, folder: Path, registry: CollectorRegistry) -> None:
        self.folder = folder
        self.registry = registry
        self.path = folder / f"{os.getpid()}.json"
        self._task: asyncio.Task[None] | None = None

    def write(self) -> None:
        """Write this worker's samples (atomically: a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(snapshot(self.registry)))
        os.replace(partial, self.path)

    def render(self) -> bytes:
        """The exposition of the whole server: every worker's samples merged."""
        self.write()
        snapshots = []
        for path in sorted(self.folder.glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                snapshots.append((pid_alive(int(path.stem)), json.loads(path.read_text())))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(merge(snapshots)))
        return generate_latest(registry)

    def start(self) -> None:
        """Write the samples every second from now on (so a scrape served by another worker sees them)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="chutes-shared-metrics")

    async def stop(self) -> None:
        """Stop writing, after a last write."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(OSError):
            self.write()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.write()
            await asyncio.sleep(INTERVAL)
