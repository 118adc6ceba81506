from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EsDep, SettingsDep
from api.query import parse_query
from api.schemas import Problem, RoleFilter, SearchResponse, SortOrder
from api.search import SearchRequest, search_calls
from indexer.errors import QueryError
from indexer.transcript import Direction

router = APIRouter(prefix="/v1", tags=["search"])

Q_DESCRIPTION = """Words and "exact phrases". Every word and every phrase must occur in the call,
each inside one utterance of the chosen `role`. Case, punctuation and ё/е are ignored; numbers
match however they were written (15000, 15 000, 15,000)."""


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={400: {"model": Problem}, 503: {"model": Problem}},
    summary="Find calls by what was said, with the second each match was said at",
)
def search(
    es: EsDep,
    settings: SettingsDep,
    q: Annotated[
        str,
        Query(
            description=Q_DESCRIPTION,
            min_length=1,
            openapi_examples={
                "phrase": {"summary": "exact phrase", "value": '"send me the contract"'},
                "russian": {"summary": "word and phrase", "value": 'дорого "пришлите договор"'},
                "number": {"summary": "a number", "value": "15 000"},
            },
        ),
    ],
    role: Annotated[RoleFilter, Query(description="Who must have said it.")] = RoleFilter.ANY,
    manager_id: Annotated[str | None, Query(max_length=128)] = None,
    client_id: Annotated[str | None, Query(max_length=128)] = None,
    date_from: Annotated[
        str | None,
        Query(
            description="Calls started at or after: a date (from its start, UTC) or an ISO "
            "date-time.",
            examples=["2026-03-01"],
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(
            description="Calls started at or before: a date (to its end, UTC) or an ISO date-time.",
            examples=["2026-03-31"],
        ),
    ] = None,
    direction: Direction | None = None,
    min_duration_s: Annotated[float | None, Query(ge=0)] = None,
    max_duration_s: Annotated[float | None, Query(ge=0)] = None,
    sort: SortOrder = SortOrder.RELEVANCE,
    size: Annotated[int, Query(ge=1, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")
    ] = None,
) -> SearchResponse:
    if size > settings.max_page_size:
        raise QueryError(f"size must be at most {settings.max_page_size}")
    start, end = _instant("date_from", date_from), _instant("date_to", date_to)
    if start and end and _as_date(start) > _as_date(end):
        raise QueryError("date_from is after date_to")
    if (
        min_duration_s is not None
        and max_duration_s is not None
        and min_duration_s > max_duration_s
    ):
        raise QueryError("min_duration_s is greater than max_duration_s")
    request = SearchRequest(
        clauses=parse_query(q, max_length=settings.max_query_length),
        role=role,
        manager_id=manager_id,
        client_id=client_id,
        date_from=start,
        date_to=end,
        direction=direction,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
        sort=sort,
        size=size,
        cursor=cursor,
    )
    return search_calls(es, settings, request)


def _instant(name: str, value: str | None) -> datetime | date | None:
    """A bare date stays a date (it means the whole day); anything else must be a date-time."""
    if value is None:
        return None
    try:
        if len(value) == len("2026-01-31"):
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise QueryError(
            f"{name}: expected a date (2026-03-01) or date-time, got '{value}'"
        ) from exc


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value
