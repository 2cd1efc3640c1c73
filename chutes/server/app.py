"""``chute.app``: a FastAPI application whose every connection is served by its chute, guards included."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from chutes.server.errors import install_handlers


class ChuteApp(FastAPI):
    """The FastAPI app of a chute (``chute.app``).

    Routes, middleware and exception handlers are added to it as to any FastAPI app, but calling it
    (``TestClient(chute.app)``, mounting it in another app) serves the chute: the same guard, cords,
    built-in routes and lifecycle as serving the chute itself. Its errors are JSON with a request id.
    """

    def __init__(self, owner: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner
        install_handlers(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve through the chute (its runtime builds the app's own stack behind the guard)."""
        await self.owner(scope, receive, send)
