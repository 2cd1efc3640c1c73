"""Small raw-ASGI response helpers for the fast path, and FastAPI-shaped validation errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pydantic_core
from starlette.types import Send

if TYPE_CHECKING:
    from chutes.signature import HandlerSignature

JSON = b"application/json"


async def send_bytes(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete response in two ASGI messages."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``payload`` as a JSON response."""
    # A rejected NaN or Infinity is echoed as a string: the JSON standard has no literal for it.
    body = pydantic_core.to_json(payload, fallback=str, inf_nan_mode="strings")
    await send_bytes(send, status, body, JSON, headers)


def validation_detail(exc: pydantic_core.ValidationError, where: str) -> list[dict[str, Any]]:
    """Pydantic errors in FastAPI's ``{"detail": [...]}`` shape, each ``loc`` starting with ``body`` or ``query``."""
    detail: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {"type": error["type"], "loc": [where, *error["loc"]], "msg": error["msg"]}
        if error["type"] != "json_invalid":  # never echo a malformed body back
            item["input"] = error.get("input")
        if "ctx" in error:
            item["ctx"] = {
                key: value if isinstance(value, int | float | str) else str(value)
                for key, value in error["ctx"].items()
            }
        detail.append(item)
    return detail


def body_errors(signature: HandlerSignature, body: bytes, exc: pydantic_core.ValidationError) -> tuple[list[Any], Any]:
    """FastAPI's ``detail`` for a body that failed validation, and the decoded body (for ``exc.body``).

    The fast path validates straight from JSON bytes, whose messages differ from FastAPI's ("valid array"
    for "valid list"); on this error path only, the body is decoded and validated again as FastAPI does,
    so both paths answer the same bad input with the same 422.
    """
    if not body.strip():
        return [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}], None
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        detail = {"type": "json_invalid", "loc": ["body", error.pos], "msg": "JSON decode error", "input": {}}
        return [detail | {"ctx": {"error": error.msg}}], None
    except UnicodeDecodeError as error:
        detail = {"type": "json_invalid", "loc": ["body", error.start], "msg": "JSON decode error", "input": {}}
        return [detail | {"ctx": {"error": error.reason}}], None
    try:
        signature.bind_python(data, from_attributes=True)
    except pydantic_core.ValidationError as again:
        return validation_detail(again, "body"), data
    return validation_detail(exc, "body"), data  # only JSON mode refuses it (strict bytes, ...): say why
