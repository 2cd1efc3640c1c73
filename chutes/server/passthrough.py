"""Passthrough cords: a request forwarded to a server on the chute's loopback, its answer streamed back.

The body, query and the headers that describe the request go upstream untouched, plus the chute's
``passthrough_headers`` and the request id; the chute's own credentials (``Authorization``,
``X-API-Key``) never do. The upstream's status, headers and body come back as they are, chunk by chunk
as the upstream sends them (server-sent events included), with nothing buffered. A client that leaves
closes the upstream request, which is how an engine's server learns to stop generating. An upstream
that is not listening is a ``503`` with ``Retry-After``, never a ``500``.

One pooled :class:`httpx.AsyncClient` per chute serves every passthrough cord; the server opens it at
startup and closes it at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING

import httpx
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Send

from chutes.server.body import ClientGone
from chutes.server.responses import send_json

if TYPE_CHECKING:
    from chutes.server.core import Call, Core

__all__ = ["DEFAULT_PASSTHROUGH_PORT", "FORWARD", "Forward", "Upstream", "upstream_url"]

logger = logging.getLogger("chutes.server")

DEFAULT_PASSTHROUGH_PORT = 8000
"""The loopback port a passthrough cord forwards to when neither it nor its chute names one (the SDK's)."""

RETRY_AFTER = b"5"
"""Seconds a client should wait before retrying when the upstream is down (an engine restarting, loading)."""

# Hop-by-hop headers (RFC 9110 7.6.1) describe one connection, not the request; the length is the
# client library's to set; the chute's credentials are for the chute, not for the server behind it.
_REQUEST_DROP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host", b"content-length", b"authorization", b"x-api-key",
        b"x-request-id", b"expect",
    }
)  # fmt: skip
# The chute's server writes its own Date, Server and request id; the length stays when it is exact.
_RESPONSE_DROP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"date", b"server", b"x-request-id",
    }
)  # fmt: skip


def upstream_url(port: int, path: str, query: bytes) -> str:
    """The loopback URL of a passthrough call."""
    url = f"http://127.0.0.1:{port}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


class Upstream:
    """The chute's pooled HTTP client to its loopback servers, and the forwarding of one call through it."""

    def __init__(self, headers: Callable[[], Mapping[str, str]] | None = None, connect_timeout: float = 5.0) -> None:
        # Generations can run for minutes: only connecting is bounded; the pool is as large as the
        # admission limit allows in-flight calls, so never the bottleneck.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        timeout = httpx.Timeout(None, connect=connect_timeout)
        self.client = httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)
        # Asked at each call: a template adds its engine's key once the engine has started.
        self.headers: Callable[[], Mapping[str, str]] = headers or dict

    async def aclose(self) -> None:
        """Close every pooled connection (server shutdown)."""
        await self.client.aclose()

    def _request_headers(self, headers: Iterable[tuple[bytes, bytes]], request_id: bytes) -> list[tuple[bytes, bytes]]:
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers().items()]
        names = {name for name, _ in extra}
        kept = [(k, v) for k, v in headers if k not in _REQUEST_DROP and k not in names]
        return [*kept, *extra, (b"x-request-id", request_id)]

    async def forward(
        self,
        *,
        method: str,
        url: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        receive: Receive,
        send: Send,
        request_id: bytes,
    ) -> int:
        """Forward one request to ``url`` and stream the answer to ``send``; returns the status sent.

        499 means the client left (the upstream request was closed); 503 that the upstream did not answer.
        """
        id_header = (b"x-request-id", request_id)
        ids = [id_header]
        request = self.client.build_request(
            method, url, headers=self._request_headers(headers, request_id), content=body
        )
        try:
            response = await self.client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            logger.warning("passthrough to %s failed: %s (request %s)", url, exc, request_id.decode("latin-1"))
            detail = {"detail": "The model server is not available, retry later", "request_id": request_id.decode()}
            await send_json(send, 503, detail, [*ids, (b"retry-after", RETRY_AFTER)])
            return 503
        try:
            return await self._relay(response, receive, send, ids, request_id)
        finally:
            await response.aclose()  # on a client that left this closes the connection: the upstream aborts

    async def _relay(
        self, response: httpx.Response, receive: Receive, send: Send, ids: list[tuple[bytes, bytes]], request_id: bytes
    ) -> int:
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP]
        headers.extend(ids)
        # One listener per call: a client that leaves cancels the relay, whose caller closes the upstream.
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.Event()
        listener = asyncio.ensure_future(_cancel_when_gone(receive, task, gone))
        try:
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            # Raw bytes: the upstream's Content-Encoding and Content-Length stay true for what is sent.
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if gone.is_set() and task.uncancel() == 0:  # ours: the client left; any other goes on
                return 499
            raise
        except httpx.HTTPError as exc:  # the upstream died mid-answer: the status line is gone, close short
            logger.warning("passthrough answer broke off: %s (request %s)", exc, request_id.decode("latin-1"))
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b""})
        finally:
            listener.cancel()
        return int(response.status_code)


async def _cancel_when_gone(receive: Receive, task: asyncio.Task[object], gone: asyncio.Event) -> None:
    """Cancel ``task`` when the client disconnects (its body has been read: nothing else can arrive)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
    task.cancel()


class Forward:
    """The core's strategy for passthrough cords: admitted like any cord, then forwarded, not bound.

    A place is taken before the body is read and a slot once it is in, as for in-process cords, so
    ``concurrency`` bounds the calls forwarded at once and the queue answers 429 beyond it.
    """

    async def serve(self, core: Core, call: Call) -> int:
        """Answer one call (see :class:`chutes.server.core.Strategy`)."""
        admission = core.admission
        if not admission.enter():
            return await core.overloaded(call)
        try:
            try:
                await core.read_body(call)
            except HTTPException as exc:
                return await core.refuse(call, exc)
            except ClientGone:
                return 499
            if not admission.try_acquire():
                refused = await core.wait_for_slot(call)
                if refused:
                    return refused
            try:
                return await self._forward(core, call)
            finally:
                admission.release()
                admission.observe(perf_counter() - call.started)
        finally:
            admission.leave()

    async def _forward(self, core: Core, call: Call) -> int:
        cord = call.route.cord
        timeout = call.route.timeout
        scope, send = call.scope, call.send
        if timeout is not None:  # a deadline needs to know whether the answer has begun

            async def tracking_send(message: Message) -> None:
                scope["chutes.response_started"] = True
                await call.send(message)

            send = tracking_send
        port = cord.passthrough_port or DEFAULT_PASSTHROUGH_PORT
        forwarding = core.upstream().forward(
            method=cord.method,
            url=upstream_url(port, cord.passthrough_path or cord.public_api_path, scope["query_string"]),
            headers=scope["headers"],
            body=call.body,
            receive=call.receive,
            send=send,
            request_id=call.request_id,
        )
        if timeout is None:
            return await forwarding
        try:
            async with asyncio.timeout(timeout):
                return await forwarding
        except TimeoutError:
            if scope.get("chutes.response_started"):
                return 504  # cut at the deadline mid-answer: the status line is gone, the close says it
            detail = f"The call did not finish within the cord's timeout of {timeout:g} seconds"
            return await core.refuse(call, HTTPException(504, detail))


FORWARD = Forward()
"""The strategy instance :func:`chutes.server.core.strategy_for` gives passthrough cords."""
