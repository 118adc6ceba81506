from __future__ import annotations

import logging

import elastic_transport
from elasticsearch import ApiError
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import EsDep, SettingsDep
from api.schemas import Health
from api.security import public
from indexer.elastic import describe, redact_url

log = logging.getLogger("earshot.api")

router = APIRouter(tags=["health"])


# Both probes are open (no API key): load balancers and orchestrators call them.
# /healthz is a coroutine, and so is every app-wide dependency: it is answered on the event loop
# alone, never queued behind the searches in the thread pool.
@router.get("/healthz", response_model=Health, summary="The process is up")
@public
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Elasticsearch answers and the calls alias exists",
)
@public
def readyz(es: EsDep, settings: SettingsDep) -> Health | JSONResponse:
    try:
        if es.indices.exists_alias(name=settings.calls_alias):
            return Health(status="ready")
        detail = f"the calls alias '{settings.calls_alias}' does not exist: load transcripts"
    except (elastic_transport.TransportError, ApiError) as exc:
        log.warning("readyz: Elasticsearch at %s: %s", redact_url(settings.es_url), describe(exc))
        detail = "Elasticsearch is unreachable"
    return JSONResponse(
        status_code=503, content=Health(status="not ready", detail=detail).model_dump()
    )
