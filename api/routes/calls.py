from __future__ import annotations

import mimetypes
from pathlib import Path as FsPath
from typing import Annotated, Any

from elasticsearch import NotFoundError
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from api.deps import EsDep, ReadDep, SettingsDep
from api.responses import ModelJSON
from api.schemas import AudioUrl, CallDetail, Problem
from api.security import accepts_signed_url, confined_file
from api.security.signing import UrlSigner
from indexer.elastic import backend_errors
from indexer.errors import CallNotFoundError
from indexer.index.deletion import delete_call
from indexer.transcript import MAX_CALL_ID_LENGTH

router = APIRouter(prefix="/v1", tags=["calls"])


@router.get(
    "/calls/{call_id}",
    response_model=CallDetail,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
    summary="A whole call: the dialogue with word timings, to read around a hit",
)
def get_call(
    call_id: Annotated[str, Path(max_length=MAX_CALL_ID_LENGTH)], es: EsDep, settings: SettingsDep
) -> ModelJSON:
    with backend_errors(settings.es_url):
        try:
            document = es.get(
                index=settings.calls_alias, id=call_id, source_excludes=["utterances.terms"]
            )
        except NotFoundError as exc:
            raise CallNotFoundError(call_id) from exc
    return ModelJSON(
        CallDetail.model_validate(
            {key: value for key, value in document["_source"].items() if key != "utterance_count"}
        )
    )


_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/calls/{call_id}/audio-url",
    response_model=AudioUrl,
    responses={404: {"model": Problem}},
    summary="A signed URL to the recording that works without a key, for a few minutes",
)
def get_call_audio_url(
    call_id: Annotated[str, Path(max_length=MAX_CALL_ID_LENGTH)],
    request: Request,
    principal: ReadDep,
    es: EsDep,
    settings: SettingsDep,
) -> AudioUrl:
    """For a browser's `<audio src>`, which cannot send a key: the URL opens this call's
    recording only, until `expires_at` (`EARSHOT_AUDIO_URL_TTL_S`, 300 s), for the key's
    scope. Changing any part of it, or using it after it expired, is a 403."""
    # No audio served, an unknown call or one without a recording: a 404 now, not at play time.
    _audio_root(settings)
    _audio_uri(es, settings, call_id)
    signer: UrlSigner = request.app.state.url_signer
    signed = signer.sign(call_id, principal.scope.value)
    return AudioUrl(url=signed.url, expires_at=signed.expires_at)


def _audio_root(settings: SettingsDep) -> FsPath:
    """Where recordings are served from: under redaction=bleep only the bleeped copies."""
    root = settings.redaction_audio_dir if settings.redaction == "bleep" else settings.audio_root
    if root is None:
        raise HTTPException(status_code=404, detail="audio serving is not configured")
    return root


def _audio_uri(es: EsDep, settings: SettingsDep, call_id: str) -> str:
    with backend_errors(settings.es_url):
        try:
            document = es.get(index=settings.calls_alias, id=call_id, source_includes=["audio"])
        except NotFoundError as exc:
            raise CallNotFoundError(call_id) from exc
    uri: str | None = document["_source"].get("audio", {}).get("uri")
    if not uri:
        raise HTTPException(status_code=404, detail=f"call '{call_id}' has no recording")
    return uri


