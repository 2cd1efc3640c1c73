"""Ray Serve serving the model with ``@serve.batch``.

python -m benchmarks.batching.ray_app PORT
"""

from __future__ import annotations

import sys
import time
from typing import Any

import ray
from ray import serve
from starlette.requests import Request

from benchmarks.batching.model import encode, load


# max_ongoing_requests must exceed the batch size or batches can never fill (Ray's batching guide).
@serve.deployment(max_ongoing_requests=128, ray_actor_options={"num_cpus": 1})
class Embedder:
    def __init__(self) -> None:
        self.model = load()

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)  # type: ignore[misc]
    async def embed(self, texts: list[str]) -> list[dict[str, Any]]:
        return [{"embedding": vector} for vector in encode(self.model, texts)]

    async def __call__(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        return await self.embed(body["text"])  # type: ignore[no-any-return]


if __name__ == "__main__":
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(Embedder.bind(), route_prefix="/", blocking=False)
    while True:
        time.sleep(3600)
