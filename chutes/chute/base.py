"""The ``Chute``: one deployable AI application, its cords, jobs, websockets and lifecycle hooks."""

from __future__ import annotations

import contextlib
import logging
import sys
import types
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chutes.chute.fastapi_methods import FastAPIMethods
from chutes.chute.registry import DEFAULT_PRIORITY, Declared, Hook, attach_registry, registry_of
from chutes.cord import Cord
from chutes.deployment import DeploymentFields, DeploymentProperties
from chutes.errors import ChuteDefinitionError
from chutes.image import Image
from chutes.job import Job, Port, current_output_dir
from chutes.name import NAME_RULE, is_valid_name, name_problem
from chutes.node_selector import NodeSelector
from chutes.server.app import ChuteApp
from chutes.server.openapi_docs import add_offline_docs, docs_urls
from chutes.server.route import add_cord_route, add_websocket_route
from chutes.signature import check_chute_parameter
from chutes.websocket import Websocket

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from chutes.server.runtime import Runtime

__all__ = ["Chute", "ChuteConfig"]

F = TypeVar("F", bound=Callable[..., Any])


class ChuteConfig(DeploymentFields):
    """The chute's validated settings, read-only (``chute.config``), deployment keywords included."""

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
            raise ValueError(name_problem(value))
        return value

    @field_validator("concurrency", mode="before")
    @classmethod
    def _strict_int(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"concurrency must be an integer of at least 1, got {value!r}")
        return value


