"""Handlers of the autoscaled chute (``specs/autoscaled/chute.toml``): CPU-only text cords."""

from __future__ import annotations

from typing import Any


async def warm_up(self: Any) -> None:
    """Build the word list once, before the pod takes requests (runs first: priority 10)."""
    self.stopwords = frozenset({"a", "an", "and", "the", "of", "to"})


async def echo(self: Any, text: str) -> dict[str, str]:
    """Return the text unchanged (served at /echo, the function's name)."""
    return {"text": text}


def count(self: Any, text: str) -> dict[str, int]:
    """Count the words of the text, and those that are not stopwords."""
    words = text.lower().split()
    return {"words": len(words), "content_words": sum(word not in self.stopwords for word in words)}
