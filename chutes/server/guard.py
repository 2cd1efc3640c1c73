"""The guard: the outermost ASGI middleware of a chute, on every HTTP and websocket connection it serves.

Whatever answers a request afterwards (a cord, the job API, a route the user added to ``chute.app``, a
websocket, the docs), it has passed here first:

- a request id (the client's ``X-Request-ID`` when it is short visible ASCII, else a new one), in
  ``request.state.request_id`` and on every response;
- the per-client rate limit (a token bucket; every request counts, failed authentications included), the
  client's address taken from ``X-Forwarded-For`` only when the peer is in ``CHUTES_FORWARDED_ALLOW_IPS``;
- API keys;
- the body size limit, on ``Content-Length`` at once and on chunked bodies as they arrive (413), the body
  read timeout (408), and the size of websocket messages (close 1009).

``/_health`` and ``/_ready`` are always open; ``/_metrics`` and the docs are open unless
``CHUTES_PUBLIC_DOCS`` is false. Cords found by one dict lookup go straight to the cord-call core.
"""

from __future__ import annotations

import itertools
import os
import re
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chutes.server.core import Call, CordRoute, Core
from chutes.server.errors import error_body
from chutes.server.log_config import set_request_id
from chutes.server.responses import json_dumps, send_json

if TYPE_CHECKING:
    from chutes.server.api_keys import ApiKeys
    from chutes.server.body import BodyLimits
    from chutes.server.metrics import Metrics
    from chutes.server.proxies import TrustedProxies
    from chutes.server.rate_limiter import RateLimiter

OPEN, PUBLIC, GUARDED = 0, 1, 2
BUILT_IN = frozenset({"/_health", "/_ready", "/_metrics"})
_ID_PREFIX = os.urandom(4).hex().encode()
# A client's X-Request-ID is echoed and logged: only short runs of visible ASCII, so it cannot split a
# header, forge a log line or bloat every response.
_VALID_ID = re.compile(rb"[\x21-\x7e]{1,200}").fullmatch
_UNAUTHORIZED = "Invalid or missing API key"


class Guard:
    """Checks every connection, then hands it to the cord-call core, the built-in routes or ``inner``."""

    def __init__(
        self,
        *,
        inner: ASGIApp,
        core: Core,
        routes: dict[tuple[str, str], CordRoute],
        direct: bool,
        builtin: Any,
        keys: ApiKeys,
        limiter: RateLimiter,
        proxies: TrustedProxies,
        limits: BodyLimits,
        metrics: Metrics,
        access: dict[str, int],
    ) -> None:
        self.inner = inner
        self.core = core
        self.routes = routes
        self.direct = direct  # no user middleware: cords skip the app's stack
        self.builtin = builtin  # async (path, method, send) -> None
        self.keys = keys
        self.limiter = limiter
        self.proxies = proxies
        self.limits = limits
        self.metrics = metrics
        self.access = access
        self._ids = itertools.count(1)
        # Read on every request: plain attributes, not properties.
        self.limiting = limiter.enabled
        self.keyed = keys.enabled
        self.proxied = proxies.enabled
        self.max_size = limits.max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.inner(scope, receive, send)

    def _request_id(self, scope: Scope, sent: bytes | None) -> bytes:
        request_id = sent if sent is not None and _VALID_ID(sent) else b"%s-%x" % (_ID_PREFIX, next(self._ids))
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = text = request_id.decode("latin-1")
        set_request_id(text)  # log lines written while serving the request carry its id
        return request_id

    def _client(self, scope: Scope, forwarded_for: bytes | None, proto: bytes | None) -> str:
        client = scope.get("client")
        peer = client[0] if client else ""
        proxies = self.proxies
        if not proxies.enabled or not proxies.trusts(peer):
            return peer
        if proto is not None:
            scheme = proto.decode("latin-1").split(",")[-1].strip().lower()
            if scheme in ("http", "https", "ws", "wss"):
                websocket = scope["type"] == "websocket"
                scope["scheme"] = {"https": "wss", "http": "ws"}.get(scheme, scheme) if websocket else scheme
        address = proxies.client(peer, forwarded_for)
        if address != peer:
            scope["client"] = (address, 0)
        return address

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one HTTP request (the hot path of every cord call starts here)."""
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path:
            path = route_path(path, root_path)
        sent_id = length = authorization = api_key = content_type = forwarded = proto = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                length = value
            elif key == b"x-request-id":
                sent_id = value
            elif key == b"authorization":
                authorization = value
            elif key == b"x-api-key":
                api_key = value
            elif key == b"x-forwarded-for":
                forwarded = value
            elif key == b"x-forwarded-proto":
                proto = value
        # _request_id inlined: the hot path of every request.
        request_id = sent_id if sent_id is not None and _VALID_ID(sent_id) else b"%s-%x" % (_ID_PREFIX, next(self._ids))
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = text = request_id.decode("latin-1")
        set_request_id(text)
        route = self.routes.get((scope["method"], path))
        access = self.access.get(path, GUARDED)
        if access != OPEN:
            status = 0
            if self.limiting:
                if self.proxied:
                    client = self._client(scope, forwarded, proto)
                else:  # the peer's address, as _client finds it without trusted proxies
                    peer = scope.get("client")
                    client = peer[0] if peer else ""
                wait = self.limiter.check(client)
                if wait:
                    self.metrics.rejected.labels("rate_limited").inc()
                    headers = [(b"x-request-id", request_id), (b"retry-after", str(wait).encode())]
                    await send_json(send, 429, error_body("Rate limit exceeded", request_id), headers)
                    status = 429
            elif self.proxied:
                self._client(scope, forwarded, proto)
            if not status and access == GUARDED and self.keyed and not self.keys.allows(authorization, api_key):
                self.metrics.rejected.labels("unauthorized").inc()
                headers = [(b"x-request-id", request_id), (b"www-authenticate", b"Bearer")]
                await send_json(send, 401, error_body(_UNAUTHORIZED, request_id), headers)
                status = 401
            if not status and length is not None and length.isdigit() and int(length) > self.max_size:
                self.metrics.rejected.labels("too_large").inc()
                detail = f"Request body exceeds {self.limits.max_size} bytes"
                await send_json(send, 413, error_body(detail, request_id), [(b"x-request-id", request_id)])
                status = 413
            if status:
                if route is not None:  # every answered cord call is counted, refusals included
                    route.stats.record(status, 0.0)
                return
        if route is not None and self.direct:
            # Core.serve inlined: the hot path of every cord call, one coroutine frame shorter.
            call = Call(route, scope, receive, send, request_id, content_type)
            status = 500
            try:
                status = await route.strategy.serve(self.core, call)
            finally:
                route.stats.record(status, perf_counter() - call.started)
        elif path in BUILT_IN:
            await self.builtin(path, scope["method"], IdSend(send, request_id))
        else:
            await self.inner(scope, self.limits.wrap(receive), IdSend(send, request_id))

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one websocket: refused before the handshake completes, its messages bounded in size."""
        sent_id = authorization = api_key = forwarded = proto = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                sent_id = value
            elif key == b"authorization":
                authorization = value
            elif key == b"x-api-key":
                api_key = value
            elif key == b"x-forwarded-for":
                forwarded = value
            elif key == b"x-forwarded-proto":
                proto = value
        request_id = self._request_id(scope, sent_id)
        client = self._client(scope, forwarded, proto)
        if self.limiter.enabled:
            wait = self.limiter.check(client)
            if wait:
                self.metrics.rejected.labels("rate_limited").inc()
                headers = [(b"retry-after", str(wait).encode())]
                await _deny(scope, send, 429, error_body("Rate limit exceeded", request_id), headers, 1013)
                return
        if self.keys.enabled and not self.keys.allows(authorization, api_key):
            self.metrics.rejected.labels("unauthorized").inc()
            body = error_body(_UNAUTHORIZED, request_id)
            await _deny(scope, send, 401, body, [(b"www-authenticate", b"Bearer")], 1008)
            return
        socket = BoundedWebsocket(receive, send, self.limits.max_size)
        await self.inner(scope, socket.receive, socket.send)


