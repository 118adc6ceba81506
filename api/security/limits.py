"""Request limits: unknown or repeated query parameters are refused (400), and the URL and body
sizes are capped (414 / 413) before a route runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import UnionType
from typing import Any, Union, get_args, get_origin

import fastapi.routing
from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

_PARAMETERS_CACHE = "_earshot_query_parameters"


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Every API route of the app with its full path. FastAPI 0.16x keeps included routers
    as contexts around the original routes; earlier versions list copies of the routes."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path_format, route
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.path_format, context.original_route


def uses_dependency(route: APIRoute, call: Callable[..., Any]) -> bool:
    """Whether the route (or any of its dependencies) depends on ``call``."""
    return any(dependant.call is call for dependant in _dependants(route.dependant))


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def route_query_parameters(route: APIRoute) -> dict[str, bool]:
    """The query parameters a route declares, each with whether it takes several values."""
    cached: dict[str, bool] | None = getattr(route, _PARAMETERS_CACHE, None)
    if cached is not None:
        return cached
    declared: dict[str, bool] = {}
    for dependant in _dependants(route.dependant):
        for field in dependant.query_params:
            annotation = _unwrap_optional(field.field_info.annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                for name, info in annotation.model_fields.items():
                    declared[info.alias or name] = _takes_many(info.annotation)
            else:
                declared[field.alias] = _takes_many(annotation)
    # Kept on the route itself: routes are not hashable, and live as long as the app.
    setattr(route, _PARAMETERS_CACHE, declared)
    return declared


def _takes_many(annotation: Any) -> bool:
    return get_origin(_unwrap_optional(annotation)) in (list, tuple, set, frozenset)


async def reject_unknown_parameters(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare, or one given twice,
    is a 400. Silently ignoring ``rol=client`` would answer a different question than asked."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = route_query_parameters(route)
    counts: dict[str, int] = {}
    for name, _ in request.query_params.multi_items():
        counts[name] = counts.get(name, 0) + 1
    unknown = sorted(name for name in counts if name not in declared)
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        shown = ", ".join(f"'{name[:64]}'" for name in unknown[:5])
        raise HTTPException(
            status_code=400, detail=f"unknown query parameter {shown}; this endpoint takes: {known}"
        )
    repeated = sorted(name for name, count in counts.items() if count > 1 and not declared[name])
    if repeated:
        raise HTTPException(
            status_code=400, detail=f"query parameter '{repeated[0]}' is given more than once"
        )


class RequestLimits:
    """ASGI middleware: refuses over-long URLs (414), bodies over the size limit (413) and
    bodies of unannounced length (411) before any route reads them."""

    def __init__(self, app: ASGIApp, *, max_url_length: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_url_length = max_url_length
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail = refusal
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)

    def _refusal(self, scope: AsgiScope) -> tuple[int, str] | None:
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) + len(scope.get("query_string", b"")) > self.max_url_length:
            return 414, f"the URL is longer than {self.max_url_length} bytes: shorten the query"
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is None:
            # The server checks a body against its Content-Length; a chunked one is unbounded.
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                return 411, "send the request body with a Content-Length"
            return None
        if not length.strip().isdigit():
            return 400, "Content-Length is not a number"
        if int(length) > self.max_body_bytes:
            return 413, f"the request body is larger than {self.max_body_bytes} bytes"
        return None
