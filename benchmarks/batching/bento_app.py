"""BentoML serving the model with a batchable API (adaptive batching).

bentoml serve benchmarks.batching.bento_app:Embedder --port PORT
"""

from __future__ import annotations

import bentoml

from benchmarks.batching.model import encode, load


# One worker: the server has one core. No traffic.concurrency limit, so no request is turned away.
@bentoml.service(workers=1, traffic={"timeout": 120})
class Embedder:
    def __init__(self) -> None:
        self.model = load()

    # A generous latency budget so that the adaptive dispatcher never refuses a request under load.
    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=10_000)
    def embed(self, texts: list[str]) -> list[list[float]]:
        return encode(self.model, texts)
