"""Comparing chutes built from a spec with chutes built in Python, for the spec tests."""

from __future__ import annotations

from typing import Any

from chutes.chute import Chute
from chutes.image import Image


def describe(chute: Chute) -> dict[str, Any]:
    """Everything a spec can express about a chute, in comparable form."""

    def schema(model: Any) -> Any:
        return None if model is None else model.model_json_schema()

    return {
        "config": chute.config.model_dump(),
        "image": chute.image.reference if isinstance(chute.image, Image) else chute.image,
        "image_steps": chute.image.steps if isinstance(chute.image, Image) else None,
        "node_selector": chute.node_selector,
        "fastapi": chute.fastapi_kwargs,
        "startup": chute.startup_hooks,
        "shutdown": chute.shutdown_hooks,
        "cords": [
            (
                cord.func,
                cord.public_api_path,
                cord.method,
                schema(cord.input_schema),
                schema(cord.output_schema),
                schema(cord.minimal_input_schema),
                cord.output_content_type,
                cord.stream,
                cord.signature.kind,
                schema(cord.signature.model),
            )
            for cord in chute.cords
        ],
        "jobs": {
            name: (job.func, job.schedule, job.retry_count, job.timeout, job.signature.kind)
            for name, job in chute.jobs.items()
        },
        "websockets": [(ws.func, ws.path) for ws in chute.websockets],
        "openapi_paths": chute.app.openapi()["paths"],
    }
