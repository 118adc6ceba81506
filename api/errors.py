"""How errors become HTTP answers: always a JSON ``{"detail": ...}``, never a stack trace.

QueryError, bad parameters   → 400
unknown call                 → 404 (raised by the route)
SearchBackendError           → 503
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from indexer.errors import QueryError, SearchBackendError

log = logging.getLogger("earshot.api")


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


def _backend_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("search backend unavailable: %s", exc)
    return JSONResponse(status_code=503, content={"detail": f"search is unavailable: {exc}"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(SearchBackendError, _backend_error)
