"""Handlers of the hello chute (``specs/hello/chute.toml``): text in, text out, on a CPU."""

from __future__ import annotations

from typing import Any


async def echo(self: Any, text: str) -> dict[str, str]:
    """Return the text unchanged."""
    return {"text": text}


def reverse(self: Any, text: str) -> dict[str, str]:
    """Return the text reversed, character by character."""
    return {"text": text[::-1]}


def count(self: Any, text: str) -> dict[str, int]:
    """Count the words and characters of the text."""
    return {"words": len(text.split()), "characters": len(text)}
