"""The ``/_jobs`` HTTP routes: list jobs, submit, list, show and cancel runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pydantic_core
from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from chutes.chute.registry import registry_of
from chutes.jobs.service import UnknownJobError
from chutes.jobs.store import RunFinishedError, RunNotFoundError

if TYPE_CHECKING:
    from chutes.jobs.service import JobService

__all__ = ["build_router", "validation_detail"]

StatusFilter = Literal["queued", "running", "completed", "failed", "cancelled"]


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """A pydantic error as FastAPI's 422 ``detail``: each problem located under ``body``.

    Like FastAPI, a body that is not JSON is not echoed back; a NaN or infinite input shows as a string.
    """
    detail = []
    for error in exc.errors(include_url=False):
        item: dict[str, Any] = {"type": error["type"], "loc": ["body", *error["loc"]], "msg": error["msg"]}
        if "input" in error:
            item["input"] = {} if error["type"] == "json_invalid" else error["input"]
        if error.get("ctx"):
            item["ctx"] = error["ctx"]
        detail.append(item)
    return list(json.loads(pydantic_core.to_json(detail, inf_nan_mode="strings", fallback=str)))


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
        body = await request.body()
        try:
            run = service.submit(name, body)
        except UnknownJobError:
            raise HTTPException(404, f"job {name!r} not found") from None
        except ValidationError as exc:
            return JSONResponse({"detail": validation_detail(exc)}, status_code=422)
        return JSONResponse(run.to_json(), status_code=202)

    return router
