"""Running a chute's lifespan from another application's, for ``chute.app`` mounted inside it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from starlette.types import ASGIApp

from chutes.errors import StartupError


@contextlib.asynccontextmanager
async def lifespan(chute: ASGIApp) -> AsyncIterator[None]:
    """Start ``chute`` (hooks, jobs, readiness) on entry and stop it on exit, through its ASGI lifespan."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def send(message: MutableMapping[str, Any]) -> None:
        await outbox.put(dict(message))

    task = asyncio.ensure_future(chute(scope, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        with contextlib.suppress(BaseException):
            await task
        raise StartupError(started.get("message") or "the chute failed to start")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task
