"""Small raw-ASGI response helpers for the fast path, and FastAPI-shaped validation errors."""

from __future__ import annotations

from typing import Any

import pydantic_core
from starlette.types import Send

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
    await send_bytes(send, status, pydantic_core.to_json(payload, fallback=str), JSON, headers)


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
