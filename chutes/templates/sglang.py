"""The SGLang standard template: ``build_sglang_chute`` serves a model with SGLang behind OpenAI-compatible cords."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.engine import Engine, Sampling, TokenizerMethods, import_engine_package
from chutes.templates.llm import LLMChute, build_llm_chute

__all__ = ["DEFAULT_SGLANG_IMAGE", "SGLangEngine", "build_sglang_chute"]

DEFAULT_SGLANG_IMAGE = "lmsysorg/sglang:v0.4.6.post1-cu124"
"""SGLang's official image: CUDA, PyTorch and SGLang preinstalled."""

SGLANG_INSTALL = "pip install 'sglang[all]'"


class SGLangEngine(TokenizerMethods):
    """The :class:`~chutes.templates.engine.Engine` over SGLang's offline ``sglang.Engine``."""

    def __init__(self, engine: Any, tokenizer: Any = None) -> None:
        self._engine = engine
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, chute: LLMChute) -> SGLangEngine:
        """Start SGLang for ``chute.model_name`` with ``chute.engine_args`` (SGLang server arguments).

        Raises:
            EngineNotInstalledError: SGLang is not installed.
        """
        sglang = import_engine_package("sglang", "sglang", SGLANG_INSTALL)
        args: dict[str, Any] = {"model_path": chute.model_name}
        if chute.revision is not None:
            args["revision"] = chute.revision
        args |= chute.engine_args
        engine = sglang.Engine(**args)
        tokenizer = getattr(getattr(engine, "tokenizer_manager", None), "tokenizer", None)
        return cls(engine, tokenizer)

    @staticmethod
    def _params(sampling: Sampling) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
        }
        if sampling.max_tokens is not None:
            params["max_new_tokens"] = sampling.max_tokens
        if sampling.stop:
            params["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            params["sampling_seed"] = sampling.seed
        return params

    async def generate(self, prompt: str, sampling: Sampling) -> str:
        """Return the whole completion of ``prompt``."""
        output = await self._engine.async_generate(prompt=prompt, sampling_params=self._params(sampling))
        return str(output["text"])

    async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
        """Yield the completion of ``prompt`` as SGLang produces it."""
        chunks = await self._engine.async_generate(prompt=prompt, sampling_params=self._params(sampling), stream=True)
        sent = ""
        async for chunk in chunks:
            text: str = chunk["text"]
            # Depending on its version and settings SGLang streams the text so far or only the new part.
            if text.startswith(sent):
                piece, sent = text[len(sent) :], text
            else:
                piece, sent = text, sent + text
            if piece:
                yield piece

    def close(self) -> None:
        """Stop SGLang's worker processes."""
        shutdown = getattr(self._engine, "shutdown", None)
        if callable(shutdown):
            shutdown()


def build_sglang_chute(
    username: str,
    name: str,
    model_name: str,
    image: str | Image = DEFAULT_SGLANG_IMAGE,
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 32,
    engine_args: dict[str, Any] | None = None,
    revision: str | None = None,
    engine_factory: Callable[[LLMChute], Engine | Awaitable[Engine]] | None = None,
    **kwargs: Any,
) -> LLMChute:
    """Build a chute serving ``model_name`` with SGLang behind OpenAI-compatible cords.

    Same cords, hooks and ``chute.generate`` as :func:`~chutes.templates.vllm.build_vllm_chute`; SGLang
    is imported when the chute starts, not here.

    Args:
        username: Owner of the chute.
        name: Name of the chute.
        model_name: The model to serve: a Hugging Face id or a path.
        image: The Docker image; SGLang's official image by default.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default lists the endpoints.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests executing at once (SGLang batches them).
        engine_args: Keyword arguments for ``sglang.Engine`` (``context_length``, ``mem_fraction_static``, ...).
        revision: The model's revision, also the chute's revision.
        engine_factory: Builds the engine at startup instead of SGLang (for tests or a custom engine).
        **kwargs: FastAPI arguments, as for :class:`~chutes.chute.Chute`.
    """
    return build_llm_chute(
        template="sglang",
        caller_globals=sys._getframe(1).f_globals,
        username=username,
        name=name,
        model_name=model_name,
        image=image,
        engine_factory=engine_factory or SGLangEngine.load,
        tagline=tagline,
        readme=readme,
        node_selector=node_selector,
        concurrency=concurrency,
        engine_args=engine_args,
        revision=revision,
        **kwargs,
    )
