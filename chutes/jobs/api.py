"""The ``/_jobs`` HTTP routes: list jobs, submit, list, show and cancel runs, and download their files.

A store that cannot serve a request (disk full, database down) answers ``503`` with ``Retry-After``.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chutes.chute.registry import registry_of
from chutes.jobs.runs import RunFinishedError, RunNotFoundError, StoreUnavailableError
from chutes.jobs.service import UnknownJobError
from chutes.server.core import UnsupportedMediaType, is_json_type
from chutes.server.responses import body_errors

if TYPE_CHECKING:
    from chutes.jobs.service import JobService

__all__ = ["build_router", "unavailable"]

StatusFilter = Literal["queued", "running", "completed", "failed", "cancelled"]


def unavailable(exc: StoreUnavailableError) -> HTTPException:
    """The error for a request the store could not serve: 503 with ``Retry-After`` (JSON, with the request id)."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(StoreUnavailableError.retry_after)})


def build_router(service: JobService) -> APIRouter:
    """The routes of ``service``, under the ``/_jobs`` prefix."""
    router = APIRouter(prefix="/_jobs", tags=["jobs"])

    def not_found(run_id: str) -> HTTPException:
        return HTTPException(404, f"run {run_id!r} not found")

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
        try:
            runs = await service.store.runs(name, status, limit)
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
        return JSONResponse([run.to_json() for run in runs])

    @router.get("/runs/{run_id}", summary="Show a run")
    async def show_run(run_id: str) -> JSONResponse:
        try:
            run = await service.store.get(run_id) if service.store is not None else None
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
        if run is None:
            raise not_found(run_id)
        return JSONResponse(run.to_json())

    @router.get("/runs/{run_id}/files", summary="List the files a run left in its output folder")
    async def list_files(run_id: str) -> JSONResponse:
        if service.store is None:
            raise not_found(run_id)
        try:
            run = await service.store.get(run_id)
            files = await service.store.files(run_id) if run is not None else []
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
        if run is None:
            raise not_found(run_id)
        return JSONResponse([file.to_json() for file in files])

    @router.get("/runs/{run_id}/files/{name:path}", summary="Download a file a run left in its output folder")
    async def get_file(run_id: str, name: str) -> Response:
        if service.store is None:
            raise not_found(run_id)
        try:
            # Looked up by exact name among the run's stored files: no path is ever opened on disk.
            data = await service.store.file(run_id, name)
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
        if data is None:
            raise HTTPException(404, f"run {run_id!r} has no file {name!r}")
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        filename = quote(PurePosixPath(name).name)
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
        return Response(data, media_type=media_type, headers=headers)

    @router.delete("/runs/{run_id}", summary="Cancel a queued or running run")
    async def cancel_run(run_id: str) -> JSONResponse:
        if service.store is None:
            raise not_found(run_id)
        try:
            run = await service.cancel(run_id)
        except RunNotFoundError:
            raise not_found(run_id) from None
        except RunFinishedError as exc:
            raise HTTPException(
                409, f"run {run_id!r} already finished ({exc.run.status}); only queued or running runs can be cancelled"
            ) from None
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
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
            run = await service.submit(name, body)
        except UnknownJobError:
            raise HTTPException(404, f"job {name!r} not found") from None
        except ValidationError as exc:
            # The same 422 as a cord's for the same bad body (the request id comes from the app's handler).
            raise RequestValidationError(
                body_errors(registry_of(service.chute).jobs[name].signature, body, exc)[0]
            ) from None
        except StoreUnavailableError as exc:
            raise unavailable(exc) from None
        return JSONResponse(run.to_json(), status_code=202)

    return router
