"""The inference engine behind an LLM template: the small interface its cords need, and how it is loaded.

A template never imports its engine package (``vllm``, ``sglang``, ...) at import time: the package is
imported by the chute's startup hook, through an engine factory. Tests and custom deployments pass their
own factory and get the same cords over any object that satisfies :class:`Engine`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chutes.errors import StartupError

if TYPE_CHECKING:
    from chutes.chute import Chute

__all__ = [
    "Engine",
    "EngineFactory",
    "EngineNotInstalledError",
    "Sampling",
    "TokenizerMethods",
    "import_engine_package",
]


@dataclass(frozen=True, slots=True)
class Sampling:
    """How to sample one completion; engine adapters translate it into their own parameters.

    Attributes:
        max_tokens: Most tokens to generate, or None for the engine's limit (the context length).
        temperature: Randomness, 0 (greedy) to 2.
        top_p: Nucleus sampling mass, 0 to 1.
        stop: Strings that end the completion (not included in it).
        seed: Seed for reproducible sampling, or None.
        presence_penalty: OpenAI presence penalty, -2 to 2.
        frequency_penalty: OpenAI frequency penalty, -2 to 2.
    """

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = field(default=())
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    @classmethod
    def of(cls, **options: Any) -> Sampling:
        """Build from keyword options, as ``chute.generate(prompt, max_tokens=64)`` passes them.

        Raises:
            TypeError: An option that is not a field of :class:`Sampling`.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown sampling option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        stop = options.get("stop")
        if isinstance(stop, str):
            options["stop"] = (stop,)
        elif stop is not None:
            options["stop"] = tuple(stop)
        else:
            options.pop("stop", None)
        return cls(**options)


@runtime_checkable
class Engine(Protocol):
    """What an LLM template needs from its inference engine.

    Optional capabilities, used when present: ``apply_chat_template(messages) -> str | None`` (the
    model's own chat template; None when the model has none), ``count_tokens(text) -> int`` (exact
    usage numbers) and ``async close()`` (called at shutdown).
    """

    async def generate(self, prompt: str, sampling: Sampling) -> str:
        """Return the whole completion of ``prompt``."""
        ...

    def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
        """Yield the completion of ``prompt`` piece by piece, as the engine produces it."""
        ...


class TokenizerMethods:
    """The optional :class:`Engine` capabilities over a Hugging Face tokenizer kept in ``_tokenizer`` (or None)."""

    _tokenizer: Any

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str | None:
        """Render ``messages`` with the model's chat template; None when the model has none (e.g. gpt2)."""
        if self._tokenizer is None or not getattr(self._tokenizer, "chat_template", None):
            return None
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def count_tokens(self, text: str) -> int | None:
        """The number of tokens in ``text``; None without a tokenizer."""
        if self._tokenizer is None:
            return None
        return len(self._tokenizer.encode(text, add_special_tokens=False))


EngineFactory = Callable[["Chute"], "Engine | Awaitable[Engine]"]
"""Builds the engine of a chute at startup; may be a plain or an async function."""


class EngineNotInstalledError(ImportError, StartupError):
    """The package a template's engine needs is not installed where the chute starts."""

    def __init__(self, template: str, package: str, install: str | None = None) -> None:
        self.template = template
        self.package = package
        command = install or f"pip install {package}"
        super().__init__(
            f"the {template} template needs the {package!r} package, which is not installed: "
            f"run `{command}` (or use an image that has it)",
            name=package,
        )


def import_engine_package(template: str, module: str, install: str | None = None) -> ModuleType:
    """Import ``module`` for ``template``, or raise :class:`EngineNotInstalledError` naming what to install.

    Only the package's own absence is translated: an ``ImportError`` raised inside an installed package
    (a missing CUDA library, a version clash) propagates with its traceback, since that is the real cause.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.partition(".")[0]
        if exc.name not in (module, top):
            raise
        raise EngineNotInstalledError(template, top, install) from None
