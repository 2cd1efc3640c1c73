"""The ``/_jobs`` HTTP routes: list jobs, submit, list, show and cancel runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from chutes.chute.registry import registry_of
from chutes.jobs.service import UnknownJobError
from chutes.jobs.store import RunFinishedError, RunNotFoundError
from chutes.server.core import UnsupportedMediaType, is_json_type
from chutes.server.responses import body_errors

if TYPE_CHECKING:
    from chutes.jobs.service import JobService

__all__ = ["build_router"]

StatusFilter = Literal["queued", "running", "completed", "failed", "cancelled"]


def build_router(service: JobService) -> APIRouter:
    """The routes of ``service``, under the ``/_jobs`` prefix."""
    router = APIRouter(prefix="/_jobs", tags=["jobs"])

    @router.get("", summary="List the chute's jobs")
    async def list_jobs() -> JSONResponse:
        return JSONResponse(service.definitions())

    @router.get("/runs", summary="List runs, newest first")
    async def list_runs(
        name: str | None = None,
        status: StatusFilter | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        if service.store is None:
            return JSONResponse([])
        return JSONResponse([run.to_json() for run in service.store.runs(name, status, limit)])

    @router.get("/runs/{run_id}", summary="Show a run")
    async def show_run(run_id: str) -> JSONResponse:
        run = service.store.get(run_id) if service.store is not None else None
        if run is None:
            raise HTTPException(404, f"run {run_id!r} not found")
        return JSONResponse(run.to_json())

    @router.delete("/runs/{run_id}", summary="Cancel a queued or running run")
    async def cancel_run(run_id: str) -> JSONResponse:
        if service.store is None:
            raise HTTPException(404, f"run {run_id!r} not found")
        try:
            run = service.cancel(run_id)
        except RunNotFoundError:
            raise HTTPException(404, f"run {run_id!r} not found") from None
        except RunFinishedError as exc:
            raise HTTPException(
                409, f"run {run_id!r} already finished ({exc.run.status}); only queued or running runs can be cancelled"
            ) from None
        return JSONResponse(run.to_json())

    @router.post("/{name}", status_code=202, summary="Submit a run; the body is the job's input")
    async def submit_run(name: str, request: Request) -> JSONResponse:
        if name not in registry_of(service.chute).jobs or service.store is None:
            raise HTTPException(404, f"job {name!r} not found")
        content_type = request.headers.get("content-type")
        body = await request.body()
        if (content_type is not None or body) and not is_json_type((content_type or "").encode("latin-1")):
            raise UnsupportedMediaType(None if content_type is None else content_type.encode("latin-1"))
        try:
            run = service.submit(name, body)
        except UnknownJobError:
            raise HTTPException(404, f"job {name!r} not found") from None
        except ValidationError as exc:
            # The same 422 as a cord's for the same bad body (the request id comes from the app's handler).
            raise RequestValidationError(
                body_errors(registry_of(service.chute).jobs[name].signature, body, exc)[0]
            ) from None
        return JSONResponse(run.to_json(), status_code=202)

    return router
