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


def json_dumps(payload: Any) -> bytes:
    """``payload`` as strict JSON, whatever it holds: echoed input may be NaN, infinite or a lone surrogate.

    NaN and Infinity become strings (the JSON standard has no literal for them), anything else that JSON
    cannot carry becomes its ``str``, and a lone surrogate its ``\\udXXX`` escape.
    """
    try:
        return pydantic_core.to_json(payload, fallback=str, inf_nan_mode="strings")
    except pydantic_core.PydanticSerializationError:  # a lone surrogate, which UTF-8 cannot encode
        safe = json.loads(pydantic_core.to_json(_escape_surrogates(payload), fallback=str, inf_nan_mode="strings"))
        return json.dumps(safe, ensure_ascii=False, separators=(",", ":")).encode()


def json_safe(payload: Any) -> Any:
    """``payload`` as the plain JSON values :func:`json_dumps` would write (for a ``JSONResponse``)."""
    return json.loads(json_dumps(payload))


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_escape_surrogates(key): _escape_surrogates(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_surrogates(item) for item in value]
    return value


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``payload`` as a JSON response."""
    await send_bytes(send, status, json_dumps(payload), JSON, headers)


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
    so both paths answer the same bad input with the same 422. JSON that Python's parser takes but
    pydantic's refuses (nesting too deep, a number too large, a lone surrogate) is answered with
    pydantic's reason, never decoded again.
    """
    if not body.strip():
        return [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}], None
    refused = [error for error in exc.errors(include_url=False) if error["type"] == "json_invalid"]
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        detail = {"type": "json_invalid", "loc": ["body", error.pos], "msg": "JSON decode error", "input": {}}
        return [detail | {"ctx": {"error": error.msg}}], None
    except UnicodeDecodeError as error:
        detail = {"type": "json_invalid", "loc": ["body", error.start], "msg": "JSON decode error", "input": {}}
        return [detail | {"ctx": {"error": error.reason}}], None
    except (RecursionError, ValueError):  # nesting or digits beyond Python's own limits
        data = None
    if refused:
        reason = str(refused[0]["msg"]).removeprefix("Invalid JSON: ")
        return [
            {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}, "ctx": {"error": reason}}
        ], None
    try:
        signature.bind_python(data, from_attributes=True)
    except pydantic_core.ValidationError as again:
        return validation_detail(again, "body"), data
    return validation_detail(exc, "body"), data  # only JSON mode refuses it (strict bytes, ...): say why
