"""Who may call the API: keys, scopes, public routes (limits and files: beside this module).

API keys (settings ``api_keys_read`` and ``api_keys_admin``) travel in the ``X-API-Key`` header
or as ``Authorization: Bearer <key>``. Every route requires a key unless it is marked
:func:`public` (the health probes); reading needs any key, writing (any method but GET and HEAD)
and routes that declare ``AdminDep`` need an admin key. A missing or unknown key is a 401, a read
key on a write is a 403. With no key configured at all the API is open — the local default of
``scripts/run``; the app logs a warning at start-up and production must set keys.

Keys are compared in constant time (digests of equal length, every configured key compared) and
never logged or echoed: messages name the header, never its value.

Limits that apply before any route runs (``api.security.limits``, :class:`RequestLimits`): the
URL length (414), the request body size (413; a body must announce its length, else 411).
Unknown or repeated query parameters are rejected with a 400 naming them
(:func:`reject_unknown_parameters`): a misspelt filter must not silently widen a search.

Recordings are served only from inside the ``audio_root`` directory (``api.security.files``), to
a key or to a signed, expiring URL (:func:`accepts_signed_url`, ``api.security.signing``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute
from pydantic import SecretStr

from api.security.signing import SIGNATURE_PARAMETER, SignatureError, UrlSigner

log = logging.getLogger("earshot.api.security")


KEY_HEADER = "X-API-Key"


SAFE_METHODS = frozenset({"GET", "HEAD"})


_PUBLIC_MARK = "__earshot_public__"
_SIGNED_MARK = "__earshot_signed_url__"


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


def accepts_signed_url(endpoint: F) -> F:
    """Mark a route that also opens with a signed URL instead of a key (the recording: an
    ``<audio>`` element cannot send a header). Its path must take ``call_id``."""
    setattr(endpoint, _SIGNED_MARK, True)
    return endpoint


def _signed_url_principal(request: Request, route: APIRoute) -> Principal | None:
    """The principal a signed URL grants, None when the request carries no signature; a 403
    for a forged, expired or other-call one (logged without the URL: it holds the signature)."""
    if not getattr(route.endpoint, _SIGNED_MARK, False):
        return None
    signature = request.query_params.get(SIGNATURE_PARAMETER)
    if signature is None:
        return None
    signer: UrlSigner = request.app.state.url_signer
    expires = request.query_params.get("exp", "")
    try:
        scope = signer.verify(
            str(request.path_params.get("call_id", "")),
            int(expires) if expires.isdigit() else None,
            request.query_params.get("scope"),
            signature,
        )
    except SignatureError as exc:
        _log_refusal(request, 403, "bad signed URL")
        raise HTTPException(status_code=403, detail=str(exc)) from None
    return Principal(AccessScope(scope), "signed-url")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": 'Bearer realm="earshot"'}
    )


async def authorize(request: Request) -> Principal:
    """The app-wide dependency: every route but the public ones needs a key; writes need an
    admin key. The principal is kept on ``request.state.principal`` for the routes.

    A coroutine (it does no I/O), like every dependency that runs on each request: a sync one
    would send each request through the thread pool, behind whatever the searches do there."""
    keys: ApiKeys = request.app.state.api_keys
    route = request.scope.get("route")
    # A signature is checked even with keys off: a page must learn that its URL went stale.
    signed = _signed_url_principal(request, route) if isinstance(route, APIRoute) else None
    if signed is not None:
        request.state.principal = signed
        return signed
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


async def require_admin(request: Request) -> Principal:
    """For routes that need an admin key even to read (declare ``AdminDep``). Writes need one
    anyway (see :func:`authorize`); declaring it on them too documents it in the OpenAPI."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # the app-wide authorize has not run (an app built without it)
        principal = await authorize(request)
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
