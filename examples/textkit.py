"""Handlers of the textkit chute (``specs/textkit/chute.toml``): a toy bigram text generator.

The "model" is a table of which word follows which in a small built-in corpus: deterministic for a
given seed, loaded at startup, so the example shows every part of a chute without a model download.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from pydantic import BaseModel, Field
from starlette.websockets import WebSocket

MAX_TOKENS = 256  # a bound on every request's work: an unbounded count would let one call run forever
CORPUS = (
    "the model reads the prompt and the model writes the answer . "
    "the answer follows the prompt and the prompt starts the story . "
    "a story needs a model and a model needs a prompt ."
)


class BigramModel:
    """Which words follow which, learnt from a corpus."""

    def __init__(self, corpus: str) -> None:
        self.successors: dict[str, list[str]] = defaultdict(list)
        words = corpus.split()
        for current, following in zip(words, words[1:], strict=False):
            self.successors[current].append(following)

    @property
    def vocabulary(self) -> int:
        """How many distinct words can start a bigram."""
        return len(self.successors)

    def tokens(self, prompt: str, max_tokens: int, seed: int = 0) -> list[str]:
        """Continue ``prompt`` by up to ``max_tokens`` words, choosing among successors with ``seed``."""
        return list(self.generate(prompt, max_tokens, seed))

    def generate(self, prompt: str, max_tokens: int, seed: int = 0) -> Iterator[str]:
        """Yield the continuation word by word, each as soon as it is chosen (nothing is built up front)."""
        rng = random.Random(seed)
        # The last word is all the model needs: never split (or keep) more of a long prompt than that.
        current = prompt.rstrip().rsplit(maxsplit=1)[-1] if prompt.strip() else "the"
        for _ in range(max_tokens):
            choices = self.successors.get(current)
            if not choices:
                return
            current = rng.choice(choices)
            yield current


class GenerationInput(BaseModel):
    """A generation request."""

    prompt: str = Field(description="Text to continue.")
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS, description="Most words to add.")
    seed: int = Field(0, description="Random seed; the same seed gives the same text.")


class GenerationOutput(BaseModel):
    """A generated continuation."""

    text: str
    tokens: int


async def load_model(self: Any) -> None:
    """Build the bigram table once, before the first request."""
    self.model = BigramModel(CORPUS)
    self.requests = 0


async def unload_model(self: Any) -> None:
    """Drop the model at shutdown."""
    self.model = None


async def generate(self: Any, body: GenerationInput) -> GenerationOutput:
    """Continue the prompt."""
    self.requests += 1
    tokens = self.model.tokens(body.prompt, body.max_tokens, body.seed)
    return GenerationOutput(text=" ".join(tokens), tokens=len(tokens))


async def stream(
    self: Any, prompt: str, max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] = 8
) -> AsyncIterator[dict[str, str]]:
    """Stream the continuation word by word as server-sent events, each word sent as it is generated."""
    for token in self.model.generate(prompt, max_tokens):
        await asyncio.sleep(0)  # let the server send it (and notice a client that left) before the next
        yield {"token": token}


def stats(self: Any) -> dict[str, int]:
    """Report the model's vocabulary and the requests served."""
    return {"vocabulary": self.model.vocabulary, "requests": self.requests}


async def chat(self: Any, websocket: WebSocket) -> None:
    """Answer each message with its continuation."""
    await websocket.accept()
    while True:
        message = await websocket.receive_text()
        await websocket.send_text(" ".join(self.model.tokens(message, 6)))


def retrain(self: Any, corpus: str) -> dict[str, int]:
    """Replace the model with one learnt from ``corpus``."""
    self.model = BigramModel(corpus)
    return {"vocabulary": self.model.vocabulary}


def nightly_report(self: Any) -> dict[str, int]:
    """Summarise the day (scheduled)."""
    return stats(self)
