"""Standard templates in a spec: building a ``[template]`` chute, and reading one back for export.

A ``[template]`` table is a call of the template's builder (``build_vllm_chute(...)``): its keys are
the builder's own parameters, and the ``[chute]``, ``[node_selector]`` and ``[fastapi]`` tables give
the builder's matching arguments. Only keys present are passed, so the defaults are the builder's own
(its image, tagline, hardware and concurrency). Engines are imported when the chute starts, never here.

For export the builder is called again with only the required arguments; whatever the chute shares with
that reference chute is the template's, and the rest (other arguments, added cords, jobs, hooks) is the
user's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chutes.chute import Chute
from chutes.errors import ChuteDefinitionError
from chutes.spec.errors import KeyPath
from chutes.spec.model import template_keys
from chutes.spec.reference import Resolver, UnresolvedReferenceError
from chutes.templates import BUILDERS, DiffusionChute, EngineChute

__all__ = ["TemplateBase", "build_template_chute", "template_arguments", "template_base"]

Report = Callable[[KeyPath, str], None]
"""Records a problem at a key path."""


def _factory_key(template: str) -> str | None:
    """The key of an in-process template's loader reference (``pipeline_factory``); None for server templates."""
    return next((key for key in template_keys(template) if key.endswith("_factory")), None)


def _args_key(template: str) -> str:
    return next(key for key in template_keys(template) if key.endswith("_args"))


def template_arguments(
    template: dict[str, Any], resolver: Resolver, report: Report, clean: Callable[[KeyPath], bool]
) -> dict[str, Any] | None:
    """The builder's own arguments a ``[template]`` table gives, its factory resolved; None if any is wrong.

    A structurally valid factory reference is resolved even when other keys are wrong, so its problem
    is reported with the rest.

    Args:
        template: The ``[template]`` table.
        resolver: Resolves the factory reference from the spec's folder.
        report: Records a problem at a key path.
        clean: Whether a key path passed the structural check.
    """
    name = template.get("name")
    if not clean(("template", "name")) or not isinstance(name, str) or name not in BUILDERS:
        return None
    factory_key = _factory_key(name)
    factory = None
    if factory_key is not None and factory_key in template and clean(("template", factory_key)):
        factory = _resolve_factory(
            template[factory_key], resolver, lambda message: report(("template", factory_key), message)
        )
    if not clean(("template",)) or (factory_key is not None and factory_key in template and factory is None):
        return None
    kwargs = dict(template)
    if factory is not None and factory_key is not None:
        kwargs[factory_key] = factory
    return kwargs


def build_template_chute(arguments: dict[str, Any], chute_kwargs: dict[str, Any], report: Report) -> Chute | None:
    """Call the template's builder; returns its chute, or None after reporting each problem.

    Args:
        arguments: The template's name and its own arguments, from :func:`template_arguments`.
        chute_kwargs: The builder's other arguments, from ``[chute]``, ``[node_selector]`` and ``[fastapi]``.
        report: Records a problem at a key path.
    """
    kwargs = dict(arguments)
    name = kwargs.pop("name")
    if "standard_template" in chute_kwargs and chute_kwargs.pop("standard_template") != name:
        report(("chute", "standard_template"), f"the [template] table builds a {name} chute; leave this key out")
        return None
    if "revision" in chute_kwargs:
        if "revision" in kwargs:
            report(("template", "revision"), "the revision is given twice, as chute.revision and here; keep one")
            return None
        kwargs["revision"] = chute_kwargs.pop("revision")
    try:
        return BUILDERS[name](**chute_kwargs, **kwargs)
    except ValidationError as exc:
        for error in exc.errors():
            report(("chute", *error["loc"]), str(error["msg"]).removeprefix("Value error, "))
    except ChuteDefinitionError as exc:
        report(_about(str(exc), name), str(exc))
    except (ValueError, TypeError) as exc:
        report(("template",), str(exc))
    return None


def _about(message: str, template: str) -> KeyPath:
    """The key a builder's error is about: its messages start with the argument's name."""
    first = message.split(" ", 1)[0]
    if first in template_keys(template) and first != "name":
        return ("template", first)
    return ("chute", "image") if "image" in message else ("chute",)


def _resolve_factory(reference: str, resolver: Resolver, report: Callable[[str], None]) -> Any:
    try:
        found = resolver.resolve(reference)
    except UnresolvedReferenceError as exc:
        report(str(exc))
        return None
    if not callable(found) or inspect.ismodule(found):
        report(f"{reference!r} is not callable; a factory is a function taking the chute")
        return None
    return found


@dataclass(frozen=True)
class TemplateBase:
    """What export needs of a template-built chute: its ``[template]`` table and the template's own chute.

    Attributes:
        table: The ``[template]`` table: name, model_name and the arguments that differ from the defaults.
        base: The builder's chute for the same username, name and model, with every other argument left out.
    """

    table: dict[str, Any]
    base: Chute


def template_base(chute: Chute, reference_of: Callable[[Any, str], str]) -> TemplateBase | None:
    """The template ``chute`` was built with, or None when it is not a template's chute.

    Args:
        chute: Any chute.
        reference_of: Writes a factory as a reference (the exporter's, which checks it imports back).
    """
    name = chute.standard_template
    if name not in BUILDERS or not isinstance(chute, (EngineChute, DiffusionChute)):
        return None
    base = BUILDERS[name](username=chute.username, name=chute.name, model_name=chute.model_name)
    table: dict[str, Any] = {"name": name, "model_name": chute.model_name}
    args = chute.engine_args if isinstance(chute, EngineChute) else chute.pipeline_args
    if args:
        table[_args_key(name)] = args if isinstance(args, str) else dict(args)
    if chute.revision is not None:
        table["revision"] = chute.revision
    if isinstance(chute, EngineChute):
        command = chute.engine_command
        if command is not None:
            table["engine_command"] = command if isinstance(command, str) else list(command)
    factory_key = _factory_key(name)
    if factory_key is not None:
        factory, default = getattr(chute, factory_key), getattr(base, factory_key)
        if factory != default:
            table[factory_key] = reference_of(factory, factory_key)
    return TemplateBase(table, base)
