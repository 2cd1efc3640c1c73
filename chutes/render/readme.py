"""Rendering a chute's README: what its users need to call it, from the chute's own definitions."""

from __future__ import annotations

import inspect
import json
import shlex
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

from chutes.chute.registry import registry_of
from chutes.render.dockerfile import default_serve_target
from chutes.render.environment import render_template
from chutes.render.k8s import default_image
from chutes.render.schedule import describe_schedule
from chutes.render.schema import FieldRow, example_object, field_rows, referenced_models, type_label
from chutes.settings import Settings
from chutes.signature import BindingKind

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.cord import Cord
    from chutes.job import Job

__all__ = ["Section", "render_readme", "readme_context"]

_JSON = "application/json"


@dataclass
class Section:
    """A documented shape: field rows and nested models, or a one-line summary when it has no fields."""

    summary: str = ""
    rows: list[FieldRow] = field(default_factory=list)
    models: list[tuple[str, list[FieldRow]]] = field(default_factory=list)


def _section(schema: dict[str, Any]) -> Section:
    rows = field_rows(schema)
    models = [(name, field_rows(sub, schema)) for name, sub in referenced_models(schema)]
    return Section(rows=rows, models=models)


def _input_section(signature: Any, kind: BindingKind) -> Section:
    if kind is BindingKind.NONE:
        return Section(summary="No input.")
    if kind is BindingKind.DICT:
        return Section(summary="Any JSON object.")
    section = _section(signature.input_json_schema())
    if not section.rows:
        section.summary = "No input."
    return section


def _return_annotation(func: Any) -> Any:
    try:
        return typing.get_type_hints(func).get("return")
    except Exception:  # unresolvable forward references: the README just says less
        return None


def _output_section(cord: Cord, content_type: str) -> Section:
    if cord.stream and cord.output_schema is None and cord.chunk_type in (str, bytes):
        return Section(summary="Text, chunk by chunk, as the cord yields it." if cord.chunk_type is str else
                       "Bytes, chunk by chunk, as the cord yields them.")  # fmt: skip
    section = _return_section(cord, content_type)
    if cord.stream and section.summary.startswith("JSON: "):
        section.summary = "Each event: " + section.summary
    return section


