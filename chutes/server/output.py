"""Shaping what a cord returns into an HTTP response: JSON checked against the output model, bytes, streams."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse

from chutes.errors import ChutesError

if TYPE_CHECKING:
    from chutes.cord import Cord


class OutputSchemaError(ChutesError, RuntimeError):
    """A cord returned a value that does not match its ``output_schema``; a server-side bug, so a 500."""


def json_bytes(cord: Cord, result: Any) -> bytes:
    """Serialize a cord's JSON result, checked against ``output_schema`` when one is given."""
    schema = cord.output_schema
    if schema is not None and not isinstance(result, schema):
        try:
            result = schema.model_validate(result.model_dump() if isinstance(result, BaseModel) else result)
        except pydantic_core.ValidationError as exc:
            raise OutputSchemaError(
                f"cord {cord.name} returned a value that does not match {schema.__name__}: {exc}"
            ) from exc
    model = cord.output_model
    if model is not None and isinstance(result, model):
        # A subclass instance goes out as the declared model, as FastAPI's response_model filters it.
        return model.__pydantic_serializer__.to_json(result)
    if isinstance(result, BaseModel):
        return result.__pydantic_serializer__.to_json(result)
    # NaN and Infinity become null, as pydantic serializes them in models: the JSON standard has no literal for them.
    return pydantic_core.to_json(result, inf_nan_mode="null")


def sse_chunk(item: Any) -> bytes:
    """One chunk of a stream: ``str``/``bytes`` as they are, anything else as an SSE ``data:`` event."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, BaseModel):
        payload = item.__pydantic_serializer__.to_json(item)
    else:
        payload = pydantic_core.to_json(item, inf_nan_mode="null")
    return b"data: " + payload + b"\n\n"


async def _aiter_chunks(first: Any, source: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    yield sse_chunk(first)
    async for item in source:
        yield sse_chunk(item)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def stream_response(result: Any, cord: Cord) -> StreamingResponse:
    """Wrap a sync or async iterator in a streaming response with SSE framing for structured chunks.

    The first chunk is produced before the response starts, so a generator that fails at once still
    gets a proper error status instead of a truncated 200, and the media type follows what it is
    (:meth:`Cord.chunk_media_type`).
    """
    source: AsyncIterator[Any]
    if inspect.isasyncgen(result) or hasattr(result, "__aiter__"):
        source = result.__aiter__()
    else:
        source = iterate_in_threadpool(iter(result))
    try:
        first = await source.__anext__()
        body = _aiter_chunks(first, source)
        media_type = cord.chunk_media_type(first)
    except StopAsyncIteration:
        body = _empty()
        media_type = cord.stream_media_type
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def is_stream(result: Any) -> bool:
    """Whether ``result`` is something to stream rather than serialize."""
    return inspect.isasyncgen(result) or inspect.isgenerator(result) or isinstance(result, Iterator)
