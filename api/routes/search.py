"""``GET /v1/search``. Its parameters (all but ``size`` and ``cursor``) are one dependency,
``search_request``, shared with the CSV export (``api/routes/export.py``)."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.deps import SearchEsDep, SettingsDep
from api.schemas import Problem
from indexer.errors import QueryError
from indexer.metrics import METRIC_NAMES
from indexer.search import (
    Mode,
    Node,
    RoleFilter,
    SearchRequest,
    SearchResponse,
    parse_date_param,
    parse_metric_filter,
    parse_query,
    parse_sort,
)
from indexer.search.workers import search_page_json
from indexer.settings import Settings
from indexer.transcript import Direction

router = APIRouter(prefix="/v1", tags=["search"])

Q_DESCRIPTION = """What was said, in Earshot's query language (docs/query-language.md):
words and "exact phrases" (all must occur: each inside one utterance), `AND`, `OR`, `NOT`,
parentheses, roles (`client:"дорого"`, `manager:(скидка OR акция)`), `a NEAR/5 b` (same
utterance, at most 5 words apart, either order), prefixes (`достав*`) and time windows
(`manager:"добрый день" WITHIN first 30s`, `... WITHIN last 60s`). AND/OR/NOT hold over the
whole call: `client:дорого AND NOT manager:скидка` is a call where the manager never said
"скидка". Case, punctuation and ё/е are ignored; numbers match however they were written
(15000, 15 000, 15,000, пятнадцать тысяч); a term of the company vocabulary (/v1/vocabulary)
matches each of its spellings. Leave out to list calls by the other filters alone."""


METRIC_DESCRIPTION = f"""Only calls whose call metric compares so: `<metric><op><number>`
with `>`, `>=`, `<` or `<=`, e.g. `talk_ratio_manager>0.7`. Repeat to combine (all must hold).
A call without that metric (e.g. no client speech for `wpm_client`) never passes. Metrics:
{", ".join(f"`{name}`" for name in METRIC_NAMES)} (defined in indexer/metrics.py)."""

SORT_DESCRIPTION = """`relevance` (most mentions first; newest without `q`), `newest`,
`oldest`, or a call metric with a direction: `<metric>:desc` / `<metric>:asc`, e.g.
`talk_ratio_manager:desc`. Calls without the metric come last either way; ties go by call id."""


def search_request(
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
            "(цена → цены, цену, ценой; price → prices). `variants`: the words as said or "
            "spelled in the other script (salesforce → сейлсфорс, битрикс → bitrix). In every "
            "mode a vocabulary term finds each of its listed spellings and digits find a "
            "number said in words."
        ),
    ] = Mode.EXACT,
    manager_id: Annotated[str | None, Query(max_length=128)] = None,
    team: Annotated[
        str | None, Query(max_length=128, description="Only calls of this team's managers.")
    ] = None,
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
    # Finite only: "inf" parses as a float, and Elasticsearch refuses Infinity in JSON.
    min_duration_s: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    max_duration_s: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    metric: Annotated[
        list[str] | None,
        Query(
            max_length=200,
            description=METRIC_DESCRIPTION,
            openapi_examples={
                "talkative": {"summary": "manager talks most", "value": ["talk_ratio_manager>0.7"]},
                "slow": {"summary": "slow answers", "value": ["response_latency_s>=2"]},
            },
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            max_length=100,
            description=SORT_DESCRIPTION,
            openapi_examples={
                "relevance": {"summary": "most mentions first", "value": "relevance"},
                "newest": {"summary": "newest first", "value": "newest"},
                "metric": {"summary": "by a call metric", "value": "talk_ratio_manager:desc"},
            },
        ),
    ] = "relevance",
) -> SearchRequest:
    """Every search parameter but the page (``size``, ``cursor``), checked and parsed; the
    query as typed (the runner expands its vocabulary terms)."""
    start = parse_date_param("date_from", date_from)
    end = parse_date_param("date_to", date_to)
    if start and end and _as_date(start) > _as_date(end):
        raise QueryError("date_from is after date_to")
    if (
        min_duration_s is not None
        and max_duration_s is not None
        and min_duration_s > max_duration_s
    ):
        raise QueryError("min_duration_s is greater than max_duration_s")
    metrics = metric or []
    if len(metrics) > settings.max_metric_filters:
        raise QueryError(f"metric: at most {settings.max_metric_filters} metric filters")
    return SearchRequest(
        tree=_tree(q, role, mode, settings),
        manager_id=manager_id,
        team=team,
        client_id=client_id,
        date_from=start,
        date_to=end,
        direction=direction,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
        sort=parse_sort(sort),
        metrics=tuple(parse_metric_filter(text) for text in metrics),
    )


async def _search_request_in_loop(*args: Any, **kwargs: Any) -> SearchRequest:
    return search_request(*args, **kwargs)


# The dependency runs in the event loop, not the thread pool: it only parses (bounded by
# max_query_length and max_query_terms), and a sync dependency costs every search a hop
# through the pool on top of the route's own. Its parameters are ``search_request``'s.
_search_request_in_loop.__signature__ = inspect.signature(search_request)  # type: ignore[attr-defined]
SearchRequestDep = Annotated[SearchRequest, Depends(_search_request_in_loop)]


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={400: {"model": Problem}, 503: {"model": Problem}},
    summary="Find calls by what was said, with the second each match was said at",
)
def search(
    search_es: SearchEsDep,
    settings: SettingsDep,
    request: SearchRequestDep,
    size: Annotated[int, Query(ge=1, description="Calls per page.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    if size > settings.max_page_size:
        raise QueryError(f"size must be at most {settings.max_page_size}")
    # Encoded where it was built (here, or in a search worker process for a large answer:
    # indexer/search/workers.py): the bytes are the answer.
    page = search_page_json(search_es, settings, replace(request, size=size, cursor=cursor))
    return Response(page, media_type="application/json")


def _tree(q: str | None, role: RoleFilter, mode: Mode, settings: Settings) -> Node | None:
    if q is None or not q.strip():
        return None
    tree = parse_query(
        q,
        role=role,
        mode=mode,
        max_length=settings.max_query_length,
        max_matches=settings.max_query_terms,
    )
    # As typed: the runner expands its vocabulary terms, read with the page (a term added a
    # moment ago, by any API process, already counts).
    return tree


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value
