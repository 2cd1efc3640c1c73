"""The package's public names are pinned: adding or removing one is a deliberate change."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import chutes


def test_all_is_pinned() -> None:
    assert sorted(chutes.__all__) == sorted(
        [
            "Chute",
            "ChuteConfig",
            "ChuteDefinitionError",
            "Cord",
            "Image",
            "Job",
            "NodeSelector",
            "Settings",
            "Websocket",
            "__version__",
        ]
    )


def test_every_exported_name_exists_and_belongs_to_chutes() -> None:
    for name in chutes.__all__:
        member = getattr(chutes, name)
        if name != "__version__":
            assert member.__module__.startswith("chutes."), name


def test_version() -> None:
    assert chutes.__version__ == "0.1.0"


def test_reference_import_paths() -> None:
    from chutes.chute import Chute, NodeSelector
    from chutes.image import Image

    assert Chute is chutes.Chute
    assert NodeSelector is chutes.NodeSelector
    assert Image is chutes.Image


def test_import_is_light() -> None:
    # A fresh interpreter: importing the package must not pull in the serving machinery or the command
    # line; only the FastAPI face of `chute.app` (its class, its routes, its error handlers) is needed.
    code = "import sys, chutes; print(sorted(m for m in sys.modules if m.startswith(('chutes.server', 'chutes.cli'))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    ).stdout
    face = {
        "chutes.server",
        "chutes.server.app",
        "chutes.server.errors",
        "chutes.server.openapi_docs",
        "chutes.server.responses",
        "chutes.server.route",
    }
    assert set(ast.literal_eval(out)) <= face


def test_sdk_import_paths() -> None:
    """The published chutes SDK's import paths beside ours."""
    from chutes.chute import Cord, Job
    from chutes.chute import NodeSelector as SdkNodeSelector
    from chutes.chute.cord import Cord as SdkCord
    from chutes.chute.template.diffusion import build_diffusion_chute
    from chutes.chute.template.sglang import build_sglang_chute
    from chutes.chute.template.vllm import build_vllm_chute
    from chutes.templates import BUILDERS

    assert SdkNodeSelector is chutes.NodeSelector
    assert Cord is SdkCord is chutes.Cord
    assert Job is chutes.Job
    assert build_vllm_chute is BUILDERS["vllm"]
    assert build_sglang_chute is BUILDERS["sglang"]
    assert build_diffusion_chute is BUILDERS["diffusion"]
