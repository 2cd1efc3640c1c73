"""Error answers: JSON with the request id, from the core, the guard and the FastAPI app alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
    websocket_request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chutes.server.responses import json_safe

logger = logging.getLogger("chutes.server")


def error_body(detail: Any, request_id: bytes | str) -> dict[str, Any]:
    """``{"detail": ..., "request_id": ...}``, the body of every error the chute answers."""
    rid = request_id.decode("latin-1") if isinstance(request_id, bytes) else request_id
    return {"detail": detail, "request_id": rid}


def log_failure(what: str, request_id: bytes | str) -> None:
    """Log the exception being handled, with the request id a client will quote."""
    rid = request_id.decode("latin-1") if isinstance(request_id, bytes) else request_id
    logger.exception("%s (request %s)", what, rid)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(error_body(exc.detail, _request_id(request)), exc.status_code, headers=exc.headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(json_safe(error_body(exc.errors(), _request_id(request))), 422)


async def _crashed(request: Request, exc: Exception) -> Response:
    # ServerErrorMiddleware logs the exception and re-raises it to the server after answering.
    return JSONResponse(error_body("Internal Server Error", _request_id(request)), 500)


DEFAULT_HANDLERS: dict[Any, Callable[..., Any]] = {
    HTTPException: _http_error,
    RequestValidationError: _invalid,
    Exception: _crashed,
}
# Handlers that answer as the core does by itself: the core skips them and keeps its own fast answers.
_BUILT_IN = frozenset(
    {
        http_exception_handler,
        request_validation_exception_handler,
        websocket_request_validation_exception_handler,
        *DEFAULT_HANDLERS.values(),
    }
)


def install_handlers(app: FastAPI) -> None:
    """Make ``app``'s own errors (404, 405, HTTPException, 422, 500) JSON with the request id."""
    for kind, handler in DEFAULT_HANDLERS.items():
        app.add_exception_handler(kind, handler)


def user_handler(
    app: FastAPI, kind: type[BaseException], exc: BaseException | None = None
) -> Callable[..., Any] | None:
    """An exception handler the user registered on the app (``@app.exception_handler``), if any."""
    handlers = app.exception_handlers
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in kind.__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            if handler not in _BUILT_IN:
                return handler
            break
    # Starlette answers any other exception with the handler registered for 500, when there is one.
    if exc is not None and not isinstance(exc, HTTPException):
        handler = handlers.get(500)
        return None if handler is None or handler in _BUILT_IN else handler
    return None
