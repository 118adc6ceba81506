"""The pages: the web app (``api/web/``) and the API's own docs, served by the API itself.

The app is one HTML shell for every page (``/``, ``/calls/{id}``, ``/trackers``); its JavaScript
reads ``location`` and renders the page from the REST API, with the tab's key. The shell holds no
data, so it is public, like its static files; every byte of data comes through the API, behind
the key. ``/docs`` and ``/redoc`` are shells too, over Swagger UI and ReDoc files shipped in the
``fastapi-offline`` package (nothing from a CDN); the schema they show, ``/openapi.json``, needs
a key like every other route.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# Swagger UI and ReDoc bundles: fastapi-offline ships them as package data.
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))

# Everything from this server only: a page that tried to load anything from elsewhere would
# break on an offline machine, and the browser refuses it here before it could.
_APP_CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc set inline styles and ReDoc runs a web worker from a blob.
_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _page(name: str, csp: str) -> Any:
    html = (WEB_DIR / name).read_text(encoding="utf-8")

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )

    return page


# ReDoc's sidebar footer always loads its maker's logo from their CDN: point it at ours.
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _redoc_bundle() -> Any:
    bundle = (DOCS_ASSETS / "redoc.standalone.js").read_text(encoding="utf-8")
    patched = bundle.replace(_REDOC_LOGO, "/static/favicon.svg")

    async def script(_: Request) -> Response:
        return Response(
            patched,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    return script


def install(app: FastAPI) -> None:
    """Add the pages, their static files and a keyed ``/openapi.json`` to the app."""

    # An API route, so the app-wide key check and parameter check apply; not in the schema.
    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    shell = _page("index.html", _APP_CSP)
    # Plain routes, not API routes: the shell takes any query (the search it shows) and no key.
    for path in ("/", "/calls/{call_id}", "/trackers"):
        app.add_route(path, shell, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/docs", _page("docs.html", _DOCS_CSP), ["GET", "HEAD"], include_in_schema=False)
    app.add_route(
        "/redoc", _page("redoc.html", _DOCS_CSP), ["GET", "HEAD"], include_in_schema=False
    )
    app.add_route(
        "/static/vendor/redoc.standalone.js",
        _redoc_bundle(),
        ["GET", "HEAD"],
        include_in_schema=False,
    )
    # The more specific mount first: Starlette takes the first that matches.
    app.mount("/static/vendor", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="web-assets")
