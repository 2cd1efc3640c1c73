"""The fast path: cords and built-in routes answered at the ASGI level, before FastAPI's routing.

A cord is found with one dict lookup on (method, path); its body is validated by the handler's pydantic
model straight from bytes and its result serialized by pydantic's own serializer. Everything else
(``/docs``, ``/openapi.json``, ``/_jobs``, custom routes, websockets) falls through to the FastAPI app.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import re
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import pydantic_core
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
    websocket_request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chutes.chute.registry import registry_of
from chutes.invoke import call_handler, is_stream, json_bytes, stream_response
from chutes.server.disconnect import Watchdog
from chutes.server.log_config import set_request_id
from chutes.server.passthrough import DEFAULT_PASSTHROUGH_PORT, upstream_url
from chutes.server.responses import JSON, body_errors, send_bytes, send_json, validation_detail

if TYPE_CHECKING:
    from chutes.cord import Cord
    from chutes.server.metrics import Metrics
    from chutes.server.runtime import Runtime

logger = logging.getLogger("chutes.server")
_FASTAPI_DEFAULTS = {
    http_exception_handler,
    request_validation_exception_handler,
    websocket_request_validation_exception_handler,
}
_ID_PREFIX = os.urandom(4).hex().encode()
WATCH_DELAY = 0.005  # seconds a cord runs before we start listening for a disconnect
# A client's X-Request-ID is echoed and logged: only short runs of visible ASCII, so it cannot split a
# header, forge a log line or bloat every response.
_VALID_ID = re.compile(rb"[\x21-\x7e]{1,200}").fullmatch
_PUBLIC = frozenset({"/_health", "/_ready", "/_metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})


class ClientGone(Exception):
    """The client disconnected; the work it started was cancelled."""


class BodyTooLarge(Exception):
    """The request body is over ``max_body_size``."""


class CordRoute:
    """One cord with everything the hot path needs precomputed."""

    __slots__ = (
        "cord", "signature", "func", "is_coroutine", "cancellable", "is_get", "stats", "output_type",
        "serializer",
    )  # fmt: skip

    def __init__(self, cord: Cord, metrics: Metrics) -> None:
        self.cord = cord
        self.signature = cord.signature
        self.func = cord.func
        self.is_coroutine = inspect.iscoroutinefunction(cord.func)
        # A plain function runs in a worker thread that cancelling cannot stop: it keeps its slot until done.
        self.cancellable = self.is_coroutine or cord.is_generator
        self.is_get = cord.method == "GET"
        self.stats = metrics.cord_stats(cord.public_api_path, cord.method)
        # The common case, a handler returning exactly its output model, serializes without checks.
        self.output_type = cord.output_model
        self.serializer = self.output_type.__pydantic_serializer__ if self.output_type is not None else None


class Dispatcher:
    """The ASGI app in front of FastAPI: cords, ``/_health``, ``/_ready``, ``/_metrics``, security checks."""

    def __init__(self, runtime: Runtime, fallback: ASGIApp) -> None:
        self.runtime = runtime
        self.fallback = fallback
        self.routes = {
            (cord.method, cord.public_api_path): CordRoute(cord, runtime.metrics)
            for cord in registry_of(runtime.chute).cords
        }
        self.owner = runtime.chute
        self._ids = itertools.count(1)
        self.watchdog = Watchdog(WATCH_DELAY)

    def _request_id(self, scope: Scope, sent: bytes | None) -> bytes:
        """The client's X-Request-ID when it is short visible ASCII, else a new one; kept in ``request.state``."""
        request_id = sent if sent is not None and _VALID_ID(sent) else b"%s-%x" % (_ID_PREFIX, next(self._ids))
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = text = request_id.decode("latin-1")
        set_request_id(text)  # log lines written while serving the request carry its id
        return request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection: a cord, a built-in route, or the FastAPI app behind."""
        if scope["type"] == "http":
            path = scope["path"]
            if scope.get("root_path"):
                path = _route_path(path, scope["root_path"])
            route = self.routes.get((scope["method"], path))
            if route is not None:
                await self.serve_cord(route, scope, receive, send)
                return
            if path in _PUBLIC and path.startswith("/_"):
                await self.runtime.serve_builtin(path, scope["method"], self._identified(scope, send))
                return
            await self._fall_through(path, scope, receive, send)
        elif scope["type"] == "websocket":
            if not self._authorized(scope):
                await send({"type": "websocket.close", "code": 1008, "reason": "invalid or missing API key"})
                return
            await self.fallback(scope, receive, send)
        else:
            await self.fallback(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        keys = self.runtime.api_keys
        if not keys.enabled:
            return True
        headers = dict(scope["headers"])
        return keys.allows(headers.get(b"authorization"), headers.get(b"x-api-key"))

    def _identified(self, scope: Scope, send: Send) -> Send:
        """``send`` adding the request's X-Request-ID (the client's when valid) to the response."""
        request_id = self._request_id(scope, dict(scope["headers"]).get(b"x-request-id"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        return send_with_id

    async def _fall_through(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        send = self._identified(scope, send)
        if path not in _PUBLIC and not self._authorized(scope):
            await send_json(send, 401, {"detail": "Invalid or missing API key"}, [(b"www-authenticate", b"Bearer")])
            return
        await self.fallback(scope, receive, send)

    async def serve_cord(self, route: CordRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one cord call: guards, admission, then bind, call and respond (the hot path)."""
        runtime = self.runtime
        started = perf_counter()
        request_id = authorization = api_key = length = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value
            elif key == b"content-length":
                length = value
            elif key == b"authorization":
                authorization = value
            elif key == b"x-api-key":
                api_key = value
        request_id = self._request_id(scope, request_id)
        id_header = (b"x-request-id", request_id)

        # Every answered call is counted in the cord's metrics, refusals included.
        if runtime.api_keys.enabled and not runtime.api_keys.allows(authorization, api_key):
            await send_json(
                send, 401, {"detail": "Invalid or missing API key"}, [id_header, (b"www-authenticate", b"Bearer")]
            )
            route.stats.record(401, perf_counter() - started)
            return
        if runtime.rate_limiter.enabled:
            client = scope.get("client")
            wait = runtime.rate_limiter.check(client[0] if client else "")
            if wait:
                runtime.metrics.rejected.labels("rate_limited").inc()
                limited = {"detail": "Rate limit exceeded", "request_id": request_id.decode("latin-1")}
                await send_json(send, 429, limited, [id_header, (b"retry-after", str(wait).encode())])
                route.stats.record(429, perf_counter() - started)
                return
        if length is not None and length.isdigit() and int(length) > runtime.max_body_size:
            await self._too_large(send, id_header)
            route.stats.record(413, perf_counter() - started)
            return
        admission = runtime.admission
        body: bytes | None = None
        if not admission.try_acquire():
            outcome = await self._wait_in_queue(route, receive, send, id_header)
            if isinstance(outcome, int):  # answered already: 429, 413, or the client left (499)
                route.stats.record(outcome, perf_counter() - started)
                return
            body = outcome
        status = 500
        try:
            status = await self._call(route, scope, receive, send, id_header, body)
        finally:
            admission.release()
            elapsed = perf_counter() - started
            admission.observe(elapsed)
            route.stats.record(status, elapsed)

    async def _wait_in_queue(
        self, route: CordRoute, receive: Receive, send: Send, id_header: tuple[bytes, bytes]
    ) -> bytes | int:
        """Wait for a slot; returns the request body once one is ours, or the status already answered.

        The body is read first so that, while queued, the only message left to receive is the
        disconnect: a client that gives up leaves the queue at once instead of taking a slot later.
        """
        admission = self.runtime.admission
        if not admission.can_queue():  # turned away at once: not worth reading the body
            await self._overloaded(send, id_header)
            return 429
        try:
            body = b"" if route.is_get else await self._read_body(receive)
        except BodyTooLarge:
            await self._too_large(send, id_header)
            return 413
        except ClientGone:
            return 499
        slot = asyncio.ensure_future(admission.acquire())
        left = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((slot, left), return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            if not slot.done():  # the client left, or the server is stopping: give up the place
                slot.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot  # a slot handed over meanwhile is passed on by acquire() itself
        if slot.cancelled():
            return 499
        if not slot.result():
            await self._overloaded(send, id_header)
            return 429
        return body

    async def _overloaded(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        admission = self.runtime.admission
        self.runtime.metrics.rejected.labels("overloaded").inc()
        headers = [
            id_header,
            (b"retry-after", str(admission.retry_after()).encode()),
            (b"x-chutes-conn-used", str(admission.in_use).encode()),
            (b"x-chutes-conn-available", str(admission.available).encode()),
        ]
        body = {"detail": "Server at capacity, retry later", "request_id": id_header[1].decode("latin-1")}
        await send_json(send, 429, body, headers)

    async def _too_large(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        self.runtime.metrics.rejected.labels("too_large").inc()
        limit = self.runtime.max_body_size
        await send_json(send, 413, {"detail": f"Request body exceeds {limit} bytes"}, [id_header])

    async def _read_body(self, receive: Receive) -> bytes:
        limit = self.runtime.max_body_size
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise BodyTooLarge
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def _call(
        self,
        route: CordRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        read: bytes | None = None,
    ) -> int:
        """Bind, call and answer; returns the status sent (499 when the client left).

        ``read`` is the body when it was read already (while the call waited in the queue).
        """
        if route.cord.passthrough:
            return await self._forward(route, scope, receive, send, id_header, read)
        signature = route.signature
        body = b""
        try:
            if route.is_get:
                kwargs = signature.bind_query(
                    parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                )
            else:
                body = await self._read_body(receive) if read is None else read
                kwargs = signature.bind_json(body)
        except pydantic_core.ValidationError as exc:
            if route.is_get:
                detail, data = validation_detail(exc, "query"), None
            else:
                detail, data = body_errors(signature, body, exc)
            handler = self._user_handler(RequestValidationError)
            if handler is not None:
                return await self._answer_with(
                    handler, RequestValidationError(detail, body=data), scope, receive, send, id_header, body
                )
            await send_json(send, 422, {"detail": detail}, [id_header])
            return 422
        except BodyTooLarge:
            await self._too_large(send, id_header)
            return 413
        except ClientGone:
            return 499
        request: Request | None = None
        if signature.request_param is not None:
            request = self._request(scope, receive, body)
            kwargs[signature.request_param] = request
        task = asyncio.current_task()
        assert task is not None
        watch = self.watchdog.watch(task, receive, route.cancellable)
        try:
            if route.is_coroutine:
                result = await route.func(self.owner, **kwargs)
            else:
                result = await call_handler(route.func, self.owner, kwargs)
                if watch.gone:  # the client left while a worker thread ran the call
                    return 499
            if type(result) is route.output_type and route.serializer is not None:
                payload = route.serializer.to_json(result)
            elif isinstance(result, Response) or is_stream(result):
                return await self._send_response(route, result, scope, receive, send, id_header, body)
            elif isinstance(result, bytes | bytearray | memoryview):
                await send_bytes(send, 200, bytes(result), route.cord.output_content_type.encode(), [id_header])
                return 200
            else:
                payload = json_bytes(route.cord, result)
        except asyncio.CancelledError:
            # Ours alone (the client left) ends the call; any other cancellation (server shutdown) goes on.
            if watch.gone and task.uncancel() == 0:
                return 499
            raise
        except Exception as exc:
            return await self._fail(route, exc, scope, receive, send, id_header, body)
        finally:
            self.watchdog.forget(watch)
        await send_bytes(send, 200, payload, JSON, [id_header])
        return 200

    async def _forward(
        self,
        route: CordRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        read: bytes | None,
    ) -> int:
        """A passthrough cord: the raw request goes to the loopback server, its answer streams back."""
        cord = route.cord
        try:
            body = await self._read_body(receive) if read is None else read
        except BodyTooLarge:
            await self._too_large(send, id_header)
            return 413
        except ClientGone:
            return 499
        port = cord.passthrough_port or DEFAULT_PASSTHROUGH_PORT
        return await self.runtime.upstream().forward(  # the watchdog is not involved: forward listens itself
            method=cord.method,
            url=upstream_url(port, cord.passthrough_path or cord.public_api_path, scope["query_string"]),
            headers=scope["headers"],
            body=body,
            receive=receive,
            send=send,
            request_id=id_header[1],
        )

    async def _send_response(
        self,
        route: CordRoute,
        result: Any,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        body: bytes,
    ) -> int:
        """Send a ``Response`` or a stream; a failure before the first byte still gets a clean error."""
        sent = False

        async def tracking_send(message: Message) -> None:
            nonlocal sent
            sent = True
            await send(message)

        try:
            if not isinstance(result, Response):
                result = await stream_response(result, route.cord)
            result.raw_headers.append(id_header)
            await result(scope, receive, tracking_send)
        except ClientDisconnect:
            return 499
        except Exception as exc:
            if sent:  # the status line is gone: all we can do is log and close
                logger.exception("cord %s failed while streaming (request %s)", route.cord.name, id_header[1].decode())
                return 500
            return await self._fail(route, exc, scope, receive, send, id_header, body)
        return int(result.status_code)

    async def _fail(
        self,
        route: CordRoute,
        exc: Exception,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        body: bytes,
    ) -> int:
        """Answer an exception: the user's handler if registered, HTTPException as is, anything else 500."""
        handler = self._user_handler(type(exc), exc)
        if handler is not None:
            return await self._answer_with(handler, exc, scope, receive, send, id_header, body)
        if isinstance(exc, HTTPException):
            headers = [id_header, *((k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items())]
            if exc.status_code in (204, 304):
                await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send_json(send, exc.status_code, {"detail": exc.detail}, headers)
            return exc.status_code
        request_id = id_header[1].decode("latin-1")
        logger.exception("cord %s failed (request %s)", route.cord.name, request_id)
        await send_json(send, 500, {"detail": "Internal Server Error", "request_id": request_id}, [id_header])
        return 500

    def _request(self, scope: Scope, receive: Receive, body: bytes) -> Request:
        """The ``Request`` a handler sees: ``request.app`` and ``url_for`` work as behind FastAPI's router."""
        app = self.owner.app
        scope["app"] = app
        scope.setdefault("router", app.router)
        request = Request(scope, receive)
        request._body = body  # already consumed from the stream; let handlers read it again
        return request

    def _user_handler(self, kind: type[BaseException], exc: BaseException | None = None) -> Callable[..., Any] | None:
        """An exception handler the user registered on the app (``@app.exception_handler``), if any."""
        handlers = self.runtime.chute.app.exception_handlers
        if not handlers:
            return None
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in kind.__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                return None if handler in _FASTAPI_DEFAULTS else handler
        # Starlette answers any other exception with the handler registered for 500, when there is one.
        return handlers.get(500) if exc is not None and not isinstance(exc, HTTPException) else None

    async def _answer_with(
        self,
        handler: Callable[..., Any],
        exc: BaseException,
        scope: Scope,
        receive: Receive,
        send: Send,
        id_header: tuple[bytes, bytes],
        body: bytes,
    ) -> int:
        request = self._request(scope, receive, body)
        try:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        except Exception:
            request_id = id_header[1].decode("latin-1")
            logger.exception("exception handler %r failed (request %s)", handler, request_id)
            await send_json(send, 500, {"detail": "Internal Server Error", "request_id": request_id}, [id_header])
            return 500
        response.raw_headers.append(id_header)
        await response(scope, receive, send)
        return int(response.status_code)


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the body has been read: nothing else can arrive)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _route_path(path: str, root_path: str) -> str:
    """``path`` without the ``root_path`` a proxy mounts the chute under (as Starlette's router matches)."""
    if path == root_path:
        return "/"
    if path.startswith(root_path) and path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path
