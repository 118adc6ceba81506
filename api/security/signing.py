"""Signed, expiring URLs for recordings: what lets a browser's ``<audio>`` play a call with keys on.

An ``<audio src>`` cannot send an ``X-API-Key`` header. So a caller holding a key asks
``GET /v1/calls/{id}/audio-url`` and gets ``/v1/calls/{id}/audio?exp=...&scope=...&sig=...``:
``sig`` is an HMAC-SHA256, under the server's ``audio_url_secret``, over the call id, the expiry
(Unix seconds) and the key's scope. The URL opens that one call's recording, until ``exp`` only;
changing any part of it breaks the signature. Signatures are compared in constant time, and the
access log shows the URL with ``sig`` blanked (:class:`RedactSignatures`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

log = logging.getLogger("earshot.api.signing")

# The key scopes (AccessScope values in keys.py); plain strings, so keys.py can import this module.
SCOPES = ("read", "admin")

SIGNATURE_PARAMETER = "sig"
_SIGNATURE_IN_URL = re.compile(rf"([?&]{SIGNATURE_PARAMETER}=)[^&\s]*")


class SignatureError(Exception):
    """A signed URL that must not be honoured; the message says why, without the signature."""


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: int  # Unix seconds


class UrlSigner:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    @classmethod
    def from_secret(cls, secret: str | None, ttl_s: int) -> UrlSigner:
        if secret is None:
            log.warning(
                "EARSHOT_AUDIO_URL_SECRET is not set: audio URLs are signed with a random secret "
                "of this process; several API workers need one shared secret, or a URL handed "
                "out by one is refused by another"
            )
            return cls(secrets.token_bytes(32), ttl_s)
        return cls(secret.encode("utf-8"), ttl_s)

    def _signature(self, call_id: str, expires_at: int, scope: str) -> str:
        # Newline-separated: a call id cannot hold one (the contract's call-id rule), so no two
        # different triples give the same message.
        message = f"{call_id}\n{expires_at}\n{scope}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, call_id: str, scope: str, now: float | None = None) -> SignedUrl:
        expires_at = int(now if now is not None else time.time()) + self.ttl_s
        query = urlencode(
            {
                "exp": expires_at,
                "scope": scope,
                SIGNATURE_PARAMETER: self._signature(call_id, expires_at, scope),
            }
        )
        return SignedUrl(f"/v1/calls/{quote(call_id, safe='')}/audio?{query}", expires_at)

    def verify(
        self,
        call_id: str,
        expires_at: int | None,
        scope: str | None,
        signature: str,
        now: float | None = None,
    ) -> str:
        """The scope the URL was signed for; SignatureError when it is forged, for another
        call, or expired."""
        if expires_at is None or scope is None:
            raise SignatureError("a signed audio URL needs exp, scope and sig")
        if scope not in SCOPES:
            raise SignatureError("the audio URL's scope is not valid")
        expected = self._signature(call_id, expires_at, scope)
        # Checked before the expiry, so a forged URL never learns whether its expiry was right.
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
            raise SignatureError("the audio URL's signature is not valid for this call")
        if (now if now is not None else time.time()) >= expires_at:
            raise SignatureError("the audio URL has expired: ask for a new one")
        return scope


class RedactSignatures(logging.Filter):
    """Blanks ``sig=`` in uvicorn's access log lines (the path is its third argument) and in
    any message that carries a URL: a logged signature would be a working link to a call."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and SIGNATURE_PARAMETER in arg for arg in record.args
        ):
            record.args = tuple(
                redact_signature(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str) and SIGNATURE_PARAMETER in record.msg:
            record.msg = redact_signature(record.msg)
        return True


def redact_signature(text: str) -> str:
    return _SIGNATURE_IN_URL.sub(r"\1<redacted>", text)


def install_log_redaction() -> None:
    """Once per process: uvicorn's access logger keeps its filters across app factories."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, RedactSignatures) for existing in access.filters):
        access.addFilter(RedactSignatures())
