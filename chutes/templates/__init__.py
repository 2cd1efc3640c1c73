"""Standard templates: ready-made chutes for common model servers.

Each builder returns a :class:`~chutes.chute.Chute` with its cords in place, to which custom cords,
jobs and hooks can be added like to any chute::

    from chutes.templates import build_vllm_chute

    chute = build_vllm_chute(username="mycompany", model_name="unsloth/Llama-3.2-1B-Instruct")

The LLM and embedding templates run the engine's own OpenAI-compatible server as a supervised process
and forward requests to it; diffusion runs in-process. Engines are started or imported when the chute
starts, never on import.
"""

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

BUILDERS: dict[str, Callable[..., Chute]] = {
    "vllm": build_vllm_chute,
    "sglang": build_sglang_chute,
    "embedding": build_embedding_chute,
    "diffusion": build_diffusion_chute,
}
"""Each template's builder by its ``standard_template`` name."""
