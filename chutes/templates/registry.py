"""Where each standard template's builder lives, known without importing any template.

Loading a spec imports only the template it names; the spec's schema learns a template's keys from its
builder's signature, read from the module's source (``ast``) rather than by importing it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

TEMPLATES: dict[str, str] = {
    "vllm": "chutes.templates.vllm:build_vllm_chute",
    "sglang": "chutes.templates.sglang:build_sglang_chute",
    "embedding": "chutes.templates.embedding:build_embedding_chute",
    "diffusion": "chutes.templates.diffusion:build_diffusion_chute",
}
"""Each template's builder, as ``module:function``, by its ``standard_template`` name."""


def template_names() -> tuple[str, ...]:
    """The names of the standard templates."""
    return tuple(TEMPLATES)


def builder(name: str) -> Callable[..., Any]:
    """The builder of template ``name``, its module imported now (``KeyError`` for an unknown name)."""
    module, function = TEMPLATES[name].split(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return found


@cache
def builder_parameters(name: str) -> tuple[str, ...]:
    """The named parameters of template ``name``'s builder, read from its source without importing it."""
    module, function = TEMPLATES[name].split(":")
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin is not None:
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == function:
                args = node.args
                return tuple(arg.arg for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs))
    # Not a plain function in its module (made by a factory, say): ask the imported object.
    parameters = inspect.signature(builder(name)).parameters.values()
    return tuple(p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
