"""Standard templates: ready-made chutes for common model servers.

Each builder returns a :class:`~chutes.chute.Chute` with its cords in place, to which custom cords,
jobs and hooks can be added like to any chute::

    from chutes.templates import build_vllm_chute

    chute = build_vllm_chute(username="mycompany", model_name="unsloth/Llama-3.2-1B-Instruct")

The LLM and embedding templates run the engine's own OpenAI-compatible server as a supervised process
and forward requests to it; diffusion runs in-process. Engines are started or imported when the chute
starts, never on import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chutes.templates import registry as _registry

if TYPE_CHECKING:
    from collections.abc import Callable

    from chutes.chute import Chute
    from chutes.templates.diffusion import DiffusionChute, ImageGenerationRequest, ImagePipeline, build_diffusion_chute
    from chutes.templates.embedding import build_embedding_chute
    from chutes.templates.engine_chute import EngineChute, EngineKind, engine_flags
    from chutes.templates.install import EngineNotInstalledError
    from chutes.templates.sglang import build_sglang_chute
    from chutes.templates.vllm import build_vllm_chute

__all__ = [
    "BUILDERS",
    "DiffusionChute",
    "EngineChute",
    "EngineKind",
    "EngineNotInstalledError",
    "ImageGenerationRequest",
    "ImagePipeline",
    "build_diffusion_chute",
    "build_embedding_chute",
    "build_sglang_chute",
    "build_vllm_chute",
    "engine_flags",
]

# Each name is imported from its module on first use (PEP 562), so importing one template, or the
# registry, never imports the others.
_HOMES = {
    "DiffusionChute": "chutes.templates.diffusion",
    "ImageGenerationRequest": "chutes.templates.diffusion",
    "ImagePipeline": "chutes.templates.diffusion",
    "build_diffusion_chute": "chutes.templates.diffusion",
    "build_embedding_chute": "chutes.templates.embedding",
    "EngineChute": "chutes.templates.engine_chute",
    "EngineKind": "chutes.templates.engine_chute",
    "engine_flags": "chutes.templates.engine_chute",
    "EngineNotInstalledError": "chutes.templates.install",
    "build_sglang_chute": "chutes.templates.sglang",
    "build_vllm_chute": "chutes.templates.vllm",
}


def __getattr__(name: str) -> Any:
    if name == "BUILDERS":  # each template's builder by its ``standard_template`` name (imports them all)
        # (``chutes.templates.builder`` is a module: the registry's function is reached through it.)
        builders: dict[str, Callable[..., Chute]] = {
            template: _registry.builder(template) for template in _registry.TEMPLATES
        }
        return builders
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chutes.templates' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
