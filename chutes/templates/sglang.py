"""The SGLang standard template: SGLang's own OpenAI-compatible server behind passthrough cords."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.builder import build_engine_chute
from chutes.templates.engine_chute import EngineChute, EngineKind

__all__ = ["DEFAULT_SGLANG_IMAGE", "SGLANG", "SGLANG_CORDS", "build_sglang_chute"]

DEFAULT_SGLANG_IMAGE = "lmsysorg/sglang:v0.4.6.post1-cu124"
"""SGLang's official image: CUDA, PyTorch and SGLang preinstalled."""

SGLANG = EngineKind(
    template="sglang",
    module="sglang.launch_server",
    model_flag="--model-path",
    install="pip install 'sglang[all]'",
)
"""SGLang's OpenAI-compatible server."""

SGLANG_CORDS = (
    ("POST", "/v1/chat/completions", "chat completions, `stream: true` for server-sent events"),
    ("POST", "/v1/completions", "text completions"),
    ("GET", "/v1/models", "the served model"),
)
"""The SGLang template's cords, each forwarded to the same path of SGLang's server."""


def build_sglang_chute(
    username: str,
    name: str | None = None,
    model_name: str = "",
    image: str | Image = DEFAULT_SGLANG_IMAGE,
    tagline: str = "",
    readme: str = "",
    node_selector: NodeSelector | dict[str, Any] | None = None,
    concurrency: int = 32,
    engine_args: Mapping[str, Any] | str | None = None,
    revision: str | None = None,
    engine_command: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> EngineChute:
    """Build a chute serving ``model_name`` with SGLang's own OpenAI-compatible server.

    Same as :func:`~chutes.templates.vllm.build_vllm_chute` (hooks, ``generate``, passthrough) with
    SGLang's server (``python -m sglang.launch_server``) and without ``/tokenize`` and ``/detokenize``.

    Args:
        username: Owner of the chute.
        name: Name of the chute; derived from ``model_name`` when left out.
        model_name: The model to serve: a Hugging Face id or a path.
        image: The Docker image; SGLang's official image by default.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default lists the endpoints.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests forwarded at once (SGLang batches them).
        engine_args: SGLang server flags: a dict (``{"context_length": 4096}``) or a command-line string.
        revision: The model's revision, also the chute's revision.
        engine_command: The command that starts SGLang's server; ``python -m sglang.launch_server`` by default.
        **kwargs: Other :class:`~chutes.chute.Chute` arguments.
    """
    return build_engine_chute(
        kind=SGLANG,
        caller_globals=sys._getframe(1).f_globals,
        cords=SGLANG_CORDS,
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
