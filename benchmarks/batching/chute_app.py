"""The chute under test: the same model behind an unbatched cord and a batched one.

uvicorn benchmarks.batching.chute_app:chute
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from benchmarks.batching.model import encode, load
from chutes.chute import Chute

# One batch (or one call) runs at a time: on one core a second would only compete for it.
chute = Chute(username="bench", name="embeddings", image="python:3.11", concurrency=1)


class EmbedInput(BaseModel):
    text: str


class EmbedOutput(BaseModel):
    embedding: list[float]


@chute.on_startup()
async def load_model(self: Any) -> None:
    self.model = load()


@chute.cord(public_api_path="/embed")
def embed(self: Any, request: EmbedInput) -> EmbedOutput:
    """One sentence per model call."""
    return EmbedOutput(embedding=encode(self.model, [request.text])[0])


@chute.cord(public_api_path="/embed_batched", max_batch_size=32, batch_wait_ms=10.0)
def embed_batched(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
    """Concurrent sentences gathered into one model call (runs in a worker thread)."""
    vectors = encode(self.model, [item.text for item in inputs])
    return [EmbedOutput(embedding=vector) for vector in vectors]
