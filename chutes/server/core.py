"""The one cord-call core: how a guarded request to a cord becomes its answer.

Every request for a cord comes here, whichever way it arrived: the guard's fast lookup (``chute`` served
by uvicorn), the dispatcher inside user middleware, or the cord's FastAPI route on ``chute.app``. The
guard (:mod:`chutes.server.guard`) has already checked API keys, the rate limit and ``Content-Length``.

Plugging in another way to execute a cord
-----------------------------------------
Each :class:`CordRoute` has a ``strategy``: an object with ``async def serve(self, core, call) -> int``
that answers ``call`` and returns the HTTP status it sent (499 when the client left). :func:`strategy_for`
picks it from the cord; a new kind of cord (passthrough, batched) adds a class and one line there.
:class:`Core.serve` wraps every strategy with the cord's metrics and the request's id; a strategy builds
on these pieces, each answering the client itself when it refuses:

- ``core.admission``: ``enter()``/``leave()`` a *place* per request (429 via :meth:`Core.overloaded`
  when full), ``try_acquire()``/``acquire()``/``release()`` a *slot* while work executes. A batcher
  takes one slot per batch from the same object, so ``concurrency`` bounds batches in flight.
- :meth:`Core.read_body` (raw bytes, within the size limit and body timeout), :meth:`Core.bind`
  (the handler's keyword arguments from the body or query), :meth:`Core.check_content_type`.
- :meth:`Core.wait_for_slot`, :meth:`Core.invoke` (calls the handler under the cord's timeout and the
  disconnect watch), :meth:`Core.respond` (output shaping: model, bytes, ``Response``, stream).
- :meth:`Core.refuse` for any :class:`~starlette.exceptions.HTTPException` (JSON with ``request_id``),
  :meth:`Core.fail` for an exception raised by user code (the user's exception handlers, else 500).

:class:`InProcess`, the default strategy, is the reference for how they combine.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

import pydantic_core
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from chutes.errors import ChutesError
from chutes.invoke import call_handler
from chutes.server.batched import Batched
from chutes.server.body import BodyLimits, ClientGone, absorb
from chutes.server.disconnect import Watch, Watchdog
from chutes.server.errors import error_body, log_failure, user_handler
from chutes.server.output import is_stream, json_bytes, stream_response
from chutes.server.passthrough import FORWARD, Upstream
from chutes.server.responses import JSON, body_errors, send_bytes, send_json, validation_detail
from chutes.signature import BindingKind

if TYPE_CHECKING:
    from chutes.cord import Cord
    from chutes.server.admission import Admission
    from chutes.server.metrics import Metrics

WATCH_DELAY = 0.005  # seconds a cord runs before we start listening for a disconnect
_REJECTED = {413: "too_large", 408: "body_timeout", 415: "unsupported_media_type", 504: "timeout"}
_HINT = "send the body as JSON with the header `Content-Type: application/json`"


class UnsupportedMediaType(ChutesError, HTTPException):
    """A JSON cord called with a body that is not declared as JSON (a browser's cross-site form, say)."""

    def __init__(self, content_type: bytes | None) -> None:
        sent = "no Content-Type" if content_type is None else f"Content-Type {content_type.decode('latin-1')!r}"
        super().__init__(415, f"Unsupported media type: got {sent}; {_HINT}")


class CordTimeout(ChutesError, HTTPException):
    """A cord call ran past its ``timeout`` and was cancelled (504)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(504, f"The call did not finish within the cord's timeout of {seconds:g} seconds")


def is_json_type(content_type: bytes) -> bool:
    """Whether a ``Content-Type`` value is ``application/json`` or a ``+json`` type, parameters aside."""
    if content_type == b"application/json":
        return True
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class Strategy(Protocol):
    """How a cord's calls execute once guarded; see this module's docstring."""

    async def serve(self, core: Core, call: Call) -> int:
        """Answer ``call``; return the status sent (499 when the client left)."""
        ...


class CordRoute:
    """One cord with everything the hot path needs precomputed."""

    __slots__ = (
        "cord", "signature", "func", "is_coroutine", "cancellable", "is_get", "stats", "output_type",
        "serializer", "json_input", "timeout", "strategy",
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
        # Only a handler reading the raw Request itself may take a body that is not declared as JSON.
        raw = cord.signature.kind is BindingKind.NONE and cord.signature.request_param is not None
        self.json_input = not self.is_get and not raw
        self.timeout: float | None = cord.timeout
        self.strategy: Strategy = strategy_for(cord)


def strategy_for(cord: Cord) -> Strategy:
    """The strategy that executes ``cord``'s calls (the plug-in point for new kinds of cords)."""
    if cord.passthrough:
        return FORWARD
    if cord.batch is not None:
        return Batched(cord, cord.batch, CordTimeout)
    return IN_PROCESS


class Call:
    """One request for a cord on its way through the core."""

    __slots__ = ("route", "scope", "receive", "send", "request_id", "id_header", "content_type", "body", "started")

    def __init__(
        self,
        route: CordRoute,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: bytes,
        content_type: bytes | None,
    ) -> None:
        self.route = route
        self.scope = scope
        self.receive = receive
        self.send = send
        self.request_id = request_id
        self.id_header = (b"x-request-id", request_id)
        self.content_type = content_type
        self.body = b""
        self.started = perf_counter()

    @classmethod
    def from_scope(cls, route: CordRoute, scope: Scope, receive: Receive, send: Send) -> Call:
        """A call for a request that did not come through the guard's fast lookup (the FastAPI route)."""
        content_type = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
        request_id = scope.get("state", {}).get("request_id", "-").encode("latin-1")
        return cls(route, scope, receive, send, request_id, content_type)


class Core:
    """The cord-call machinery of one running chute, shared by every cord and strategy."""

    def __init__(self, owner: Any, admission: Admission, metrics: Metrics, limits: BodyLimits) -> None:
        self.owner = owner
        self.admission = admission
        self.metrics = metrics
        self.limits = limits
        self.watchdog = Watchdog(WATCH_DELAY)
        self._upstream: Upstream | None = None

    def upstream(self) -> Upstream:
        """The chute's pooled HTTP client to its loopback servers (passthrough cords), opened on first use."""
        if self._upstream is None:
            owner = self.owner
            self._upstream = Upstream(lambda: owner.passthrough_headers)
        return self._upstream

    async def close(self) -> None:
        """Close the pooled client, if one was opened (server shutdown)."""
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await upstream.aclose()

    async def serve(self, call: Call) -> None:
        """Answer one call with its cord's strategy, counted in the cord's metrics whatever happens."""
        status = 500
        try:
            status = await call.route.strategy.serve(self, call)
        finally:
            call.route.stats.record(status, perf_counter() - call.started)

    # -- building blocks ----------------------------------------------------------------------------

    def check_content_type(self, call: Call) -> None:
        """Refuse a body not declared as JSON on a JSON cord (415); call it once the body is read."""
        if not call.route.json_input:
            return
        content_type = call.content_type
        if content_type is None:
            if call.body:
                raise UnsupportedMediaType(None)
        elif not is_json_type(content_type):
            raise UnsupportedMediaType(content_type)

    async def read_body(self, call: Call) -> bytes:
        """Read the whole body into ``call.body`` (``b""`` for GET); raises what :class:`BodyLimits` raises."""
        if not call.route.is_get:
            call.body = await self.limits.read(call.receive)
        return call.body

    def bind(self, call: Call) -> dict[str, Any]:
        """The handler's keyword arguments; raises ``pydantic_core.ValidationError`` on bad input."""
        route = call.route
        if route.is_get:
            query = parse_qsl(call.scope["query_string"].decode("latin-1"), keep_blank_values=True)
            return route.signature.bind_query(query)
        return route.signature.bind_json(call.body)

    async def wait_for_slot(self, call: Call) -> int:
        """Wait in the queue for a slot: 0 once one is ours, else the status answered (429, or 499 gone)."""
        admission = self.admission
        slot = asyncio.ensure_future(admission.acquire())
        left = asyncio.ensure_future(_disconnected(call.receive))
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
            return await self.overloaded(call)
        return 0

    async def invoke(self, call: Call, kwargs: dict[str, Any], task: asyncio.Task[Any] | None = None) -> int:
        """Call the handler and answer with what it returns: the status sent, 499 if the client left.

        The call is cancelled when the client disconnects (coroutines and generators; a thread cannot
        be stopped) and, past the cord's ``timeout``, answered 504. A handler running in a thread is
        answered 504 at its deadline too, but keeps its slot until the thread returns. ``task`` is the
        current task, when the caller has it already.
        """
        route = call.route
        if route.signature.request_param is not None:
            kwargs[route.signature.request_param] = self.request(call)
        if task is None:
            task = asyncio.current_task()
            assert task is not None
        timeout = route.timeout
        deadlines = self.limits.deadlines
        if timeout is not None and route.cancellable:
            deadlines.arm(task, time.monotonic() + timeout)
        watch = self.watchdog.watch(task, call.receive, route.cancellable)
        try:
            if route.is_coroutine and route.serializer is not None:
                # _run inlined for the common case, a coroutine handler with an output model: one frame less
                try:
                    result = await route.func(self.owner, **kwargs)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    status = await self.fail(call, exc)
                else:
                    if type(result) is route.output_type:
                        body = route.serializer.to_json(result)
                        length = str(len(body)).encode()
                        headers = [(b"content-type", JSON), (b"content-length", length), call.id_header]
                        await call.send({"type": "http.response.start", "status": 200, "headers": headers})
                        await call.send({"type": "http.response.body", "body": body})
                        status = 200
                    else:
                        status = await self.respond(call, result)
            else:
                status = await self._run(call, kwargs, watch)
        except asyncio.CancelledError:
            if timeout is not None and route.cancellable and deadlines.disarm(task):
                task.uncancel()
                return await self._timed_out(call, timeout)
            # Ours alone (the client left) ends the call; any other cancellation (server shutdown) goes on.
            if watch.gone and task.uncancel() == 0:
                return 499
            raise
        finally:
            self.watchdog.forget(watch)
        if timeout is not None and route.cancellable and deadlines.disarm(task):
            await absorb(task)  # the deadline passed just as the call finished: its answer is out
        return status

    async def _timed_out(self, call: Call, timeout: float) -> int:
        if call.scope.get("chutes.response_started"):
            return 504  # a stream cut at the deadline: the status line is gone, the close says it
        return await self.refuse(call, CordTimeout(timeout))

    async def _run(self, call: Call, kwargs: dict[str, Any], watch: Watch) -> int:
        route = call.route
        try:
            if route.is_coroutine:
                result = await route.func(self.owner, **kwargs)
            elif route.timeout is not None and not route.cancellable:
                thread = asyncio.ensure_future(call_handler(route.func, self.owner, kwargs))
                done, _ = await asyncio.wait((thread,), timeout=route.timeout)
                if not done:
                    status = await self._timed_out(call, route.timeout)
                    await asyncio.wait((thread,))  # the slot is the thread's until it returns
                    return status
                result = thread.result()
            else:
                result = await call_handler(route.func, self.owner, kwargs)
            if watch.gone and not route.cancellable:  # the client left while a worker thread ran the call
                return 499
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self.fail(call, exc)
        if type(result) is route.output_type and route.serializer is not None:
            # send_bytes inlined: the answer of nearly every call, one coroutine frame and list fewer
            body = route.serializer.to_json(result)
            headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), call.id_header]
            send = call.send
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return 200
        return await self.respond(call, result)

    async def respond(self, call: Call, result: Any) -> int:
        """Send any handler result: a model or JSON value, bytes, a ``Response`` or a stream.

        A failure before the first byte still gets a clean error; after it, the connection is closed.
        """
        route = call.route
        if not isinstance(result, Response) and not is_stream(result):
            try:
                if isinstance(result, bytes | bytearray | memoryview):
                    content_type = route.cord.output_content_type.encode()
                    await send_bytes(call.send, 200, bytes(result), content_type, [call.id_header])
                    return 200
                payload = json_bytes(route.cord, result)
            except Exception as exc:
                return await self.fail(call, exc)
            await send_bytes(call.send, 200, payload, JSON, [call.id_header])
            return 200
        scope = call.scope
        send = call.send

        async def tracking_send(message: Message) -> None:
            scope["chutes.response_started"] = True
            await send(message)

        try:
            if not isinstance(result, Response):
                result = await stream_response(result, route.cord)
            result.raw_headers.append(call.id_header)
            await result(scope, call.receive, tracking_send)
        except (ClientGone, ClientDisconnect):
            return 499
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if scope.get("chutes.response_started"):  # the status line is gone: all we can do is log and close
                log_failure(f"cord {route.cord.name} failed while streaming", call.request_id)
                return 500
            return await self.fail(call, exc)
        return int(result.status_code)

    # -- answers ------------------------------------------------------------------------------------

    async def refuse(self, call: Call, exc: HTTPException) -> int:
        """Answer a refusal (413, 408, 415, 504, ...) as JSON with the request id; returns its status."""
        reason = _REJECTED.get(exc.status_code)
        if reason is not None:
            self.metrics.rejected.labels(reason).inc()
        headers = [call.id_header, *((k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items())]
        await send_json(call.send, exc.status_code, error_body(exc.detail, call.request_id), headers)
        return exc.status_code

    async def invalid(self, call: Call, exc: pydantic_core.ValidationError) -> int:
        """Answer input that failed validation: the user's handler for it, else 422 naming each problem."""
        if call.route.is_get:
            detail, data = validation_detail(exc, "query"), None
        else:
            detail, data = body_errors(call.route.signature, call.body, exc)
        handler = user_handler(self.owner.app, RequestValidationError)
        if handler is not None:
            return await self.answer_with(call, handler, RequestValidationError(detail, body=data))
        await send_json(call.send, 422, error_body(detail, call.request_id), [call.id_header])
        return 422

    async def overloaded(self, call: Call) -> int:
        """Answer 429: no place or no slot came free in time."""
        admission = self.admission
        self.metrics.rejected.labels("overloaded").inc()
        headers = [
            call.id_header,
            (b"retry-after", str(admission.retry_after()).encode()),
            (b"x-chutes-conn-used", str(admission.in_use).encode()),
            (b"x-chutes-conn-available", str(admission.available).encode()),
        ]
        await send_json(call.send, 429, error_body("Server at capacity, retry later", call.request_id), headers)
        return 429

    async def fail(self, call: Call, exc: Exception) -> int:
        """Answer an exception: the user's handler if registered, HTTPException as is, anything else 500."""
        handler = user_handler(self.owner.app, type(exc), exc)
        if handler is not None:
            return await self.answer_with(call, handler, exc)
        if isinstance(exc, HTTPException):
            if exc.status_code in (204, 304):
                headers = [call.id_header, *((k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items())]
                await call.send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
                await call.send({"type": "http.response.body", "body": b""})
                return exc.status_code
            return await self.refuse(call, exc)
        log_failure(f"cord {call.route.cord.name} failed", call.request_id)
        await send_json(call.send, 500, error_body("Internal Server Error", call.request_id), [call.id_header])
        return 500

    async def answer_with(self, call: Call, handler: Callable[..., Any], exc: BaseException) -> int:
        """Answer with a user's exception handler (``@app.exception_handler``)."""
        request = self.request(call)
        try:
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        except Exception:
            log_failure(f"exception handler {handler!r} failed", call.request_id)
            await send_json(call.send, 500, error_body("Internal Server Error", call.request_id), [call.id_header])
            return 500
        response.raw_headers.append(call.id_header)
        await response(call.scope, call.receive, call.send)
        return int(response.status_code)

    def request(self, call: Call) -> Request:
        """The ``Request`` a handler sees: ``request.app`` and ``url_for`` work as behind FastAPI's router."""
        app = self.owner.app
        scope = call.scope
        scope["app"] = app
        scope.setdefault("router", app.router)
        request = Request(scope, call.receive)
        request._body = call.body  # already consumed from the stream; let handlers read it again
        return request


class InProcess:
    """The default strategy: admit, read and bind the input, take a slot, call the handler in this process.

    A place is taken before the body is read (so the queue bounds bodies in memory) and a slot only once
    the body is in and valid (so a slow or invalid request never holds one).
    """

    async def serve(self, core: Core, call: Call) -> int:
        """Answer one call (see :class:`Strategy`)."""
        admission = core.admission
        if not admission.enter():
            return await core.overloaded(call)
        task = asyncio.current_task()  # once per call: the body read and the handler call both need it
        assert task is not None
        try:
            try:
                if not call.route.is_get:
                    call.body = await core.limits.read(call.receive, task)
                    if call.content_type != b"application/json":
                        core.check_content_type(call)
                    kwargs = call.route.signature.bind_json(call.body)  # Core.bind inlined
                else:
                    kwargs = core.bind(call)
            except pydantic_core.ValidationError as exc:
                return await core.invalid(call, exc)
            except HTTPException as exc:
                return await core.refuse(call, exc)
            except ClientGone:
                return 499
            if not admission.try_acquire():
                refused = await core.wait_for_slot(call)
                if refused:
                    return refused
            try:
                return await core.invoke(call, kwargs, task)
            finally:
                admission.release()
                admission.observe(perf_counter() - call.started)
        finally:
            admission.leave()


IN_PROCESS = InProcess()


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the body has been read: nothing else can arrive)."""
    while (await receive())["type"] != "http.disconnect":
        pass
