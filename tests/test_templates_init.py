"""The ``chutes.templates`` package: its public names, and that importing it loads no engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chutes.templates
from chutes.templates import BUILDERS


def test_public_names() -> None:
    assert sorted(chutes.templates.__all__) == [
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
    for name in chutes.templates.__all__:
        assert getattr(chutes.templates, name) is not None


def test_builders_by_template_name() -> None:
    for template, builder in BUILDERS.items():
        chute = builder(username="mycompany", name=f"{template}-chute", model_name="gpt2")
        assert chute.standard_template == template


def test_importing_templates_loads_no_engine_package() -> None:
    code = (
        "import sys, chutes.templates; "
        "print(sorted(m for m in ('vllm', 'sglang', 'torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    ).stdout
    assert out.strip() == "[]"
