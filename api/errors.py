"""How errors become HTTP answers: always a JSON ``{"detail": ...}``, never a stack trace.

QueryError, bad or unknown parameters   → 400
no or unknown API key                   → 401   (api/security/keys.py)
read key on a write                     → 403   (api/security/keys.py)
unknown call, tracker, job or vocabulary term, no recording → 404
tracker or term id taken, too many      → 409
URL / body over the limits              → 414 / 413   (api/security/limits.py)
SearchBackendError                      → 503
Elasticsearch timed out                 → 504
anything else                           → 500, logged with its traceback; the client only
                                          learns that it was an internal error

:func:`document_errors` writes the same table into the OpenAPI, operation by operation, so the
published schema lists every status a route can answer (the fuzz test holds it to that).
"""

from __future__ import annotations

import logging
from typing import Any

import elastic_transport
from elasticsearch import ApiError
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import get_es, get_search_es
from api.schemas import Problem
from api.security import SAFE_METHODS, api_routes, is_public, require_admin, uses_dependency
from indexer.errors import (
    CallNotFoundError,
    JobNotFoundError,
    QueryError,
    SearchBackendError,
    SearchTimeoutError,
    TrackerConflictError,
    TrackerNotFoundError,
    VocabularyTermNotFoundError,
)

log = logging.getLogger("earshot.api")

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _query_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    return JSONResponse(status_code=400, content={"detail": exc.message, "position": exc.position})


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part not in ("query", "path"))
        problems.append(f"{where}: {error['msg']}")
    return JSONResponse(status_code=400, content={"detail": "; ".join(problems)})


def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(
        exc,
        CallNotFoundError | TrackerNotFoundError | JobNotFoundError | VocabularyTermNotFoundError,
    )
    return JSONResponse(status_code=404, content={"detail": str(exc)})


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TrackerConflictError)
    return JSONResponse(status_code=409, content={"detail": str(exc)})


def _backend_error(request: Request, exc: Exception) -> JSONResponse:
    """The one place a backend failure becomes an answer. Messages of SearchBackendError are
    written for clients (indexer.elastic.backend_errors keeps the address and exception types
    in the log); any other text is never shown."""
    assert isinstance(exc, SearchBackendError)
    cause = exc.__cause__
    timed_out = (
        isinstance(exc, SearchTimeoutError)
        or isinstance(cause, elastic_transport.ConnectionTimeout)  # our request timeout
        or (isinstance(cause, ApiError) and cause.meta.status == 504)  # the cluster's timeout
    )
    log.warning(
        "search backend %s on %s %s: %s",
        "timed out" if timed_out else "unavailable",
        request.method,
        request.url.path,
        exc,
    )
    message = str(exc)
    if timed_out:
        return JSONResponse(
            status_code=504,
            content={"detail": f"search took too long and was stopped: {message}"},
        )
    return JSONResponse(status_code=503, content={"detail": f"search is unavailable: {message}"})


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500, content={"detail": "internal error: it has been logged for the operators"}
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        # Starlette names only the methods of the first route on the path; a path served by
        # several routes (GET and DELETE /v1/calls/{id}) must list them all.
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return await http_exception_handler(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for _, route in api_routes(request.app):
        if route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(CallNotFoundError, _not_found)
    app.add_exception_handler(TrackerNotFoundError, _not_found)
    app.add_exception_handler(JobNotFoundError, _not_found)
    app.add_exception_handler(VocabularyTermNotFoundError, _not_found)
    app.add_exception_handler(TrackerConflictError, _conflict)
    app.add_exception_handler(SearchBackendError, _backend_error)
    app.add_exception_handler(Exception, _internal_error)


# --- OpenAPI --------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    "400": "Bad request: a parameter is invalid, unknown or repeated, or `q` cannot be parsed.",
    "401": "No API key, or an unknown one.",
    "403": "The API key may only read; this needs an admin key.",
    "411": "A request body must come with a Content-Length.",
    "413": "The request body is over the size limit.",
    "414": "The URL is over the length limit.",
    "503": "Elasticsearch is unavailable.",
    "504": "Elasticsearch did not answer in time.",
}


def document_errors(schema: dict[str, Any], app: FastAPI, *, keys_enabled: bool) -> None:
    """Declare, on every operation, each error status it can answer (all with the Problem
    body), the API-key security where keys are on, and drop FastAPI's 422 (we answer 400)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    if keys_enabled:
        components["securitySchemes"] = {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "BearerKey": {"type": "http", "scheme": "bearer"},
        }
    for path, route in api_routes(app):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            statuses = ["400", "414"]
            if route.body_field is not None:
                statuses += ["411", "413"]
            if keys_enabled and not is_public(route):
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
                statuses.append("401")
                if method not in SAFE_METHODS or uses_dependency(route, require_admin):
                    statuses.append("403")
            talks_to_es = any(uses_dependency(route, dep) for dep in (get_es, get_search_es))
            if talks_to_es and not is_public(route):
                statuses += ["503", "504"]
            for status in statuses:
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": PROBLEM_REF}},
                    },
                )
    # Nothing refers to FastAPI's validation error models any more.
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
