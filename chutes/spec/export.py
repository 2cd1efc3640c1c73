"""Writing the spec of a chute, so that loading it back builds the same chute.

Functions are written as ``func.__module__:func.__qualname__`` references; one that cannot be imported
back by that name (a lambda, a nested function, a function of ``__main__``) is an ``ExportError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tomli_w
import yaml

from chutes.batching import BATCHING_KEYS
from chutes.chute import Chute
from chutes.chute.registry import DEFAULT_PRIORITY, Hook, Registry, registry_of
from chutes.deployment import DEPLOYMENT_KEYS, DeploymentFields
from chutes.image import Image
from chutes.importer import import_from_string
from chutes.spec.errors import format_path
from chutes.spec.model import CordEntry, FastAPITable, JobEntry
from chutes.spec.structure import check_structure
from chutes.spec.template import template_base

__all__ = ["ExportError", "export_data", "export_text", "reference_of"]

_URL_SETTINGS = ("openapi_url", "docs_url", "redoc_url")


class ExportError(ValueError):
    """A chute that a spec cannot express, such as a handler that is not importable by name."""


def reference_of(obj: Any, what: str) -> str:
    """The ``module:qualname`` reference of a function or class, checked to import back to ``obj``."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    name = qualname or repr(obj)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise ExportError(
            f"{what} {name} is not importable by name (a lambda or nested function?); define it at module level"
        )
    if module == "__main__":
        raise ExportError(f"{what} {qualname} is defined in __main__; move it into a module a spec can reference")
    reference = f"{module}:{qualname}"
    try:
        found = import_from_string(reference)
    except Exception:  # the module or attribute is gone or broken: same answer for the user
        found = None
    if found is not obj:
        raise ExportError(f"{what} {qualname} is not importable as {reference!r}; define it at module level")
    return reference


def _image_data(image: Image) -> dict[str, Any]:
    data: dict[str, Any] = {"username": image.username, "name": image.name, "tag": image.tag}
    if image.readme:
        data["readme"] = image.readme
    data["steps"] = image.to_steps_data()
    return data


