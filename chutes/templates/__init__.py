"""Standard templates: ready-made chutes for common model servers.

Each builder returns a :class:`~chutes.chute.Chute` with its cords in place, to which custom cords,
jobs and hooks can be added like to any chute::

    from chutes.templates import build_vllm_chute

    chute = build_vllm_chute(username="mycompany", name="custom-llm", model_name="gpt2")

Engine packages (vLLM, SGLang, diffusers) are imported when the chute starts, never on import.
"""

from collections.abc import Callable

from chutes.chute import Chute
from chutes.templates.diffusion import DiffusionChute, ImageGenerationRequest, ImagePipeline, build_diffusion_chute
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

BUILDERS: dict[str, Callable[..., Chute]] = {
    "vllm": build_vllm_chute,
    "sglang": build_sglang_chute,
    "diffusion": build_diffusion_chute,
}
"""Each template's builder by its ``standard_template`` name."""
