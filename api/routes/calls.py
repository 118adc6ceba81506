from __future__ import annotations

from typing import Annotated

from elasticsearch import NotFoundError
from fastapi import APIRouter, HTTPException, Path

from api.deps import EsDep, SettingsDep
from api.schemas import CallDetail, Problem
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