def _fastapi_data(kwargs: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in FastAPITable.model_fields:
            supported = ", ".join(FastAPITable.model_fields)
            raise ExportError(f"FastAPI setting {key!r} cannot be written to a spec; supported: {supported}")
        if value is None and key in _URL_SETTINGS:
            data[key] = ""  # TOML has no null; FastAPI treats an empty URL as disabled too
        elif value is not None:
            data[key] = value
    return data


def export_data(chute: Chute) -> dict[str, Any]:
    """The spec of ``chute`` as plain data (tables, arrays, strings, numbers), in spec key order.

    A chute built by a standard template is written as a ``[template]`` table plus what was added to it
    (or set differently from the template's defaults), never as the template's own handlers.

    Raises:
        ExportError: Something about the chute cannot be written to a spec; the message says what.
    """
    template = template_base(chute, reference_of)
    base = template.base if template is not None else None
    config = chute.config
    table: dict[str, Any] = {"username": config.username, "name": config.name}
    for key in ("tagline", "readme", "standard_template", "revision"):
        value = getattr(config, key)
        if base is not None and (key in ("standard_template", "revision") or value == getattr(base.config, key)):
            continue  # the [template] table gives these
        if value:
            table[key] = value
    if base is None or config.concurrency != base.concurrency:
        table["concurrency"] = config.concurrency
    for key in DEPLOYMENT_KEYS:
        # Written when set, hosted-platform-only keys included, so an exported chute deploys the same way.
        value = getattr(config, key)
        if value != DeploymentFields.model_fields[key].get_default(call_default_factory=True):
            table[key] = value
    data: dict[str, Any] = {"chute": table}
    if template is not None:
        data["template"] = template.table
    if base is not None and _same_image(chute.image, base.image):
        pass  # the template's default image
    elif isinstance(chute.image, Image):
        data["image"] = _image_data(chute.image)
    else:
        table["image"] = chute.image
    if chute.fastapi_kwargs:
        data["fastapi"] = _fastapi_data(chute.fastapi_kwargs)
    if chute.node_selector is not None and (base is None or chute.node_selector != base.node_selector):
        data["node_selector"] = chute.node_selector.model_dump(exclude_none=True)
    declared = registry_of(chute)
    inherited = registry_of(base) if base is not None else Registry()
    for kind, hooks, base_hooks in (
        ("on_startup", declared.startup, inherited.startup),
        ("on_shutdown", declared.shutdown, inherited.shutdown),
    ):
        added = _added(hooks, base_hooks, lambda hook: hook.func, kind)
        if added:
            data[kind] = [_hook_data(hook, kind) for hook in added]
    cords = _added(declared.cords, inherited.cords, lambda cord: (cord.func, cord.public_api_path), "cord")
    if cords:
        data["cord"] = [_cord_data(cord) for cord in cords]
    if declared.jobs:
        data["job"] = [_job_data(job) for job in declared.jobs.values()]
    if declared.websockets:
        data["websocket"] = [
            {"handler": reference_of(ws.func, "websocket"), "path": ws.path} for ws in declared.websockets
        ]
    problems = check_structure(data)
    if problems:
        raise ExportError("\n".join(f"{format_path(path)}: {message}" for path, message in problems))
    return data


def _same_image(image: str | Image, default: str | Image) -> bool:
    if isinstance(image, Image) and isinstance(default, Image):
        return (image.reference, image.readme, image.to_steps_data()) == (
            default.reference,
            default.readme,
            default.to_steps_data(),
        )
    return image == default


def _added(items: list[Any], template_items: list[Any], key: Callable[[Any], Any], what: str) -> list[Any]:
    """The entries a template's chute has beyond the template's own, which come first and must be intact."""
    own = items[: len(template_items)]
    if [key(item) for item in own] != [key(item) for item in template_items]:
        raise ExportError(
            f"the template's own {what} entries were changed or removed; a spec can only add to a template's chute"
        )
    return items[len(template_items) :]


def _hook_data(hook: Hook, kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"handler": reference_of(hook.func, kind)}
    if hook.priority != DEFAULT_PRIORITY:
        entry["priority"] = hook.priority
    return entry


def _cord_data(cord: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"handler": reference_of(cord.func, "cord"), "public_api_path": cord.public_api_path}
    defaults = {name: field.default for name, field in CordEntry.model_fields.items()}
    if cord.method != defaults["method"]:
        entry["method"] = cord.method
    for key in ("input_schema", "output_schema", "minimal_input_schema"):
        schema = getattr(cord, key)
        if schema is not None:
            entry[key] = reference_of(schema, key)
    if cord.output_content_type != defaults["output_content_type"]:
        entry["output_content_type"] = cord.output_content_type
    if cord.stream:
        entry["stream"] = True
    if cord.passthrough:
        entry["passthrough"] = True
        if cord.passthrough_path != cord.public_api_path:
            entry["passthrough_path"] = cord.passthrough_path
        if cord.passthrough_port is not None:
            entry["passthrough_port"] = cord.passthrough_port
    if cord.provision_timeout is not None:
        entry["provision_timeout"] = cord.provision_timeout
    if cord.timeout is not None:
        entry["timeout"] = cord.timeout
    if cord.max_batch_size is not None:
        for key in BATCHING_KEYS:
            value = getattr(cord, key)
            if value is not None and value != defaults[key]:
                entry[key] = value
    return entry


def _job_data(job: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"handler": reference_of(job.func, "job"), "name": job.name}
    if job.schedule is not None:
        entry["schedule"] = job.schedule
    if job.retry_count != JobEntry.model_fields["retry_count"].default:
        entry["retry_count"] = job.retry_count
    if job.timeout is not None:
        entry["timeout"] = job.timeout
    if job.ports:
        entry["ports"] = [port.model_dump() for port in job.ports]
    if not job.upload:
        entry["upload"] = False
    if job.ssh:
        entry["ssh"] = True
    return entry


def export_text(chute: Chute, format: str = "toml") -> str:
    """The spec of ``chute`` as ``chute.toml`` (``format="toml"``) or ``chute.yaml`` (``"yaml"``) text."""
    data = export_data(chute)
    if format == "yaml":
        return yaml.dump(data, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True)
    if format != "toml":
        raise ExportError(f"unknown spec format {format!r}; use 'toml' or 'yaml'")
    return _toml(data)


class _YamlDumper(yaml.SafeDumper):
    """Writes multi-line strings (a readme) as literal blocks, the way people write them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_YamlDumper.add_representer(str, _represent_str)


def _toml(data: dict[str, Any]) -> str:
    """TOML in the shape people write by hand: one [table] or [[entry]] per section, steps inline."""
    sections: list[str] = []
    for key, value in data.items():
        if isinstance(value, list):
            sections.extend(f"[[{key}]]\n" + tomli_w.dumps(entry, multiline_strings=True) for entry in value)
        elif key == "template":
            # Engine arguments inline, the way the README shows them: engine_args = { max_model_len = 4096 }
            sections.append(f"[{key}]\n" + "".join(f"{_key(name)} = {_inline(item)}\n" for name, item in value.items()))
        elif key == "image":
            fields = {name: item for name, item in value.items() if name != "steps"}
            text = tomli_w.dumps({key: fields}, multiline_strings=True)
            steps = "".join(f"    {_inline(step)},\n" for step in value["steps"])
            sections.append(text + (f"steps = [\n{steps}]\n" if steps else ""))
        else:
            sections.append(tomli_w.dumps({key: value}, multiline_strings=True))
    return "\n".join(sections)


def _key(name: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise."""
    return tomli_w.dumps({name: 0}).split(" = ")[0]


def _inline(value: Any) -> str:
    """One value as inline TOML (tables as ``{ key = value }``, which tomli_w writes only when short)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(key)} = {_inline(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).partition(" = ")[2].rstrip("\n")
