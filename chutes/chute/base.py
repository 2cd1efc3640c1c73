"""The ``Chute``: one deployable AI application, its cords, jobs, websockets and lifecycle hooks."""

from __future__ import annotations

import logging
import sys
import types
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chutes.cord import Cord
from chutes.errors import ChuteDefinitionError
from chutes.image import Image
from chutes.job import Job
from chutes.name import NAME_RULE, is_valid_name
from chutes.node_selector import NodeSelector
from chutes.route import add_cord_route, add_websocket_route
from chutes.websocket import Websocket

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from chutes.server.runtime import Runtime

__all__ = ["Chute", "ChuteConfig"]

F = TypeVar("F", bound=Callable[..., Any])


class ChuteConfig(BaseModel):
    """The chute's validated settings, read-only (``chute.config``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str = Field(description=f"Owner of the chute: {NAME_RULE}.")
    name: str = Field(description=f"Name of the chute: {NAME_RULE}.")
    tagline: str = ""
    readme: str = ""
    standard_template: str | None = None
    revision: str | None = None
    concurrency: int = Field(1, ge=1, description="Cord calls executing at once.")

    @field_validator("username", "name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError(f"{value!r} is not a valid name: use {NAME_RULE}")
        return value

    @field_validator("concurrency", mode="before")
    @classmethod
    def _strict_int(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"concurrency must be an integer of at least 1, got {value!r}")
        return value


class Chute:
    """A deployable AI application: metadata, image, hardware, and the functions it serves.

    A ``Chute`` is an ASGI application (``uvicorn module:chute``); its FastAPI app is :attr:`app`.
    """

    def __init__(
        self,
        username: str,
        name: str,
        image: str | Image,
        tagline: str = "",
        readme: str = "",
        standard_template: str | None = None,
        revision: str | None = None,
        node_selector: NodeSelector | dict[str, Any] | None = None,
        concurrency: int = 1,
        passthrough_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._config = ChuteConfig(
            username=username,
            name=name,
            tagline=tagline,
            readme=readme,
            standard_template=standard_template,
            revision=revision,
            concurrency=concurrency,
        )
        if isinstance(image, str):
            if not image.strip() or any(c.isspace() for c in image):
                raise ChuteDefinitionError(f"image must be an image reference like 'python:3.11', got {image!r}")
        elif not isinstance(image, Image):
            raise ChuteDefinitionError(f"image must be a string reference or an Image, got {type(image).__name__}")
        self.image: str | Image = image
        if isinstance(node_selector, dict):
            node_selector = NodeSelector(**node_selector)
        elif node_selector is not None and not isinstance(node_selector, NodeSelector):
            raise ChuteDefinitionError(f"node_selector must be a NodeSelector, got {type(node_selector).__name__}")
        self.node_selector: NodeSelector | None = node_selector
        self.passthrough_headers: dict[str, str] = _check_headers(passthrough_headers)
        self.fastapi_kwargs: dict[str, Any] = dict(kwargs)
        app_kwargs = {"title": name, "description": tagline} | kwargs
        self._app = FastAPI(**app_kwargs)
        self._logger = logging.getLogger(f"chutes.{name}")
        self.cords: list[Cord] = []
        self.jobs: dict[str, Job] = {}
        self.websockets: list[Websocket] = []
        self.startup_hooks: list[Callable[..., Any]] = []
        self.shutdown_hooks: list[Callable[..., Any]] = []
        # Module namespaces whose plain `def f(self, ...)` helpers become methods of the chute, as the
        # reference's examples call `self.helper(...)` on module-level functions.
        caller = sys._getframe(1).f_globals
        self._namespaces: list[dict[str, Any]] = [caller]
        self.module_name: str | None = caller.get("__name__")
        self._runtime: Runtime | None = None

    # -- read-only settings -------------------------------------------------------------------------

    @property
    def username(self) -> str:
        """The owner's name."""
        return self._config.username

    @property
    def name(self) -> str:
        """The chute's name."""
        return self._config.name

    @property
    def tagline(self) -> str:
        """A one-line description."""
        return self._config.tagline

    @property
    def readme(self) -> str:
        """Markdown documentation for the chute's users."""
        return self._config.readme

    @property
    def standard_template(self) -> str | None:
        """The standard template this chute was built from, if any."""
        return self._config.standard_template

    @property
    def revision(self) -> str | None:
        """A revision or version identifier."""
        return self._config.revision

    @property
    def concurrency(self) -> int:
        """How many cord calls execute at once."""
        return self._config.concurrency

    @property
    def config(self) -> ChuteConfig:
        """A read-only view of the chute's settings (``name``, ``username``, ``concurrency``, ...)."""
        return self._config

    @property
    def app(self) -> FastAPI:
        """The underlying FastAPI application."""
        return self._app

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the chute."""
        return self._logger

    # -- decorators ---------------------------------------------------------------------------------

    def _remember(self, func: Callable[..., Any]) -> None:
        namespace = getattr(func, "__globals__", None)
        if isinstance(namespace, dict) and all(namespace is not known for known in self._namespaces):
            self._namespaces.append(namespace)

    def on_startup(self) -> Callable[[F], F]:
        """Register ``async def hook(self)`` to run at startup, before the server takes requests."""

        def decorator(func: F) -> F:
            self._remember(func)
            self.startup_hooks.append(func)
            return func

        return decorator

    def on_shutdown(self) -> Callable[[F], F]:
        """Register ``async def hook(self)`` to run at shutdown."""

        def decorator(func: F) -> F:
            self._remember(func)
            self.shutdown_hooks.append(func)
            return func

        return decorator

    def cord(
        self,
        public_api_path: str,
        method: str = "POST",
        input_schema: type[BaseModel] | None = None,
        output_schema: type[BaseModel] | None = None,
        minimal_input_schema: type[BaseModel] | None = None,
        output_content_type: str = "application/json",
        stream: bool = False,
        public_api_method: str | None = None,
        passthrough: bool = False,
        passthrough_path: str | None = None,
        passthrough_port: int | None = None,
    ) -> Callable[[F], F]:
        """Serve the decorated function at ``public_api_path`` (input and output rules: README, "HTTP behaviour").

        With ``passthrough=True`` the function is not called: the request is forwarded to
        ``http://127.0.0.1:<passthrough_port><passthrough_path>`` (the cord's path and port 8000 by
        default) and the answer streamed back untouched (README, "Passthrough cords").
        """
        if public_api_method is not None:
            warnings.warn("public_api_method is deprecated; use method", DeprecationWarning, stacklevel=2)
            method = public_api_method

        def decorator(func: F) -> F:
            cord = Cord(
                func=func,
                public_api_path=public_api_path,
                method=method,
                input_schema=input_schema,
                output_schema=output_schema,
                minimal_input_schema=minimal_input_schema,
                output_content_type=output_content_type,
                stream=stream,
                passthrough=passthrough,
                passthrough_path=passthrough_path,
                passthrough_port=passthrough_port,
                localns=sys._getframe(1).f_locals,
            )
            for other in self.cords:
                if (other.public_api_path, other.method) == (cord.public_api_path, cord.method):
                    raise ChuteDefinitionError(
                        f"cord {cord.name}: {cord.method} {cord.public_api_path} is already served by cord {other.name}"
                    )
            if any(ws.path == cord.public_api_path for ws in self.websockets):
                raise ChuteDefinitionError(f"cord {cord.name}: {cord.public_api_path} is already a websocket path")
            self._remember(func)
            self.cords.append(cord)
            add_cord_route(self._app, self, cord)
            return func

        return decorator

    def job(
        self,
        name: str | None = None,
        schedule: str | None = None,
        retry_count: int = 3,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Register a background job, run over ``/_jobs`` or on a cron ``schedule``."""

        def decorator(func: F) -> F:
            job = Job(
                func=func, name=name or func.__name__, schedule=schedule, retry_count=retry_count, timeout=timeout
            )
            if job.name in self.jobs:
                raise ChuteDefinitionError(f"job {job.name!r} is declared twice")
            self._remember(func)
            self.jobs[job.name] = job
            return func

        return decorator

    def websocket(self, path: str) -> Callable[[F], F]:
        """Serve ``async def handler(self, websocket)`` as a websocket at ``path``."""

        def decorator(func: F) -> F:
            ws = Websocket(func=func, path=path)
            if any(other.path == ws.path for other in self.websockets):
                raise ChuteDefinitionError(f"websocket {ws.name}: {ws.path} is already a websocket path")
            if any(cord.public_api_path == ws.path for cord in self.cords):
                raise ChuteDefinitionError(f"websocket {ws.name}: {ws.path} is already a cord path")
            self._remember(func)
            self.websockets.append(ws)
            add_websocket_route(self._app, self, ws)
            return func

        return decorator

    # -- behaviour ----------------------------------------------------------------------------------

    async def health_check(self) -> dict[str, Any]:
        """Report health; replace it by assigning ``self.health_check = fn`` (served at ``/_health``)."""
        return {"status": "healthy", "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

    async def ready_check(self) -> bool:
        """Whether the chute takes calls now, once its startup hooks ran (``/_ready``); True unless overridden.

        A template whose model server starts in the background says False until that server answers.
        """
        return True

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the instance lacks: cords and jobs by function name, then
        # module-level helpers written as `def helper(self, ...)`, bound to this chute.
        if name.startswith("__") or "_namespaces" not in self.__dict__:
            raise AttributeError(name)
        for cord in self.__dict__["cords"]:
            if cord.name == name:
                return types.MethodType(cord.func, self)
        for job in self.__dict__["jobs"].values():
            if getattr(job.func, "__name__", None) == name:
                return types.MethodType(job.func, self)
        for namespace in self.__dict__["_namespaces"]:
            candidate = namespace.get(name)
            if callable(candidate) and not isinstance(candidate, type) and _takes_self(candidate):
                return types.MethodType(candidate, self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the chute as an ASGI application."""
        runtime = self._runtime
        if runtime is None:
            from chutes.server.runtime import Runtime

            runtime = self._runtime = Runtime(self)
        await runtime(scope, receive, send)

    def run_local(self, host: str = "0.0.0.0", port: int = 8000, reload: bool = True, log_level: str = "info") -> None:
        """Serve the chute with uvicorn (auto-reload needs the chute importable as ``module:attr``)."""
        from chutes.server.serve import serve_chute

        serve_chute(self, host=host, port=port, reload=reload, log_level=log_level)

    def __repr__(self) -> str:
        return f"Chute(username={self.username!r}, name={self.name!r}, cords={len(self.cords)}, jobs={len(self.jobs)})"


def _check_headers(value: object) -> dict[str, str]:
    """``passthrough_headers``: header names and values, both strings, sent with every passthrough call."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ChuteDefinitionError(f"passthrough_headers must be a dict of header names to strings, got {value!r}")
    return dict(value)


def _takes_self(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == "self"
