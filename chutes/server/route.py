"""The FastAPI route of each cord and websocket, so ``chute.app`` and its OpenAPI document describe them.

A cord's route is served by the cord-call core (:mod:`chutes.server.core`), the same code the guard's
fast lookup calls: however a request reaches a cord, it gets the same answer.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Query
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

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


class CordEndpoint:
    """The ASGI app of a cord's FastAPI route: the cord-call core, exactly as the guard's fast lookup calls it."""

    def __init__(self, owner: Any, cord: Cord) -> None:
        self.owner = owner
        self.cord = cord

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request for the cord."""
        from chutes.server.core import Call  # the serving machinery loads when a chute serves, not when defined

        runtime = self.owner._serving()
        route = runtime.cord_routes[(self.cord.method, self.cord.public_api_path)]
        await runtime.core.serve(Call.from_scope(route, scope, receive, send))


def add_cord_route(app: FastAPI, owner: object, cord: Cord) -> None:
    """Register ``cord`` on ``app`` as a route served by the cord-call core, documented in OpenAPI."""
    annotation = _payload_annotation(cord)
    optional = _accepts_empty(cord)

    async def endpoint(request: Request, payload: Any = None) -> Response:  # pragma: no cover - documents only
        raise NotImplementedError  # the route's ASGI app is replaced below; this only gives OpenAPI its shape

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
        response_model=None if content_type != "application/json" else cord.response_model,
        responses=responses or None,
        summary=cord.name.replace("_", " ").capitalize(),
        description=cord.description,
        name=cord.name,
        tags=["cords"],
    )
    route = app.router.routes[-1]
    assert isinstance(route, APIRoute)
    route.app = CordEndpoint(owner, cord)


def add_websocket_route(app: FastAPI, owner: object, websocket: Websocket) -> None:
    """Register a websocket handler; a client leaving ends it quietly."""

    async def endpoint(connection: WebSocket) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.func(owner, connection)

    endpoint.__name__ = websocket.name
    app.add_api_websocket_route(websocket.path, endpoint, name=websocket.name)
