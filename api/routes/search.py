from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EsDep, SettingsDep
from api.schemas import Problem, SearchResponse, SortOrder
from api.search import SearchRequest, search_calls
from indexer.errors import QueryError
from indexer.query import Mode, RoleFilter, parse_query
from indexer.transcript import Direction

router = APIRouter(prefix="/v1", tags=["search"])

Q_DESCRIPTION = """What was said, in Earshot's query language (docs/query-language.md):
words and "exact phrases" (all must occur: each inside one utterance), `AND`, `OR`, `NOT`,
parentheses, roles (`client:"дорого"`, `manager:(скидка OR акция)`), `a NEAR/5 b` (same
utterance, at most 5 words apart, either order), prefixes (`достав*`) and time windows
(`manager:"добрый день" WITHIN first 30s`, `... WITHIN last 60s`). AND/OR/NOT hold over the
whole call: `client:дорого AND NOT manager:скидка` is a call where the manager never said
"скидка". Case, punctuation and ё/е are ignored; numbers match however they were written
(15000, 15 000, 15,000). Leave out to list calls by the other filters alone."""


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
        str | None,
        Query(
            description=Q_DESCRIPTION,
            openapi_examples={
                "phrase": {"summary": "exact phrase", "value": '"send me the contract"'},
                "russian": {"summary": "word and phrase", "value": 'дорого "пришлите договор"'},
                "role-negative": {
                    "summary": "client objected, manager offered no discount",
                    "value": 'client:"дорого" AND NOT manager:скидк*',
                },
                "near": {"summary": "two words close together", "value": "цена NEAR/5 дорого"},
                "window": {
                    "summary": "greeting in the first 30 seconds",
                    "value": 'manager:"добрый день" WITHIN first 30s',
                },
                "number": {"summary": "a number", "value": "15 000"},
            },
        ),
    ] = None,
    role: Annotated[
        RoleFilter,
        Query(description="Who must have said it, for every part of `q` that names no role."),
    ] = RoleFilter.ANY,
    mode: Annotated[
        Mode,
        Query(
            description="`exact`: the words as said (100% match). `forms`: any word form too "
            "(цена → цены, цену, ценой; price → prices)."
        ),
    ] = Mode.EXACT,
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
    tree = None
    if q is not None and q.strip():
        tree = parse_query(
            q,
            role=role,
            mode=mode,
            max_length=settings.max_query_length,
            max_matches=settings.max_query_terms,
        )
    request = SearchRequest(
        tree=tree,
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
