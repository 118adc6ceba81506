"""The Earshot search API. Run it with ``uvicorn --factory api.main:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.routes import calls, export, health, search, trackers
from indexer.index import connect
from indexer.settings import Settings, get_settings

DESCRIPTION = """Search every sales call by what was said, and jump to the second it was said.

`GET /v1/search` finds calls; each hit carries the start and end second of the matched words
(seek the recording there) and the character spans to highlight. `GET /v1/calls/{call_id}`
returns the whole dialogue to read around a hit. Errors are JSON `{"detail": ...}`: 400 for a
bad query or parameter, 404 for an unknown call, 503 when Elasticsearch is unavailable."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    es = connect(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        es.close()

    app = FastAPI(title="Earshot", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    # Created here, not at start-up, so the app works with or without the lifespan running.
    app.state.settings = settings
    app.state.es = es
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET"]
        )
    install_error_handlers(app)
    app.include_router(search.router)
    app.include_router(export.router)
    app.include_router(trackers.router)
    app.include_router(calls.router)
    app.include_router(health.router)
    return app