# HEAD too: players and download tools ask for the size and Accept-Ranges first. Its own route,
# out of the schema: one operation per path and method, documented once as GET.
@router.head("/calls/{call_id}/audio", response_class=FileResponse, include_in_schema=False)
@router.get(
    "/calls/{call_id}/audio",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The recording (audio/* by its file name, else octet-stream).",
            "content": {
                "audio/*": _BINARY,
                "video/*": _BINARY,
                "application/octet-stream": _BINARY,
            },
        },
        206: {
            "description": "The byte range asked for in `Range` (several: multipart/byteranges).",
            "content": {
                "audio/*": _BINARY,
                "video/*": _BINARY,
                "application/octet-stream": _BINARY,
                "multipart/byteranges": _BINARY,
            },
        },
        403: {
            "model": Problem,
            "description": "The recording lies outside the audio root (under redaction=bleep: "
            "the bleeped copies' directory), or the signed URL is forged, expired or for "
            "another call.",
        },
        404: {"model": Problem, "description": "No such call, no recording, or no audio root."},
        416: {"model": Problem, "description": "The range starts past the recording's end."},
    },
    summary="The call's recording, for the player (HTTP Range supported: seek to a hit)",
)
@accepts_signed_url
def get_call_audio(
    call_id: Annotated[str, Path(max_length=MAX_CALL_ID_LENGTH)],
    es: EsDep,
    settings: SettingsDep,
    # Checked before the route runs (api/security/keys.py); declared so they are documented.
    exp: Annotated[
        int | None, Query(ge=0, description="A signed URL's expiry (from `/audio-url`).")
    ] = None,
    scope: Annotated[
        str | None, Query(max_length=16, description="A signed URL's key scope.")
    ] = None,
    sig: Annotated[
        str | None, Query(max_length=128, description="A signed URL's signature.")
    ] = None,
    range_: Annotated[
        str | None,
        Header(
            alias="Range",
            max_length=1024,
            description="Bytes to send, e.g. `bytes=0-65535`; leave out for the whole file.",
        ),
    ] = None,
) -> FileResponse:
    """The recording from inside `EARSHOT_AUDIO_ROOT`; under `EARSHOT_REDACTION=bleep` only the
    copy with the personal data silenced, from `EARSHOT_REDACTION_AUDIO_DIR` (a call without
    one is a 403: the original is never served then)."""
    bleeped_only = settings.redaction == "bleep"
    root = _audio_root(settings)
    uri = _audio_uri(es, settings, call_id)
    try:
        path = confined_file(uri, root)
    except HTTPException as exc:
        if bleeped_only and exc.status_code == 403:
            raise HTTPException(
                status_code=403,
                detail=f"call '{call_id}' has no bleeped recording yet (run python -m indexer "
                "reindex); under redaction=bleep the original is never served",
            ) from exc
        raise
    try:
        size = path.stat().st_size
    except OSError as exc:  # removed since it was found
        raise HTTPException(
            status_code=404, detail="the recording is not in the audio store"
        ) from exc
    if range_ is not None:
        _check_range(range_, size)
    media_type = mimetypes.guess_type(path.name)[0] or ""
    if not media_type.startswith(("audio/", "video/")):
        media_type = "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{call_id}{path.suffix}",
        content_disposition_type="inline",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )


def _check_range(range_: str, size: int) -> None:
    """Refuse a bad Range here, as JSON; FileResponse would answer it in plain text. It parses
    with FileResponse's own parser, so what passes here is what it serves."""
    try:
        FileResponse._parse_range_header(range_, size)
    except MalformedRangeHeader as exc:
        raise HTTPException(
            status_code=400, detail=f"Range header is not valid: {exc.content}"
        ) from exc
    except RangeNotSatisfiable as exc:
        raise HTTPException(
            status_code=416,
            detail=f"the range starts past the end of the recording ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        ) from exc


@router.delete(
    "/calls/{call_id}",
    status_code=204,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
    summary="Delete a call for good (consent withdrawn); needs an admin key",
)
def delete_call_route(
    call_id: Annotated[str, Path(max_length=MAX_CALL_ID_LENGTH)], es: EsDep, settings: SettingsDep
) -> Response:
    """Removes the call from every index version (refreshed: searches stop finding it at once)
    and from the transcript store, and records a tombstone holding only the call id and the
    time, so that no reindex or rollback brings the call back and the loader refuses to load it
    again (``python -m indexer load --undelete`` does, on purpose). Deleting a deleted call
    again answers 204 too; an id that was never loaded is a 404. A write: admin key only."""
    with backend_errors(settings.es_url):
        delete_call(es, settings, call_id)
    return Response(status_code=204)
