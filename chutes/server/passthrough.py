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
from typing import TYPE_CHECKING

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from chutes.server.responses import send_json

if TYPE_CHECKING:
    from chutes.cord import Cord

__all__ = ["DEFAULT_PASSTHROUGH_PORT", "ForwardedResponse", "Upstream", "upstream_url"]

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
        echo_id: bool = True,
    ) -> int:
        """Forward one request to ``url`` and stream the answer to ``send``; returns the status sent.

        499 means the client left (the upstream request was closed); 503 that the upstream did not answer.
        ``echo_id`` adds ``X-Request-ID`` to the answer (off when the caller's ``send`` adds it already).
        """
        id_header = (b"x-request-id", request_id)
        ids = [id_header] if echo_id else []
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


class ForwardedResponse(Response):
    """A passthrough call answered from a FastAPI route (``TestClient(chute.app)``, a mounted ``chute.app``)."""

    def __init__(self, upstream: Upstream, cord: Cord, body: bytes, request_id: str, close: bool) -> None:
        super().__init__()
        self.upstream = upstream
        self.cord = cord
        self.body_bytes = body
        self.request_id = request_id.encode("latin-1")
        self.close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward and relay; the route's caller adds the request id to the answer."""
        cord = self.cord
        port = cord.passthrough_port or DEFAULT_PASSTHROUGH_PORT
        try:
            self.status_code = await self.upstream.forward(
                method=cord.method,
                url=upstream_url(port, cord.passthrough_path or cord.public_api_path, scope["query_string"]),
                headers=scope["headers"],
                body=self.body_bytes,
                receive=receive,
                send=send,
                request_id=self.request_id,
                echo_id=False,
            )
        finally:
            if self.close:
                await self.upstream.aclose()
