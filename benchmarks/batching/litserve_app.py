"""LitServe serving the model with its dynamic batching (``max_batch_size``/``batch_timeout`` on the LitAPI).

python -m benchmarks.batching.litserve_app PORT
"""

from __future__ import annotations

import sys
from typing import Any

import litserve as ls

from benchmarks.batching.model import encode, load


class EmbedAPI(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.model = load()

    # Left unannotated: LitServe reads this annotation to pick the request's type, and a postponed
    # (string) annotation makes it look for a query parameter.
    def decode_request(self, request):  # type: ignore[no-untyped-def]
        return str(request["text"])

    def predict(self, texts: list[str]) -> list[list[float]]:
        return encode(self.model, texts)

    def encode_response(self, vector: list[float]) -> dict[str, Any]:
        return {"embedding": vector}


if __name__ == "__main__":
    # Documented settings for throughput: batching on the LitAPI, one inference worker on the CPU, one
    # API server process, and the ZeroMQ queue LitServe recommends for speed (fast_queue).
    api = EmbedAPI(max_batch_size=32, batch_timeout=0.01)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=False, fast_queue=True)
    port = int(sys.argv[1])
    server.run(host="127.0.0.1", port=port, num_api_servers=1, generate_client_file=False, log_level="warning")
