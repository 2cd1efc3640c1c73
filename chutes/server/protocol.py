"""The HTTP/1.1 protocol ``chutes serve`` runs: uvicorn's httptools protocol, writing each response in one go.

uvicorn writes a response's status line and headers when the app sends ``http.response.start``, and its
body when the app sends ``http.response.body``: two ``write`` system calls, so two TCP segments (uvloop
sets ``TCP_NODELAY``), for every plain response. :class:`CoalescingTransport` gathers what is written
during one turn of the event loop and hands it to the socket at the end of that turn, in one write.
Nothing waits on a timer: a streamed chunk leaves as soon as the loop comes round, and several chunks
written in the same turn leave together. On the benchmark's small JSON cord this is the largest single
cost of a call it removes (``benchmarks/bench_server.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingTransport", "HttpProtocol"]


class CoalescingTransport:
    """A transport that buffers the writes of one event-loop turn and passes them on together.

    Everything else is the wrapped transport's. ``close`` and ``write_eof`` send what is buffered first,
    so no byte written before them is lost or reordered.
    """

    __slots__ = ("_buffer", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data``; the first write of a turn arranges the flush at its end."""
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(bytes(data) if not isinstance(data, bytes) else data)

    def writelines(self, lines: Any) -> None:
        """Buffer each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Hand what is buffered to the socket now (dropped if the connection is already closing)."""
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        if self.transport.is_closing():
            return
        self.transport.write(buffer[0] if len(buffer) == 1 else b"".join(buffer))

    def close(self) -> None:
        """Send what is buffered, then close the connection."""
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        """Send what is buffered, then half-close the connection."""
        self.flush()
        self.transport.write_eof()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent: those buffered here and the wrapped transport's."""
        return sum(map(len, self._buffer)) + self.transport.get_write_buffer_size()

    # Called on every request: spelled out rather than found through __getattr__.
    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        """Stop reading from the socket (flow control)."""
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        self.transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The wrapped transport's extra information (``peername``, ``socket``...)."""
        return self.transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport` (pass it as uvicorn's ``http``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start serving a connection, its writes coalesced."""
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection to the websocket protocol on its own transport (it writes frames itself)."""
        wrapper = self.transport
        if isinstance(wrapper, CoalescingTransport):
            wrapper.flush()
            self.transport = wrapper.transport
        super().handle_websocket_upgrade()
