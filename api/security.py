"""Who may call the API, how much a request may carry, and which files it may serve.

API keys (settings ``api_keys_read`` and ``api_keys_admin``) travel in the ``X-API-Key`` header
or as ``Authorization: Bearer <key>``. Every route requires a key unless it is marked
:func:`public` (the health probes); reading needs any key, writing (any method but GET and HEAD)
and routes that declare ``AdminDep`` need an admin key. A missing or unknown key is a 401, a read
key on a write is a 403. With no key configured at all the API is open — the local default of
``scripts/run``; the app logs a warning at start-up and production must set keys.

Keys are compared in constant time (digests of equal length, every configured key compared) and
never logged or echoed: messages name the header, never its value.

Limits that apply before any route runs (:class:`RequestLimits`): the URL length (414), the
request body size (413; a body must announce its length, else 411). Unknown or repeated query
parameters are rejected with a 400 naming them (:func:`reject_unknown_parameters`): a misspelt
filter must not silently widen a search.

Recordings are served only from inside the ``audio_root`` directory (:func:`confined_file`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit, urlunsplit

import fastapi.routing
from fastapi import FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, SecretStr
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

log = logging.getLogger("earshot.api.security")

KEY_HEADER = "X-API-Key"
SAFE_METHODS = frozenset({"GET", "HEAD"})
_PUBLIC_MARK = "__earshot_public__"
_PARAMETERS_CACHE = "_earshot_query_parameters"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


# --- API keys -------------------------------------------------------------------------------------


class AccessScope(StrEnum):
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who made the request: the key's scope and a name for audit logs (never the key)."""

    scope: AccessScope
    key_name: str  # "read-2", "admin-1": the key's place in its setting; "open" without keys

    @property
    def is_admin(self) -> bool:
        return self.scope is AccessScope.ADMIN


OPEN_ACCESS = Principal(AccessScope.ADMIN, "open")


def _digest(key: str) -> bytes:
    # Equal-length digests let compare_digest run in time independent of where keys differ.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class ApiKeys:
    """The configured keys, kept only as digests."""

    def __init__(self, read: Iterable[SecretStr], admin: Iterable[SecretStr]) -> None:
        # Admin keys first: a key listed in both settings is an admin key.
        self._keys = [
            (_digest(key.get_secret_value()), Principal(AccessScope.ADMIN, f"admin-{number}"))
            for number, key in enumerate(admin, start=1)
        ] + [
            (_digest(key.get_secret_value()), Principal(AccessScope.READ, f"read-{number}"))
            for number, key in enumerate(read, start=1)
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, presented: str) -> Principal | None:
        """The principal a presented key belongs to. Every key is compared (no early exit), so
        the time taken does not tell which key, or how much of one, matched."""
        digest = _digest(presented)
        found: Principal | None = None
        for key_digest, principal in self._keys:
            if hmac.compare_digest(digest, key_digest) and found is None:
                found = principal
        return found


def presented_key(request: Request) -> str | None:
    """The key the client sent: ``X-API-Key``, else an ``Authorization: Bearer`` token."""
    key = request.headers.get(KEY_HEADER)
    if key is not None:
        return key.strip() or None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


F = TypeVar("F", bound=Callable[..., Any])


def public(endpoint: F) -> F:
    """Mark a route as open to callers without a key (health probes)."""
    setattr(endpoint, _PUBLIC_MARK, True)
    return endpoint


def is_public(route: APIRoute) -> bool:
    return bool(getattr(route.endpoint, _PUBLIC_MARK, False))


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="earshot"'}
    )


def authorize(request: Request) -> Principal:
    """The app-wide dependency: every route but the public ones needs a key; writes need an
    admin key. The principal is kept on ``request.state.principal`` for the routes."""
    keys: ApiKeys = request.app.state.api_keys
    route = request.scope.get("route")
    if not keys.enabled or (isinstance(route, APIRoute) and is_public(route)):
        request.state.principal = OPEN_ACCESS
        return OPEN_ACCESS
    presented = presented_key(request)
    if presented is None:
        _log_refusal(request, 401, "no key")
        raise _unauthorized(
            f"an API key is required: send it in the {KEY_HEADER} header "
            "(or as Authorization: Bearer <key>)"
        )
    principal = keys.identify(presented)
    if principal is None:
        _log_refusal(request, 401, "unknown key")
        raise _unauthorized("the API key is not valid")
    if request.method not in SAFE_METHODS and not principal.is_admin:
        _log_refusal(request, 403, principal.key_name)
        raise HTTPException(
            status_code=403,
            detail=f"this API key may only read: {request.method} needs an admin key",
        )
    request.state.principal = principal
    return principal


def require_admin(request: Request) -> Principal:
    """For routes that need an admin key even to read (declare ``AdminDep``). Writes need one
    anyway (see :func:`authorize`); declaring it on them too documents it in the OpenAPI."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # the app-wide authorize has not run (an app built without it)
        principal = authorize(request)
    if not principal.is_admin:
        _log_refusal(request, 403, principal.key_name)
        raise HTTPException(
            status_code=403, detail="this API key may only read: an admin key is needed"
        )
    return principal


def _log_refusal(request: Request, status: int, why: str) -> None:
    # The method, path and peer only: never headers (they carry the key) nor the query string.
    client = request.client.host if request.client else "?"
    log.info(
        "refused %s %s from %s: %d (%s)", request.method, request.url.path, client, status, why
    )


# --- Query parameters -----------------------------------------------------------------------------


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


def reject_unknown_parameters(request: Request) -> None:
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


# --- Request size ---------------------------------------------------------------------------------


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


# --- Files ----------------------------------------------------------------------------------------


def confined_file(uri: str, root: Path) -> Path:
    """The local file a recording URI names, provided it lies inside ``root``.

    Accepts ``file://`` URIs (percent-decoded; host empty or ``localhost``) and plain paths
    (relative ones are taken from ``root``). Symlinks and ``..`` are resolved first, so neither
    leads out. Raises HTTPException: 403 for anything outside ``root`` or not a local file,
    404 when the file is missing. The server's paths are never put in a message.
    """
    scheme = _SCHEME.match(uri)
    if scheme is None:
        raw = uri
    elif scheme.group(1).lower() == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise HTTPException(status_code=403, detail="the recording is on another host")
        raw = unquote(parts.path)
    else:
        raise HTTPException(
            status_code=403,
            detail=f"only local recordings are served; this one is a '{scheme.group(1)}:' URI",
        )
    if not raw or "\x00" in raw:
        raise HTTPException(status_code=403, detail="the recording's path is not valid")
    try:
        base = root.resolve(strict=True)
        target = (base / raw).resolve()  # an absolute raw replaces base
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable root
        raise HTTPException(
            status_code=403, detail="the recording's path cannot be resolved"
        ) from exc
    if not target.is_relative_to(base):
        raise HTTPException(status_code=403, detail="the recording lies outside the audio root")
    if not target.is_file():
        raise HTTPException(status_code=404, detail="the recording is not in the audio store")
    return target


def redact_url(url: str) -> str:
    """A URL fit for a message or a log: any user and password removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
