"""What every standard template's builder shares: argument checks, defaults and loading the engine."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chutes.errors import ChuteDefinitionError
from chutes.node_selector import NodeSelector

if TYPE_CHECKING:
    from chutes.chute import Chute

__all__ = ["adopt_caller", "check_engine_args", "default_node_selector", "load_engine"]


def default_node_selector() -> NodeSelector:
    """Hardware for a typical 7B-class model in 16-bit precision: one GPU with at least 24 GB."""
    return NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24)


def check_engine_args(value: object, key: str) -> dict[str, Any]:
    """Validate keyword arguments for an engine: a dict with string keys, not overriding the model."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ChuteDefinitionError(f"{key} must be a dict of keyword arguments, got {value!r}", (key,))
    for reserved in ("model", "model_path"):
        if reserved in value:
            raise ChuteDefinitionError(f"{key} must not set {reserved!r}: pass the model as model_name", (key,))
    return dict(value)


def check_model_name(value: object) -> str:
    """A model name is a non-empty string without whitespace, such as ``"gpt2"`` or ``"org/model"``."""
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ChuteDefinitionError(
            f"model_name must be a model id like 'gpt2' or 'org/model', got {value!r}", ("model_name",)
        )
    return value


def check_factory(value: object, key: str) -> None:
    """A factory must be callable (or None for the template's default)."""
    if value is not None and not callable(value):
        raise ChuteDefinitionError(f"{key} must be a callable taking the chute, got {value!r}", (key,))


def adopt_caller(chute: Chute, caller_globals: dict[str, Any]) -> None:
    """Make the module that called the template builder the chute's module, as if it built the ``Chute`` itself.

    ``Chute.__init__`` records the module that constructs it (for ``module_name`` and for resolving
    ``def helper(self, ...)`` functions as ``self.helper``); for a template that module is the
    template's, so the builder hands over its own caller instead.
    """
    chute.module_name = caller_globals.get("__name__")
    namespaces: list[dict[str, Any]] = chute._namespaces
    if all(namespace is not caller_globals for namespace in namespaces):
        namespaces.insert(0, caller_globals)


async def load_engine(factory: Callable[[Any], Any], chute: Chute) -> Any:
    """Call an engine factory with the chute; a factory may be a plain or an async function."""
    made = factory(chute)
    if inspect.isawaitable(made):
        made = await made
    return made
