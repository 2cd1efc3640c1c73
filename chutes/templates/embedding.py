"""The embedding standard template: vLLM's pooling runner behind passthrough cords (``/v1/embeddings``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from chutes.image import Image
from chutes.node_selector import NodeSelector
from chutes.templates.builder import build_engine_chute
from chutes.templates.engine_chute import EngineChute, EngineKind
from chutes.templates.vllm import DEFAULT_VLLM_IMAGE, VLLM

__all__ = ["EMBEDDING", "EMBEDDING_CORDS", "build_embedding_chute"]

EMBEDDING = EngineKind(
    template="embedding",
    module=VLLM.module,
    model_flag=VLLM.model_flag,
    install=VLLM.install,
    default_flags=("--runner", "pooling"),
)
"""vLLM's OpenAI-compatible server with its pooling runner: embeddings instead of generation."""

EMBEDDING_CORDS = (
    ("POST", "/v1/embeddings", "embeddings of one text, a list of texts or token ids"),
    ("GET", "/v1/models", "the served model"),
)
"""The embedding template's cords, each forwarded to the same path of vLLM's server."""


def build_embedding_chute(
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
    """Build a chute serving embeddings of ``model_name`` (``POST /v1/embeddings``) with vLLM's pooling runner.

    Example:
        >>> chute = build_embedding_chute(username="me", model_name="sentence-transformers/all-MiniLM-L6-v2")
        >>> chute.name
        'sentence-transformers-all-minilm-l6-v2'

    Args:
        username: Owner of the chute.
        name: Name of the chute; derived from ``model_name`` when left out.
        model_name: The embedding model: a Hugging Face id or a path.
        image: The Docker image; vLLM's official image by default.
        tagline: One-line description; a default names the model.
        readme: Markdown for the chute's users; a default lists the endpoints.
        node_selector: Hardware; by default one GPU with at least 24 GB.
        concurrency: Requests forwarded at once (vLLM batches them).
        engine_args: vLLM server flags, a dict or a command-line string (``--runner pooling`` is set).
        revision: The model's revision, also the chute's revision.
        engine_command: The command that starts vLLM's server (see ``build_vllm_chute``).
        **kwargs: Other :class:`~chutes.chute.Chute` arguments.
    """
    return build_engine_chute(
        kind=EMBEDDING,
        caller_globals=sys._getframe(1).f_globals,
        cords=EMBEDDING_CORDS,
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
        what="an OpenAI-compatible embeddings API",
        **kwargs,
    )
