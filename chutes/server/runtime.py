"""The running chute: settings, lifecycle hooks, readiness, the ASGI entry point and the job service."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from chutes.chute.registry import registry_of
from chutes.errors import StartupError
from chutes.invoke import run_hooks
from chutes.server.admission import Admission
from chutes.server.api_keys import ApiKeys
from chutes.server.body import BodyLimits
from chutes.server.core import CordRoute, Core
from chutes.server.guard import GUARDED, OPEN, PUBLIC, Guard
from chutes.server.metrics import CONTENT_TYPE, Metrics
from chutes.server.openapi_docs import ASSETS, ASSETS_PATH
from chutes.server.proxies import TrustedProxies
from chutes.server.rate_limiter import RateLimiter
from chutes.server.responses import send_bytes, send_json
from chutes.server.shutdown import Drain
from chutes.settings import Settings

if TYPE_CHECKING:
    from chutes.chute import Chute
    from chutes.jobs.clock import Clock
    from chutes.jobs.service import JobService

logger = logging.getLogger("chutes.server")


class Runtime:
    """Everything that exists while a chute serves; created on the chute's first ASGI call."""

    def __init__(self, chute: Chute) -> None:
        self.chute = chute
        self.ready = False
        self.draining = False
        self.jobs: JobService | None = None
        self.clock: Clock | None = None
        """The job service's clock; None for the system clock (``chutes.testing`` sets a fake one)."""
        self.setting_overrides: dict[str, Any] = {}
        """Settings that win over the environment at the next start (``chutes.testing`` sets a few)."""
        self._stopping: asyncio.Task[None] | None = None
        self._job_routes: list[BaseRoute] = []
        # The environment is read again in startup(), where a bad value fails the start cleanly (an
        # error here would make uvicorn think lifespan is unsupported); until then, and for a mounted
        # app whose lifespan never runs, the guards follow the environment when it is valid.
        try:
            settings = Settings.load()
        except ValueError:
            settings = Settings.model_construct()
        self._configure(settings)
        self._build_entry()
        self._sigterm = Drain(0, on_drain=self._unready, on_exit=self._stop_jobs)

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        self.admission = Admission(self.chute.concurrency, settings.queue_size, settings.queue_wait)
        self.metrics = Metrics(self.admission)
        self.api_keys = ApiKeys(settings.api_key_set)
        self.rate_limiter = RateLimiter(settings.rate_limit)
        self.proxies = TrustedProxies(settings.forwarded_allow_ips)
        self.limits = BodyLimits(settings.max_body_size, settings.body_timeout)
        self.core = Core(self.chute, self.admission, self.metrics, self.limits)
        self.cord_routes = {
            (cord.method, cord.public_api_path): CordRoute(cord, self.metrics) for cord in registry_of(self.chute).cords
        }

    def _build_entry(self) -> None:
        app = self.chute.app
        # No user middleware: cords skip the app's stack (the guard calls the core); with some, cords go
        # through it to their FastAPI routes, which call the same core.
        direct = not app.user_middleware
        self.guard = Guard(
            inner=app.build_middleware_stack(),
            core=self.core,
            routes=self.cord_routes,
            direct=direct,
            builtin=self.serve_builtin,
            keys=self.api_keys,
            limiter=self.rate_limiter,
            proxies=self.proxies,
            limits=self.limits,
            metrics=self.metrics,
            access=access_rules(app, self.settings.public_docs),
        )

    # -- ASGI ---------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: the lifespan here, everything else through the guard."""
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        scope["app"] = self.chute.app
        if scope["type"] == "http":
            await self.guard.http(scope, receive, send)
        else:
            await self.guard(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        startup = await receive()
        try:
            await self.startup()
        except BaseException as exc:
            if isinstance(exc, ValueError | StartupError):  # bad settings, store, engine: the message says it all
                logger.error("chute %s failed to start: %s", self.chute.name, exc)
            else:
                logger.exception("chute %s failed to start", self.chute.name)
            await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
            raise  # as Starlette's router does: the server reports it and exits
        replayed = False

        async def inner_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return startup
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self._drain()
            return message

        async def inner_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                try:
                    await self.core.close()
                    await run_hooks(registry_of(self.chute).shutdown_hooks, self.chute)
                except Exception as exc:
                    logger.exception("a shutdown hook of chute %s failed", self.chute.name)
                    message = {"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"}
            await send(message)

        # The app's own lifespan (FastAPI `lifespan=` / on_event handlers) runs after our startup hooks.
        scope["app"] = self.chute.app
        await self.chute.app.router(scope, inner_receive, inner_send)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Read settings, run the startup hooks, start jobs, then build the serving stack and turn ready."""
        self.ready = False
        self.draining = False
        self._configure(Settings.load(**self.setting_overrides))
        await run_hooks(registry_of(self.chute).startup_hooks, self.chute)
        await self._start_jobs()
        # Hooks may have added middleware, routes or exception handlers: build the stack only now.
        self._build_entry()
        self.ready = True
        self._stopping = None
        self._sigterm = Drain(self.settings.drain_seconds, on_drain=self._unready, on_exit=self._stop_jobs)
        self._sigterm.install()
        if self.metrics.shared is not None:
            self.metrics.shared.start()
        declared = registry_of(self.chute)
        logger.info("chute %s ready: %d cords, %d jobs", self.chute.name, len(declared.cords), len(declared.jobs))

    async def _start_jobs(self) -> None:
        from chutes.jobs.api import build_router
        from chutes.jobs.service import JobService

        app = self.chute.app
        for route in self._job_routes:  # a previous lifespan of the same chute (tests reuse chutes)
            if route in app.router.routes:
                app.router.routes.remove(route)
        service = JobService(self.chute, self.settings, self.metrics.registry, self.clock)
        await service.start()
        before = list(app.router.routes)
        app.include_router(build_router(service))
        self._job_routes = [route for route in app.router.routes if route not in before]
        self.jobs = service

    def _unready(self) -> None:
        self.ready = False
        self.draining = True

    def _stop_jobs(self) -> None:
        """Start stopping the jobs: they get their grace while uvicorn gives in-flight calls theirs."""
        if self._stopping is None and self.jobs is not None:
            self._stopping = asyncio.ensure_future(self.jobs.stop())

    async def _drain(self) -> None:
        self._unready()
        self._sigterm.uninstall()
        self._stop_jobs()
        if self.metrics.shared is not None:
            await self.metrics.shared.stop()
        if self._stopping is not None:
            await self._stopping

    # -- built-in routes ----------------------------------------------------------------------------

    async def serve_builtin(self, path: str, method: str, send: Send) -> None:
        """Answer ``/_health``, ``/_ready`` or ``/_metrics`` (never gated by admission or API keys)."""
        if method not in ("GET", "HEAD"):
            await send_json(send, 405, {"detail": "Method Not Allowed"}, [(b"allow", b"GET, HEAD")])
        elif path == "/_metrics":
            await send_bytes(send, 200, self.metrics.render(), CONTENT_TYPE.encode())
        elif path == "/_ready":
            if self.ready and await self._chute_ready():
                await send_json(send, 200, {"status": "ready"})
            else:
                await send_json(send, 503, {"status": "draining" if self.draining else "starting"})
        elif path == "/_health":
            await self._serve_health(send)
        else:
            await send_json(send, 404, {"detail": "Not Found"})

    async def _chute_ready(self) -> bool:
        try:
            return bool(await self.chute.ready_check())
        except Exception:
            logger.exception("readiness check of chute %s raised", self.chute.name)
            return False

    async def _serve_health(self, send: Send) -> None:
        jobs = self.jobs
        if jobs is not None and not jobs.healthy and jobs.store is not None:
            # Workers poll the store several times a second, so this reflects its state within a moment.
            await send_json(send, 503, {"status": "unhealthy", "error": f"job store unavailable: {jobs.store.failure}"})
            return
        try:
            report: Any = self.chute.health_check()
            if inspect.isawaitable(report):
                report = await report
        except Exception as exc:
            logger.exception("health check of chute %s raised", self.chute.name)
            await send_json(send, 503, {"status": "unhealthy", "error": type(exc).__name__})
            return
        if isinstance(report, BaseModel):  # an override may answer with a model of its own
            report = report.model_dump(mode="json")
        healthy = isinstance(report, dict) and report.get("status") == "healthy"
        await send_json(send, 200 if healthy else 503, report)


def access_rules(app: FastAPI, public_docs: bool) -> dict[str, int]:
    """Which paths the guard leaves open: health and readiness always, metrics and docs when public."""
    rules = {"/_health": OPEN, "/_ready": OPEN}
    docs = ["/_metrics", app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url]
    if app.docs_url or app.redoc_url:
        docs += [f"{ASSETS_PATH}/{name}" for name in ASSETS]
    for path in docs:
        if path:
            rules[path] = PUBLIC if public_docs else GUARDED
    return rules
