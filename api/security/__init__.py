"""Who may call the API (``keys``), how much a request may carry (``limits``), which files
it may serve (``files``), and signed URLs to recordings (``signing``). The names below are what
the app and its routes use."""

from __future__ import annotations

from api.security.files import confined_file
from api.security.keys import (
    KEY_HEADER,
    SAFE_METHODS,
    AccessScope,
    ApiKeys,
    Principal,
    accepts_signed_url,
    authorize,
    is_public,
    public,
    require_admin,
)
from api.security.limits import (
    RequestLimits,
    api_routes,
    reject_unknown_parameters,
    uses_dependency,
)
from indexer.elastic import redact_url

__all__ = [
    "KEY_HEADER",
    "SAFE_METHODS",
    "AccessScope",
    "ApiKeys",
    "Principal",
    "RequestLimits",
    "accepts_signed_url",
    "api_routes",
    "authorize",
    "confined_file",
    "is_public",
    "public",
    "redact_url",
    "reject_unknown_parameters",
    "require_admin",
    "uses_dependency",
]
