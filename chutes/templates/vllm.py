"""The vLLM standard template: vLLM's own OpenAI-compatible server behind passthrough cords."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.builder import build_engine_chute
from chutes.templates.engine_chute import EngineChute, EngineKind

__all__ = ["DEFAULT_VLLM_IMAGE", "VLLM", "VLLM_CORDS", "build_vllm_chute"]

DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
"""vLLM's official image: CUDA, PyTorch and vLLM preinstalled."""

VLLM = EngineKind(
    template="vllm",
    # Not `vllm serve`: the module is the same server, and the only entry point of every vLLM build.
    module="vllm.entrypoints.openai.api_server",
    model_flag="--model",
    install="pip install vllm",
)
"""vLLM's OpenAI-compatible server."""

VLLM_CORDS = (
    ("POST", "/v1/chat/completions", "chat completions, `stream: true` for server-sent events"),
    ("POST", "/v1/completions", "text completions"),
    ("GET", "/v1/models", "the served model"),
    ("POST", "/tokenize", "a prompt or conversation as token ids"),
    ("POST", "/detokenize", "token ids as text"),
)
"""The vLLM template's cords, each forwarded to the same path of vLLM's server: (method, path, description)."""


def build_vllm_chute(
    username: str,
    name: str | None = None,
    model_name: str = "",
    image: str | Image = DEFAULT_VLLM_IMAGE,
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 32,
    engine_args: Mapping[str, Any] | str | None = None,
    revision: str | None = None,
    engine_command: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> EngineChute:
    """Build a chute serving ``model_name`` with vLLM's own OpenAI-compatible server.

    The chute forwards ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``,
    ``POST /tokenize`` and ``POST /detokenize`` untouched to vLLM, which it starts at startup on a
    private loopback port; ``await chute.generate(prompt, **sampling)`` and ``chute.stream_generate``
    call the model from custom cords.

    Example:
        >>> chute = build_vllm_chute(username="mycompany", model_name="unsloth/Llama-3.2-1B-Instruct")
        >>> chute.name
        'unsloth-llama-3-2-1b-instruct'

    Args:
        username: Owner of the chute.
        name: Name of the chute; derived from ``model_name`` when left out.
        model_name: The model to serve: a Hugging Face id (``"meta-llama/Llama-3.1-8B-Instruct"``) or a path.
        image: The Docker image; vLLM's official image by default.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default lists the endpoints.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests forwarded at once (vLLM batches them).
        engine_args: vLLM server flags: a dict (``{"max_model_len": 4096, "enable_auto_tool_choice": True}``)
            or a command-line string (``"--max-model-len 4096"``).
        revision: The model's revision (a Hugging Face commit or tag), also the chute's revision.
        engine_command: The command that starts vLLM's server (for a venv of its own, or a wrapper);
            ``python -m vllm.entrypoints.openai.api_server`` with the chute's Python by default.
        **kwargs: Other :class:`~chutes.chute.Chute` arguments.
    """
    return build_engine_chute(
        kind=VLLM,
        caller_globals=sys._getframe(1).f_globals,
        cords=VLLM_CORDS,
        username=username,
        name=name,
        model_name=model_name,
        image=image,
        tagline=tagline,
        readme=readme,
        node_selector=node_selector,
        concurrency=concurrency,
        engine_args=engine_args,
        engine_command=engine_command,
        revision=revision,
        what="an OpenAI-compatible API",
        **kwargs,
    )