async def _deny(
    scope: Scope, send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]], code: int
) -> None:
    """Refuse a websocket handshake: an HTTP answer where the server can send one, else a close."""
    request_id = str(body["request_id"]).encode("latin-1")
    if "websocket.http.response" in scope.get("extensions", {}):
        payload = json_dumps(body)
        raw = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", request_id),
            *headers,
        ]
        await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
        await send({"type": "websocket.http.response.body", "body": payload})
    else:
        await send({"type": "websocket.close", "code": code, "reason": str(body["detail"])})


class IdSend:
    """``send`` adding ``X-Request-ID`` to the response's headers."""

    __slots__ = ("send", "request_id")

    def __init__(self, send: Send, request_id: bytes) -> None:
        self.send = send
        self.request_id = request_id

    async def __call__(self, message: Message) -> None:
        """Send ``message``, with the id when it starts the response."""
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(key.lower() == b"x-request-id" for key, _ in headers):
                headers.append((b"x-request-id", self.request_id))
            message = {**message, "headers": headers}
        await self.send(message)


class BoundedWebsocket:
    """A websocket's ``receive``/``send`` that closes it with 1009 on a message over the size limit."""

    __slots__ = ("_receive", "_send", "limit", "closed")

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.closed = False

    async def receive(self) -> Message:
        """The next message; a too-large one closes the socket and reads as a disconnect (code 1009)."""
        if self.closed:
            return {"type": "websocket.disconnect", "code": 1009}
        message = await self._receive()
        if message["type"] == "websocket.receive":
            data = message.get("bytes")
            size = len(data) if data is not None else _text_size(message.get("text") or "", self.limit)
            if size > self.limit:
                self.closed = True
                reason = f"message exceeds {self.limit} bytes"
                await self._send({"type": "websocket.close", "code": 1009, "reason": reason})
                return {"type": "websocket.disconnect", "code": 1009, "reason": reason}
        return message

    async def send(self, message: Message) -> None:
        """Pass a message on, unless we closed the socket already."""
        if not self.closed:
            await self._send(message)


def _text_size(text: str, limit: int) -> int:
    # A character is 1 to 4 bytes in UTF-8: encode only when the length alone cannot decide.
    if len(text) > limit or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def route_path(path: str, root_path: str) -> str:
    """``path`` without the ``root_path`` a proxy mounts the chute under (as Starlette's router matches)."""
    if path == root_path:
        return "/"
    if path.startswith(root_path) and path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path
