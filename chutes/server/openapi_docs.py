"""``/docs`` and ``/redoc`` that work without internet: the chute serves Swagger UI's and ReDoc's assets itself.

FastAPI's own pages load their script and stylesheet from a CDN, so on an air-gapped GPU node they are
blank. The assets come from the ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2, kept current with
FastAPI's CDN versions), served under :data:`ASSETS_PATH`; the HTML is FastAPI's own, pointed at them.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS", "ASSETS_PATH", "add_offline_docs", "docs_urls"]

ASSETS_PATH = "/_docs"
"""Where the assets are served; under the reserved ``/_`` prefix, so no cord can take it."""

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
"""The files ``fastapi-offline`` ships, and their media types."""


def _asset(name: str) -> bytes:
    return files("fastapi_offline").joinpath("static", name).read_bytes()


def add_offline_docs(app: FastAPI, docs_url: str | None, redoc_url: str | None) -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` (``None`` leaves one out) from local assets.

    ``app`` must have been created with ``docs_url=None`` and ``redoc_url=None``, so that FastAPI's CDN
    pages are not registered too.
    """
    # FastAPI's attributes say where the pages are, as if FastAPI served them (for code that reads them).
    app.docs_url, app.redoc_url = docs_url, redoc_url
    if docs_url is None and redoc_url is None:
        return

    @app.get(f"{ASSETS_PATH}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, f"no docs asset {name!r}")
        # The assets change only with the installed package: let browsers keep them for a day.
        return Response(_asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    def where(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    if docs_url is not None:
        oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

        @app.get(docs_url, include_in_schema=False)
        async def swagger_ui(request: Request) -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=where(request, app.openapi_url or ""),
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=where(request, oauth2_redirect_url) if oauth2_redirect_url else None,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_js_url=where(request, f"{ASSETS_PATH}/swagger-ui-bundle.js"),
                swagger_css_url=where(request, f"{ASSETS_PATH}/swagger-ui.css"),
                swagger_favicon_url=where(request, f"{ASSETS_PATH}/favicon.png"),
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

        if oauth2_redirect_url:

            @app.get(oauth2_redirect_url, include_in_schema=False)
            async def swagger_ui_redirect() -> HTMLResponse:
                return get_swagger_ui_oauth2_redirect_html()

    if redoc_url is not None:

        @app.get(redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            return get_redoc_html(
                openapi_url=where(request, app.openapi_url or ""),
                title=f"{app.title} - ReDoc",
                redoc_js_url=where(request, f"{ASSETS_PATH}/redoc.standalone.js"),
                redoc_favicon_url=where(request, f"{ASSETS_PATH}/favicon.png"),
                with_google_fonts=False,
            )


def docs_urls(kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """Split FastAPI's keyword arguments into those for ``FastAPI(...)`` and the docs' URLs (FastAPI's defaults).

    An empty string or ``None`` leaves a page out, as in FastAPI; without OpenAPI there is nothing to show.
    """
    docs_url = kwargs.get("docs_url", "/docs") or None
    redoc_url = kwargs.get("redoc_url", "/redoc") or None
    if kwargs.get("openapi_url", "/openapi.json") in (None, ""):
        docs_url = redoc_url = None
    return {**kwargs, "docs_url": None, "redoc_url": None}, docs_url, redoc_url
