"""The Earshot search API. Run it with ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from elasticsearch import Elasticsearch
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import document_errors, install_error_handlers
from api.head import HeadAsGet
from api.routes import calls, export, health, jobs, search, trackers, vocabulary, web
from api.security import ApiKeys, RequestLimits, authorize, reject_unknown_parameters
from api.security.signing import UrlSigner, install_log_redaction
from indexer.elastic import connect
from indexer.processes import shutdown_pools
from indexer.search.workers import search_client
from indexer.settings import Settings, get_settings
from indexer.trackers.jobs import JobWorker

log = logging.getLogger("earshot.api")

DESCRIPTION = """Search every sales call by what was said, and jump to the second it was said.

`GET /v1/search` finds calls; each hit carries the start and end second of the matched words
(seek the recording there) and the character spans to highlight. `GET /v1/calls/{call_id}`
returns the whole dialogue to read around a hit. Errors are JSON `{"detail": ...}`: 400 for a
bad query or parameter, 404 for an unknown call, 503 when Elasticsearch is unavailable."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    keys = ApiKeys(settings.api_keys_read, settings.api_keys_admin)
    if not keys.enabled:
        log.warning(
            "no API keys are configured: the API is open to anyone who can reach it; set "
            "EARSHOT_API_KEYS_READ and EARSHOT_API_KEYS_ADMIN outside a local machine"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Tracker jobs run on a thread of their own, with a client of their own; jobs left
        # unfinished by a previous process are picked up first.
        worker = JobWorker(_es_client(settings), settings)
        app.state.job_worker = worker
        worker.start()
        # Large search pages are built in worker processes (indexer/search/workers.py),
        # started by the first answer that needs one: most pages never do, and two spawned
        # workers cost ~2 s of CPU and ~200 MB that an API of light searches would spend for
        # nothing.
        yield
        worker.stop()
        worker.es.close()
        app.state.job_worker = None
        # The search and re-tag workers stop with the app, their semaphores released: uvicorn
        # ends on SIGTERM by raising it again, which skips the interpreter's exit handlers
        # (indexer/processes.py).
        await asyncio.to_thread(shutdown_pools)
        app.state.es.close()
        app.state.search_es.close()
        # Clients that open no connection until used: an app whose lifespan runs again (a
        # test client per request does that) must not be left with closed ones.
        app.state.es = _es_client(settings)
        app.state.search_es = search_client(settings)

    app = FastAPI(
        title="Earshot",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # A redirect to the path without its trailing slash would be built from the request's
        # Host header (an open redirect); such a path is a plain 404 instead.
        redirect_slashes=False,
        # Every route: a key (unless @public; writes need an admin key), declared parameters only.
        dependencies=[Depends(authorize), Depends(reject_unknown_parameters)],
        # Served by api/routes/web.py from packaged assets (no CDN), the schema behind a key.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Created here, not at start-up, so the app works with or without the lifespan running.
    app.state.settings = settings
    app.state.es = _es_client(settings)
    app.state.search_es = search_client(settings)
    app.state.api_keys = keys
    secret = settings.audio_url_secret
    app.state.url_signer = UrlSigner.from_secret(
        secret.get_secret_value() if secret else None, settings.audio_url_ttl_s
    )
    install_log_redaction()
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        RequestLimits,
        max_url_length=settings.max_url_length,
        max_body_bytes=settings.max_request_body_bytes,
    )
    if settings.cors_origins:
        # Added last, so it wraps everything: refusals carry CORS headers too and a browser
        # can read them. Keys travel in headers, not cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Range"],
            expose_headers=["Content-Range", "Content-Length", "Accept-Ranges"],
            max_age=600,
        )
    install_error_handlers(app)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(trackers.router)
    app.include_router(jobs.router)
    app.include_router(vocabulary.router)
    app.include_router(calls.router)
    app.include_router(health.router)
    web.install(app)
    _document_openapi(app, settings, keys_enabled=keys.enabled)
    return app


def _es_client(settings: Settings) -> Elasticsearch:
    # A request waits es_request_timeout_s at most: no retry after a timeout (the caller would
    # wait several timeouts), retries only when a connection fails outright.
    return connect(settings).options(retry_on_timeout=False)


def _document_openapi(app: FastAPI, settings: Settings, *, keys_enabled: bool) -> None:
    """FastAPI's OpenAPI plus what it cannot see: every error status each route answers, the
    API-key security, and the limits that come from settings."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            document_errors(schema, app, keys_enabled=keys_enabled)
            _document_limits(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_limits(schema: dict[str, Any], settings: Settings) -> None:
    for parameter in schema["paths"].get("/v1/search", {}).get("get", {}).get("parameters", []):
        if parameter["name"] == "size":
            parameter["schema"]["maximum"] = settings.max_page_size
        elif parameter["name"] == "q":
            parameter["schema"].setdefault("maxLength", settings.max_query_length)
