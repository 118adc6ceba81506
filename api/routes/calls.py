from __future__ import annotations

from typing import Annotated

from elasticsearch import NotFoundError
from fastapi import APIRouter, HTTPException, Path, Response

from api.deps import EsDep, SettingsDep
from api.schemas import CallDetail, Problem
from indexer.deletion import delete_call
from indexer.errors import CallNotFoundError
from indexer.index import backend_errors

router = APIRouter(prefix="/v1", tags=["calls"])


@router.get(
    "/calls/{call_id}",
    response_model=CallDetail,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
    summary="A whole call: the dialogue with word timings, to read around a hit",
)
def get_call(
    call_id: Annotated[str, Path(max_length=128)], es: EsDep, settings: SettingsDep
) -> CallDetail:
    with backend_errors(settings.es_url):
        try:
            document = es.get(
                index=settings.calls_alias, id=call_id, source_excludes=["utterances.terms"]
            )
        except NotFoundError as exc:
            raise HTTPException(status_code=404, detail=f"no call with id '{call_id}'") from exc
    return CallDetail.model_validate(
        {key: value for key, value in document["_source"].items() if key != "utterance_count"}
    )


@router.delete(
    "/calls/{call_id}",
    status_code=204,
    responses={404: {"model": Problem}, 503: {"model": Problem}},
    summary="Delete a call for good (consent withdrawn); needs an admin key",
)
def delete_call_route(
    call_id: Annotated[str, Path(max_length=128)], es: EsDep, settings: SettingsDep
) -> Response:
    """Removes the call from every index version (refreshed: searches stop finding it at once)
    and from the transcript store, and records a tombstone holding only the call id and the
    time, so that no reindex or rollback brings the call back and the loader refuses to load it
    again (``python -m indexer load --undelete`` does, on purpose). Deleting a deleted call
    again answers 204 too; an id that was never loaded is a 404. A write: admin key only."""
    with backend_errors(settings.es_url):
        try:
            delete_call(es, settings, call_id)
        except CallNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
    return Response(status_code=204)
