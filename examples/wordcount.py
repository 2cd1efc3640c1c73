"""Handlers of the wordcount chute (``specs/wordcount/chute.yaml``): word frequencies."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel


class Frequencies(BaseModel):
    """The most frequent words, most frequent first."""

    words: list[tuple[str, int]]
    total: int


def top_words(self: Any, text: str, n: int = 3) -> Frequencies:
    """The ``n`` most frequent words of ``text`` (case-insensitive; ties by first appearance)."""
    counts = Counter(word.strip(".,;:!?").lower() for word in text.split())
    counts.pop("", None)
    return Frequencies(words=counts.most_common(n), total=sum(counts.values()))


async def tally(self: Any, texts: list[str]) -> dict[str, int]:
    """Count the words of many texts (a background job)."""
    return {"texts": len(texts), "words": sum(len(text.split()) for text in texts)}
