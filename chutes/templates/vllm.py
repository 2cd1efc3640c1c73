"""The vLLM standard template: ``build_vllm_chute`` serves a model with vLLM behind OpenAI-compatible cords."""

from __future__ import annotations

import inspect
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.engine import Engine, Sampling, TokenizerMethods, import_engine_package
from chutes.templates.llm import LLMChute, build_llm_chute

__all__ = ["DEFAULT_VLLM_IMAGE", "VLLMEngine", "build_vllm_chute"]

DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
"""vLLM's official image: CUDA, PyTorch and vLLM preinstalled."""


class VLLMEngine(TokenizerMethods):
    """The :class:`~chutes.templates.engine.Engine` over vLLM's ``AsyncLLMEngine``."""

    def __init__(self, engine: Any, sampling_params: Callable[..., Any], tokenizer: Any = None) -> None:
        self._engine = engine
        self._sampling_params = sampling_params
        self._tokenizer = tokenizer

    @classmethod
    async def load(cls, chute: LLMChute) -> VLLMEngine:
        """Start vLLM for ``chute.model_name`` with ``chute.engine_args`` (the vLLM engine arguments).

        Raises:
            EngineNotInstalledError: vLLM is not installed.
        """
        vllm = import_engine_package("vllm", "vllm")
        args: dict[str, Any] = {"model": chute.model_name}
        if chute.revision is not None:
            args["revision"] = chute.revision
        args |= chute.engine_args
        engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**args))
        tokenizer = engine.get_tokenizer()
        if inspect.isawaitable(tokenizer):
            tokenizer = await tokenizer
        return cls(engine, vllm.SamplingParams, tokenizer)

    def _params(self, sampling: Sampling) -> Any:
        return self._sampling_params(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=list(sampling.stop) or None,
            seed=sampling.seed,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
        )

    async def generate(self, prompt: str, sampling: Sampling) -> str:
        """Return the whole completion of ``prompt``."""
        return "".join([piece async for piece in self.stream(prompt, sampling)])

    async def stream(self, prompt: str, sampling: Sampling) -> AsyncIterator[str]:
        """Yield the completion of ``prompt`` as vLLM produces it."""
        sent = 0
        # vLLM reports the text generated so far with each step; the new part is what was not sent yet.
        async for output in self._engine.generate(prompt, self._params(sampling), uuid.uuid4().hex):
            text: str = output.outputs[0].text
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)

    async def close(self) -> None:
        """Stop vLLM's engine processes."""
        shutdown = getattr(self._engine, "shutdown", None)
        if callable(shutdown):
            result = shutdown()
            if inspect.isawaitable(result):
                await result


def build_vllm_chute(
    username: str,
    name: str,
    model_name: str,
    image: str | Image = DEFAULT_VLLM_IMAGE,
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 32,
    engine_args: dict[str, Any] | None = None,
    revision: str | None = None,
    engine_factory: Callable[[LLMChute], Engine | Awaitable[Engine]] | None = None,
    **kwargs: Any,
) -> LLMChute:
    """Build a chute serving ``model_name`` with vLLM behind OpenAI-compatible cords.

    The chute has ``POST /v1/chat/completions``, ``POST /v1/completions`` and ``GET /v1/models`` as
    soon as it is built, and ``await chute.generate(prompt, **sampling)`` for custom cords. vLLM is
    imported when the chute starts, not here.

    Example:
        >>> chute = build_vllm_chute(username="mycompany", name="custom-llm", model_name="gpt2")
        >>> sorted(cord.public_api_path for cord in chute.cords)
        ['/v1/chat/completions', '/v1/completions', '/v1/models']

    Args:
        username: Owner of the chute.
        name: Name of the chute.
        model_name: The model to serve: a Hugging Face id (``"meta-llama/Llama-3.1-8B-Instruct"``) or a path.
        image: The Docker image; vLLM's official image by default.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default lists the endpoints.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests executing at once (vLLM batches them).
        engine_args: Keyword arguments for vLLM's ``AsyncEngineArgs`` (``max_model_len``, ``dtype``, ...).
        revision: The model's revision (a Hugging Face commit or tag), also the chute's revision.
        engine_factory: Builds the engine at startup instead of vLLM (for tests or a custom engine).
        **kwargs: FastAPI arguments, as for :class:`~chutes.chute.Chute`.
    """
    return build_llm_chute(
        template="vllm",
        caller_globals=sys._getframe(1).f_globals,
        username=username,
        name=name,
        model_name=model_name,
        image=image,
        engine_factory=engine_factory or VLLMEngine.load,
        tagline=tagline,
        readme=readme,
        node_selector=node_selector,
        concurrency=concurrency,
        engine_args=engine_args,
        revision=revision,
        **kwargs,
    )
