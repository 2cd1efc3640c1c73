"""The FastAPI route of each cord and websocket, so ``chute.app`` and its OpenAPI document describe them.

The server answers cords on a faster path before FastAPI's routing, but these routes are real: calling
``chute.app`` directly (``TestClient(chute.app)``) serves the same cords with the same results.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Query
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from chutes.invoke import call_handler, to_response
from chutes.signature import BindingKind

if TYPE_CHECKING:
    from chutes.cord import Cord
    from chutes.websocket import Websocket


def _payload_annotation(cord: Cord) -> Any:
    binding = cord.signature
    if binding.kind is BindingKind.DICT:
        return Annotated[dict[str, Any], Body()]
    if binding.model is None:
        return None
    if cord.method == "GET":
        return Annotated[binding.model, Query()]
    return Annotated[binding.model, Body()]


def _accepts_empty(cord: Cord) -> bool:
    """Whether an empty body is valid input: the fast path reads it as ``{}``, so FastAPI must not require it."""
    if cord.method == "GET" or cord.signature.kind is BindingKind.NONE:
        return False
    try:
        cord.signature.bind_python({})
    except ValidationError:
        return False
    return True


def _forwarding_endpoint(owner: object, cord: Cord) -> Any:
    """A passthrough cord's route: the raw request is forwarded (the function is never called)."""

    async def endpoint(request: Request) -> Response:
        from chutes.server.passthrough import ForwardedResponse, Upstream

        runtime = getattr(owner, "_runtime", None)
        upstream = runtime.upstream() if runtime is not None else None
        request_id = str(getattr(request.state, "request_id", "")) or "-"
        body = await request.body()
        if upstream is None:  # the app served without the chute's server around it: a client per call
            return ForwardedResponse(
                Upstream(lambda: getattr(owner, "passthrough_headers", {})), cord, body, request_id, close=True
            )
        return ForwardedResponse(upstream, cord, body, request_id, close=False)

    return endpoint


def add_cord_route(app: FastAPI, owner: object, cord: Cord) -> None:
    """Register ``cord`` on ``app`` as a FastAPI route bound to ``owner`` (the chute)."""
    if cord.passthrough:
        _add_forwarding_route(app, owner, cord)
        return
    binding = cord.signature
    annotation = _payload_annotation(cord)
    optional = _accepts_empty(cord)

    async def endpoint(request: Request, payload: Any = None) -> Response:
        if payload is None and optional:
            kwargs: dict[str, Any] = binding.bind_python({})
        elif binding.kind is BindingKind.NONE:
            kwargs = {}
        elif binding.kind is BindingKind.FIELDS:
            kwargs = dict(payload.__dict__)
        else:
            kwargs = {binding.param: payload} if binding.param else {}
        if binding.request_param:
            kwargs[binding.request_param] = request
        return await to_response(cord, await call_handler(cord.func, owner, kwargs))

    params = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)]
    if annotation is not None:
        default = None if optional else inspect.Parameter.empty
        params.append(
            inspect.Parameter(
                "payload", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=default
            )
        )
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = cord.name
    endpoint.__doc__ = cord.func.__doc__

    content_type = cord.stream_media_type if cord.stream else cord.output_content_type
    responses: dict[int | str, dict[str, Any]] = {}
    if content_type != "application/json":
        responses[200] = {"content": {content_type: {}}, "description": "Successful Response"}
    app.add_api_route(
        cord.public_api_path,
        endpoint,
        methods=[cord.method],
        response_model=None if content_type != "application/json" else cord.output_model,
        responses=responses or None,
        summary=cord.name.replace("_", " ").capitalize(),
        description=cord.description,
        name=cord.name,
        tags=["cords"],
    )


def _add_forwarding_route(app: FastAPI, owner: object, cord: Cord) -> None:
    endpoint = _forwarding_endpoint(owner, cord)
    endpoint.__name__ = cord.name
    body = cord.input_schema
    openapi_extra = None
    if body is not None and cord.method != "GET":  # documented, not validated: the upstream does that
        openapi_extra = {
            "requestBody": {"content": {"application/json": {"schema": body.model_json_schema()}}, "required": True}
        }
    app.add_api_route(
        cord.public_api_path,
        endpoint,
        methods=[cord.method],
        response_model=None,
        summary=cord.name.replace("_", " ").capitalize(),
        description=cord.description or f"Forwarded to the model server's {cord.passthrough_path}.",
        name=cord.name,
        tags=["cords"],
        openapi_extra=openapi_extra,
    )


def add_websocket_route(app: FastAPI, owner: object, websocket: Websocket) -> None:
    """Register a websocket handler; a client leaving ends it quietly."""

    async def endpoint(connection: WebSocket) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.func(owner, connection)

    endpoint.__name__ = websocket.name
    app.add_api_websocket_route(websocket.path, endpoint, name=websocket.name)
