"""A chute whose cords batch concurrent calls (README, "Dynamic batching").

``/embed`` takes one text per request; ``/embed_many`` takes a list of texts per request, whose items
are counted one by one and split across batches when there are more than a batch holds. The "model"
is a stand-in that turns each text into a small vector; a real one (sentence-transformers, say) runs
its forward pass on the whole batch at once.

    chutes run examples.batching:chute
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chutes.chute import Chute

chute = Chute(username="examples", name="batching", image="python:3.11", concurrency=1)


class EmbedInput(BaseModel):
    """One text to embed."""

    text: str = Field(max_length=10_000)


class EmbedOutput(BaseModel):
    """The text's vector."""

    embedding: list[float]


def vectors(texts: list[str]) -> list[list[float]]:
    """The stand-in model: one call for the whole batch, as a real model's forward pass."""
    return [
        [float(len(text)), float(len(text.split())), float(sum(c in "aeiou" for c in text.lower()))] for text in texts
    ]


@chute.cord(public_api_path="/embed", max_batch_size=32, batch_wait_ms=5.0)
async def embed(self: Any, inputs: list[EmbedInput]) -> list[EmbedOutput]:
    """Embed one text per request; concurrent requests share one model call."""
    return [EmbedOutput(embedding=vector) for vector in vectors([item.text for item in inputs])]


@chute.cord(public_api_path="/embed_many", max_batch_size=32, batch_field="texts")
def embed_many(self: Any, texts: list[str]) -> list[EmbedOutput]:
    """Embed every text of the request, in order (a plain function: it runs in a worker thread)."""
    return [EmbedOutput(embedding=vector) for vector in vectors(texts)]