class Chute(DeploymentProperties, FastAPIMethods):
    """A deployable AI application: metadata, image, hardware, and the functions it serves.

    A ``Chute`` is an ASGI application (``uvicorn module:chute``); its FastAPI app is :attr:`app`, and
    FastAPI's own decorators and methods (``@chute.get``, ``chute.add_middleware``, ...) act on it.

    ``cords``, ``jobs``, ``websockets``, ``startup_hooks`` and ``shutdown_hooks`` read what the chute
    declared until user code assigns its own value to one of those names (``self.jobs = {}`` in a hook
    is the user's attribute); the framework itself reads the registry (:func:`registry_of`).
    """

    _config: ChuteConfig
    _app: FastAPI

    cords: Declared[list[Cord]] = Declared()
    jobs: Declared[dict[str, Job]] = Declared()
    websockets: Declared[list[Websocket]] = Declared()
    startup_hooks: Declared[list[Callable[..., Any]]] = Declared()
    shutdown_hooks: Declared[list[Callable[..., Any]]] = Declared()

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
        max_instances: int | None = None,
        scaling_threshold: float = 0.75,
        shutdown_after_seconds: int = 300,
        allow_external_egress: bool = True,
        passthrough_headers: dict[str, str] | None = None,
        tee: bool = False,
        encrypted_fs: bool = False,
        lock_modules: bool | None = None,
        **kwargs: Any,
    ) -> None:
        # The deployment keywords (max_instances ... lock_modules) are the published SDK's, with its ranges;
        # they shape the generated manifests (README: "Chutes written for the chutes SDK"), never FastAPI.
        self._config = ChuteConfig(
            username=username,
            name=name,
            tagline=tagline,
            readme=readme,
            standard_template=standard_template,
            revision=revision,
            concurrency=concurrency,
            max_instances=max_instances,
            scaling_threshold=scaling_threshold,
            shutdown_after_seconds=shutdown_after_seconds,
            allow_external_egress=allow_external_egress,
            passthrough_headers={} if passthrough_headers is None else passthrough_headers,
            tee=tee,
            encrypted_fs=encrypted_fs,
            lock_modules=lock_modules,
        )
        if isinstance(image, str):
            if not image.strip() or any(c.isspace() for c in image):
                raise ChuteDefinitionError(
                    f"image must be an image reference like 'python:3.11', got {image!r}", ("image",)
                )
        elif not isinstance(image, Image):
            raise ChuteDefinitionError(
                f"image must be a string reference or an Image, got {type(image).__name__}", ("image",)
            )
        self.image: str | Image = image
        if isinstance(node_selector, dict):
            node_selector = NodeSelector(**node_selector)
        elif node_selector is not None and not isinstance(node_selector, NodeSelector):
            raise ChuteDefinitionError(
                f"node_selector must be a NodeSelector, got {type(node_selector).__name__}", ("node_selector",)
            )
        self.node_selector: NodeSelector | None = node_selector
        self.fastapi_kwargs: dict[str, Any] = dict(kwargs)
        app_kwargs, docs_url, redoc_url = docs_urls({"title": name, "description": tagline} | kwargs)
        self._app = ChuteApp(self, **app_kwargs)
        # Swagger UI and ReDoc from assets the chute serves itself: /docs works on a machine without internet.
        add_offline_docs(self._app, docs_url, redoc_url)
        self._logger = logging.getLogger(f"chutes.{name}")
        attach_registry(self)
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

    @property
    def output_dir(self) -> str | None:
        """The output folder of the job run executing in the current task (``None`` outside a job run).

        Each run has its own, even with several runs executing at once (``CHUTES_JOB_WORKERS``); files left
        there are kept with the run (``GET /_jobs/runs/{id}/files``) when the job's ``upload`` is true.
        """
        folder = current_output_dir.get()
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)  # made on first use: jobs writing no files cost nothing
        return str(folder)

    # -- decorators ---------------------------------------------------------------------------------

    def _remember(self, func: Callable[..., Any]) -> None:
        namespace = getattr(func, "__globals__", None)
        if isinstance(namespace, dict) and all(namespace is not known for known in self._namespaces):
            self._namespaces.append(namespace)

    def on_startup(self, priority: int = DEFAULT_PRIORITY) -> Callable[[F], F]:
        """Register ``async def hook(self)`` to run at startup, before the server takes requests.

        Args:
            priority: Lower runs first (default 50); hooks of equal priority run in declaration order.
        """
        return self._hook(registry_of(self).startup, priority, "startup hook")

    def on_shutdown(self, priority: int = DEFAULT_PRIORITY) -> Callable[[F], F]:
        """Register ``async def hook(self)`` to run at shutdown.

        Args:
            priority: Lower runs first (default 50); hooks of equal priority run in declaration order.
        """
        return self._hook(registry_of(self).shutdown, priority, "shutdown hook")

    def _hook(self, hooks: list[Hook], priority: int, what: str) -> Callable[[F], F]:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ChuteDefinitionError(
                f"hook priority must be an integer (lower runs first), got {priority!r}", ("priority",)
            )

        def decorator(func: F) -> F:
            check_chute_parameter(func, what)
            self._remember(func)
            hooks.append(Hook(func, priority))
            return func

        return decorator

    def cord(
        self,
        public_api_path: str | None = None,
        method: str = "POST",
        input_schema: type[BaseModel] | None = None,
        output_schema: type[BaseModel] | None = None,
        minimal_input_schema: type[BaseModel] | None = None,
        output_content_type: str = "application/json",
        stream: bool = False,
        public_api_method: str | None = None,
        path: str | None = None,
        provision_timeout: int | None = None,
        timeout: float | None = None,
        max_batch_size: int | None = None,
        batch_wait_ms: float = 5.0,
        batch_field: str | None = None,
        passthrough: bool = False,
        passthrough_path: str | None = None,
        passthrough_port: int | None = None,
    ) -> Callable[[F], F]:
        """Serve the decorated function at ``public_api_path`` (input and output rules: README, "HTTP behaviour").

        With ``max_batch_size`` concurrent calls are batched: the function takes a list of inputs and
        returns a list of outputs (README, "Dynamic batching").

        Without ``public_api_path`` the cord is served at ``path`` (the SDK's name for it), else at
        ``/<function name>``. ``provision_timeout`` is the SDK's client-side wait for a cold chute: kept in
        the cord and its spec, it has no effect on the server. ``timeout`` (seconds): a call still running
        past it is cancelled and answered 504.
        the cord and its spec, it has no effect on the server.

        With ``passthrough=True`` the function is not called: the request is forwarded to
        ``http://127.0.0.1:<passthrough_port><passthrough_path>`` (the cord's path and port 8000 by
        default) and the answer streamed back untouched (README, "Passthrough cords").
        """
        if public_api_method is not None:
            warnings.warn("public_api_method is deprecated; use method", DeprecationWarning, stacklevel=2)
            method = public_api_method
        registry = registry_of(self)

        def decorator(func: F) -> F:
            route = public_api_path
            if route is None:
                route = path if path is not None else "/" + str(getattr(func, "__name__", "cord"))
            cord = Cord(
                func=func,
                public_api_path=route,
                method=method,
                input_schema=input_schema,
                output_schema=output_schema,
                minimal_input_schema=minimal_input_schema,
                output_content_type=output_content_type,
                stream=stream,
                provision_timeout=provision_timeout,
                timeout=timeout,
                max_batch_size=max_batch_size,
                batch_wait_ms=batch_wait_ms,
                batch_field=batch_field,
                passthrough=passthrough,
                passthrough_path=passthrough_path,
                passthrough_port=passthrough_port,
                localns=sys._getframe(1).f_locals,
            )
            for other in registry.cords:
                if (other.public_api_path, other.method) == (cord.public_api_path, cord.method):
                    served = f"{cord.method} {cord.public_api_path}"
                    raise ChuteDefinitionError(
                        f"cord {cord.name}: {served} is already served by cord {other.name}", ("public_api_path",)
                    )
            if any(ws.path == cord.public_api_path for ws in registry.websockets):
                raise ChuteDefinitionError(
                    f"cord {cord.name}: {cord.public_api_path} is already a websocket path", ("public_api_path",)
                )
            self._remember(func)
            registry.cords.append(cord)
            add_cord_route(self._app, self, cord)
            return func

        return decorator

    def job(
        self,
        name: str | None = None,
        schedule: str | None = None,
        retry_count: int = 3,
        timeout: float | None = None,
        *,
        ports: list[Port] | None = None,
        upload: bool = True,
        ssh: bool = False,
    ) -> Callable[[F], F]:
        """Register a background job, run over ``/_jobs`` or on a cron ``schedule``.

        The published SDK's keywords work too: ``ports`` (container ports in the Kubernetes manifests),
        ``upload`` (keep the files each run leaves in its output folder; default true) and ``ssh``
        (accepted with a warning: only the hosted platform provides it).
        """

        def decorator(func: F) -> F:
            job = Job(
                func=func, name=name or func.__name__, schedule=schedule, retry_count=retry_count, timeout=timeout,
                ports=list(ports or []), upload=upload, ssh=ssh,
            )  # fmt: skip
            jobs = registry_of(self).jobs
            if job.name in jobs:
                raise ChuteDefinitionError(f"job {job.name!r} is declared twice", ("name",))
            self._remember(func)
            jobs[job.name] = job
            return func

        return decorator

    def websocket(self, path: str) -> Callable[[F], F]:
        """Serve ``async def handler(self, websocket)`` as a websocket at ``path``."""

        registry = registry_of(self)

        def decorator(func: F) -> F:
            ws = Websocket(func=func, path=path)
            if any(other.path == ws.path for other in registry.websockets):
                raise ChuteDefinitionError(f"websocket {ws.name}: {ws.path} is already a websocket path", ("path",))
            if any(cord.public_api_path == ws.path for cord in registry.cords):
                raise ChuteDefinitionError(f"websocket {ws.name}: {ws.path} is already a cord path", ("path",))
            self._remember(func)
            registry.websockets.append(ws)
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
        registry = registry_of(self)
        for cord in registry.cords:
            if cord.name == name:
                return types.MethodType(cord.func, self)
        for job in registry.jobs.values():
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
            runtime = self._serving()
        if scope["type"] == "http":  # Runtime.__call__ inlined: one coroutine frame less on every request
            scope["app"] = self.app
            await runtime.guard.http(scope, receive, send)
        else:
            await runtime(scope, receive, send)

    def lifespan(self, app: object = None) -> contextlib.AbstractAsyncContextManager[None]:
        """Start and stop this chute from another app's lifespan: ``FastAPI(lifespan=chute.lifespan)``.

        Starlette runs no lifespan of a mounted app; an app mounting ``chute.app`` passes this one so the
        chute's startup hooks, jobs and readiness run with it.
        """
        from chutes.server.mount import lifespan

        return lifespan(self)

    def _serving(self) -> Runtime:
        """The chute's runtime, created on first use (the first connection, or a route of ``app`` called alone)."""
        if self._runtime is None:
            from chutes.server.runtime import Runtime

            self._runtime = Runtime(self)
        return self._runtime

    def run_local(self, host: str = "0.0.0.0", port: int = 8000, reload: bool = True, log_level: str = "info") -> None:
        """Serve the chute with uvicorn (auto-reload needs the chute importable as ``module:attr``)."""
        from chutes.server.serve import serve_chute

        serve_chute(self, host=host, port=port, reload=reload, log_level=log_level)

    def __repr__(self) -> str:
        registry = registry_of(self)
        return (
            f"Chute(username={self.username!r}, name={self.name!r}, "
            f"cords={len(registry.cords)}, jobs={len(registry.jobs)})"
        )


def _takes_self(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == "self"
