"""Standard templates: ready-made chutes for common model servers.

Each builder returns a :class:`~chutes.chute.Chute` with its cords in place, to which custom cords,
jobs and hooks can be added like to any chute::

    from chutes.templates import build_vllm_chute

    chute = build_vllm_chute(username="mycompany", name="custom-llm", model_name="gpt2")

Engine packages (vLLM, SGLang, diffusers) are imported when the chute starts, never on import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chutes.templates.registry import TEMPLATES

if TYPE_CHECKING:
    from collections.abc import Callable

    from chutes.chute import Chute
    from chutes.templates.diffusion import (
        DiffusionChute,
        ImageGenerationRequest,
        ImagePipeline,
        build_diffusion_chute,
    )
    from chutes.templates.engine import Engine, EngineNotInstalledError, Sampling
    from chutes.templates.llm import LLMChute
    from chutes.templates.sglang import build_sglang_chute
    from chutes.templates.vllm import build_vllm_chute

__all__ = [
    "BUILDERS",
    "DiffusionChute",
    "Engine",
    "EngineNotInstalledError",
    "ImageGenerationRequest",
    "ImagePipeline",
    "LLMChute",
    "Sampling",
    "build_diffusion_chute",
    "build_sglang_chute",
    "build_vllm_chute",
]

# Each name is imported from its module on first use (PEP 562), so importing one template, or the
# registry, never imports the others.
_HOMES = {
    "DiffusionChute": "chutes.templates.diffusion",
    "ImageGenerationRequest": "chutes.templates.diffusion",
    "ImagePipeline": "chutes.templates.diffusion",
    "build_diffusion_chute": "chutes.templates.diffusion",
    "Engine": "chutes.templates.engine",
    "EngineNotInstalledError": "chutes.templates.engine",
    "Sampling": "chutes.templates.engine",
    "LLMChute": "chutes.templates.llm",
    "build_sglang_chute": "chutes.templates.sglang",
    "build_vllm_chute": "chutes.templates.vllm",
}


def __getattr__(name: str) -> Any:
    if name == "BUILDERS":
        builders: dict[str, Callable[..., Chute]] = {
            template: getattr(importlib.import_module(home.split(":")[0]), home.split(":")[1])
            for template, home in TEMPLATES.items()
        }
        return builders
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chutes.templates' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
