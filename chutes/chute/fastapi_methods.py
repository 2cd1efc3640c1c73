"""FastAPI's decorators and methods on a chute, acting on ``chute.app``.

The published chutes SDK's ``Chute`` is a FastAPI subclass, so its users write ``@chute.get(...)`` and
``chute.add_middleware(...)``; here they act on the chute's FastAPI app, which the server serves behind
its guards. The routes are plain FastAPI routes: their handlers get no ``self``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI
    from starlette.types import ASGIApp

__all__ = ["FastAPIMethods"]

F = TypeVar("F", bound=Callable[..., Any])


class FastAPIMethods:
    """FastAPI's route decorators, middleware, exception handlers, routers and mounts, on the app in ``_app``."""

    _app: FastAPI

    def get(self, path: str, **kwargs: Any) -> Callable[[F], F]:
        """Add a plain FastAPI GET route to :attr:`app` (``@chute.get("/status")``); no ``self`` is passed."""
        return self._app.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[F], F]:
        """Add a plain FastAPI POST route to :attr:`app`."""
        return self._app.post(path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[F], F]:
        """Add a plain FastAPI PUT route to :attr:`app`."""
        return self._app.put(path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[F], F]:
        """Add a plain FastAPI DELETE route to :attr:`app`."""
        return self._app.delete(path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[F], F]:
        """Add a plain FastAPI PATCH route to :attr:`app`."""
        return self._app.patch(path, **kwargs)

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """Add an ASGI middleware to :attr:`app` (``chute.add_middleware(CORSMiddleware, allow_origins=...)``)."""
        self._app.add_middleware(middleware_class, *args, **kwargs)

    def middleware(self, middleware_type: str) -> Callable[[F], F]:
        """Add a function middleware to :attr:`app` (``@chute.middleware("http")``)."""
        return self._app.middleware(middleware_type)

    def exception_handler(self, exc_class_or_status_code: int | type[Exception]) -> Callable[[F], F]:
        """Add an exception handler to :attr:`app` (``@chute.exception_handler(MyError)``)."""
        return self._app.exception_handler(exc_class_or_status_code)

    def include_router(self, router: APIRouter, **kwargs: Any) -> None:
        """Include a FastAPI ``APIRouter`` in :attr:`app`."""
        self._app.include_router(router, **kwargs)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        """Mount an ASGI application (static files, a sub-app) on :attr:`app` at ``path``."""
        self._app.mount(path, app, name=name)