def _return_section(cord: Cord, content_type: str) -> Section:
    if cord.output_schema is not None:
        return _section(cord.output_schema.model_json_schema())
    annotation = _return_annotation(cord.func)
    origin = typing.get_origin(annotation)
    if cord.stream and origin is not None and getattr(origin, "__name__", "") in (
        "AsyncIterator", "AsyncGenerator", "Iterator", "Generator", "AsyncIterable", "Iterable",
    ):  # fmt: skip
        args = typing.get_args(annotation)
        annotation = args[0] if args else None
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return _section(annotation.model_json_schema())
    if (
        annotation is None
        or annotation is type(None)
        or (inspect.isclass(annotation) and issubclass(annotation, Response))
    ):
        return Section(summary=f"A `{content_type}` response.")
    if annotation is bytes:
        return Section(summary=f"Raw bytes (`{content_type}`).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema = TypeAdapter(annotation).json_schema()
    except Exception:  # a type pydantic cannot describe
        return Section(summary=f"A `{content_type}` response.")
    return Section(summary=f"JSON: {type_label(schema)}.")


def _curl(method: str, url: str, body: dict[str, Any] | None, *, stream: bool, binary: bool) -> str:
    parts = ["curl"]
    if stream:
        parts.append("-N")
    if method != "GET":
        parts += ["-X", method]
    lines = [" ".join(parts) + " " + shlex.quote(url)]
    if body is not None:
        lines.append("-H 'Content-Type: application/json'")
        lines.append("-d " + shlex.quote(json.dumps(body, ensure_ascii=False)))
    if binary:
        lines.append("--output result.bin")
    return " \\\n  ".join(lines)


def _stream_note(cord: Cord) -> str:
    """What a stream really sends, by the rule the server applies (``Cord.chunk_media_type``)."""
    if cord.output_content_type != _JSON:
        return f"streamed as `{cord.output_content_type}`"
    chunk = cord.chunk_type
    if chunk in (str, bytes):
        return "streamed as raw text chunks, `text/plain` (`text/event-stream` when the chunks are server-sent events)"
    if chunk is not None:
        return "streamed as `text/event-stream`: one `data: <json>` event per chunk"
    return (
        "streamed: text chunks as they are, `text/plain` (`text/event-stream` when they are server-sent events); "
        "other chunks as `text/event-stream`, one `data: <json>` event each"
    )


def _cord_doc(cord: Cord, base_url: str) -> dict[str, Any]:
    content_type = cord.stream_media_type if cord.stream else cord.output_content_type
    signature = cord.signature
    schema_model = cord.minimal_input_schema or signature.model
    body: dict[str, Any] | None = None
    if signature.kind is BindingKind.DICT:
        body = {}
    elif schema_model is not None:
        body = example_object(schema_model.model_json_schema(), everything=cord.minimal_input_schema is not None)
    url = base_url.rstrip("/") + cord.public_api_path
    if cord.method == "GET" and body:
        pairs = [(key, v) for key, value in body.items() for v in (value if isinstance(value, list) else [value])]
        url += "?" + urlencode([(key, json.dumps(v) if not isinstance(v, str) else v) for key, v in pairs])
        body = None
    elif cord.method == "GET":
        body = None
    elif body is None:
        body = {}
    binary = not (content_type.startswith("text/") or "json" in content_type)
    return {
        "name": cord.name,
        "method": cord.method,
        "path": cord.public_api_path,
        "description": cord.description,
        "stream": cord.stream,
        "stream_note": _stream_note(cord) if cord.stream else "",
        "content_type": content_type,
        "input": _input_section(signature, signature.kind),
        "output": _output_section(cord, content_type),
        "example": _curl(cord.method, url, body, stream=cord.stream, binary=binary),
    }


def _job_doc(job: Job, base_url: str, timezone: str) -> dict[str, Any]:
    signature = job.signature
    body: dict[str, Any] = {}
    if signature.model is not None:
        body = example_object(signature.model.model_json_schema())
    base = base_url.rstrip("/")
    return {
        "name": job.name,
        "description": job.description,
        "schedule": job.schedule,
        "schedule_words": describe_schedule(job.schedule, timezone) if job.schedule else None,
        "retry_count": job.retry_count,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "input": _input_section(signature, signature.kind),
        "submit": _curl("POST", f"{base}/_jobs/{job.name}", body, stream=False, binary=False),
        "show": f"curl {shlex.quote(base + '/_jobs/runs/RUN_ID')}",
    }


def _hardware(chute: Chute) -> dict[str, Any] | None:
    selector = chute.node_selector
    if selector is None or selector.cpu_only:
        return None  # "No GPU required."
    low, high = selector.price_range()
    total_low, total_high = selector.price_range(total=True)
    return {
        "gpu_count": selector.gpu_count,
        "min_vram_gb_per_gpu": selector.min_vram_gb_per_gpu,
        "max_hourly_price_per_gpu": selector.max_hourly_price_per_gpu,
        "include": selector.include,
        "exclude": selector.exclude,
        "gpus": selector.matching_gpus(),
        "price_per_gpu": (low, high),
        "price_per_instance": (total_low, total_high),
    }


def _settings() -> list[dict[str, str]]:
    rows = []
    for name, info in Settings.model_fields.items():
        default = info.default
        shown = "" if default in ("", None) else json.dumps(default) if isinstance(default, bool) else str(default)
        rows.append({"name": f"CHUTES_{name.upper()}", "default": shown, "description": info.description or ""})
    return rows


def _title_and_body(chute: Chute) -> tuple[str, str]:
    """The README's title and the chute's own readme under it; a readme opening with a ``# Title`` names it."""
    readme = chute.readme.strip()
    first, _, rest = readme.partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest.strip()
    return str(chute.fastapi_kwargs.get("title") or chute.name), readme


def readme_context(
    chute: Chute, *, serve_target: str | None = None, base_url: str = "http://localhost:8000", timezone: str = "UTC"
) -> dict[str, Any]:
    """The variables of ``README.md.j2`` for ``chute``."""
    title, body = _title_and_body(chute)
    serve_target = serve_target if serve_target is not None else default_serve_target(chute)
    ws_base = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/")
    return {
        "chute": chute,
        "title": title,
        "body": body,
        "serve_target": serve_target,
        "serve_command": shlex.join(["python3", "-m", "chutes", "serve", serve_target]),
        "base_url": base_url.rstrip("/"),
        "cords": [_cord_doc(cord, base_url) for cord in registry_of(chute).cords],
        "jobs": [_job_doc(job, base_url, timezone) for job in registry_of(chute).jobs.values()],
        "websockets": [
            {"name": ws.name, "path": ws.path, "description": ws.description, "url": ws_base + ws.path}
            for ws in registry_of(chute).websockets
        ],
        "hardware": _hardware(chute),
        "image": default_image(chute),
        "settings": _settings(),
        "timezone": timezone,
    }


def render_readme(
    chute: Chute,
    *,
    serve_target: str | None = None,
    base_url: str = "http://localhost:8000",
    timezone: str = "UTC",
    templates_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Render the Markdown README of ``chute`` for the people who call it.

    Args:
        chute: The chute to document.
        serve_target: What ``python -m chutes serve`` is given in the "Running" section; by default
            the chute's ``module:attr`` when it was imported, else ``chute.toml``.
        base_url: Where the examples send their requests.
        timezone: The zone cron schedules are read in (``CHUTES_TIMEZONE``).
        templates_dir: A folder whose ``README.md.j2`` replaces or extends the shipped one.
        extra: More variables for a user template.
    """
    context = readme_context(chute, serve_target=serve_target, base_url=base_url, timezone=timezone)
    return render_template("README.md.j2", context | (extra or {}), templates_dir)
