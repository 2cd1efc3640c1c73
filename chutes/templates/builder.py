"""What every standard template's builder shares: defaults, the chute's name, and its module."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chutes.errors import ChuteDefinitionError
from chutes.image import Image
from chutes.name import suggest_name
from chutes.node_selector import NodeSelector

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.templates.engine_chute import EngineChute, EngineKind

__all__ = ["adopt_caller", "build_engine_chute", "chute_name", "default_node_selector"]


def default_node_selector() -> NodeSelector:
    """Hardware for a typical 7B-class model in 16-bit precision: one GPU with at least 24 GB."""
    return NodeSelector(gpu_count=1, min_vram_gb_per_gpu=24)


def chute_name(name: str | None, model_name: object) -> str:
    """The chute's name: ``name`` when given, else derived from the model (``org/Model-1.5`` → ``org-model-1-5``)."""
    if name is not None:
        return name
    if not isinstance(model_name, str) or not model_name.strip():
        raise ChuteDefinitionError(f"model_name must be a model id like 'gpt2' or 'org/model', got {model_name!r}")
    derived = suggest_name(model_name)
    if derived is None:
        raise ChuteDefinitionError(f"no chute name can be derived from model_name {model_name!r}: pass name=...")
    return derived


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


def build_engine_chute(
    *,
    kind: EngineKind,
    caller_globals: dict[str, Any],
    cords: Sequence[tuple[str, str, str]],
    username: str,
    name: str | None,
    model_name: str,
    image: str | Image,
    tagline: str,
    readme: str,
    node_selector: NodeSelector | dict[str, Any] | None,
    concurrency: int,
    engine_args: Mapping[str, Any] | str | None,
    engine_command: str | Sequence[str] | None,
    revision: str | None,
    what: str,
    **kwargs: Any,
) -> EngineChute:
    """An :class:`EngineChute` with its engine's lifecycle hooks and a passthrough cord per ``(method, path, doc)``."""
    from chutes.templates.engine_chute import EngineChute

    chute = EngineChute(
        username,
        chute_name(name, model_name),
        image,
        kind=kind,
        model_name=model_name,
        engine_args=engine_args,
        engine_command=engine_command,
        tagline=tagline or f"{model_name} behind {what} ({kind.template})",
        readme=readme or _default_readme(model_name, kind.template, what, cords),
        standard_template=kind.template,
        revision=revision,
        node_selector=default_node_selector() if node_selector is None else node_selector,
        concurrency=concurrency,
        **kwargs,
    )
    adopt_caller(chute, caller_globals)
    chute.on_startup()(EngineChute.start_engine)
    chute.on_shutdown()(EngineChute.stop_engine)
    for method, path, doc in cords:
        chute.passthrough_cord(path, method, doc)
    return chute


def _default_readme(model_name: str, template: str, what: str, cords: Sequence[tuple[str, str, str]]) -> str:
    endpoints = "".join(f"- `{method} {path}`: {doc}\n" for method, path, doc in cords)
    return (
        f"# {model_name}\n\n`{model_name}` served by {template} behind {what}: point any OpenAI client at "
        f"this chute.\n\n{endpoints}"
    )
