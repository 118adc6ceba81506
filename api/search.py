"""Running a search: a query tree and filters to an Elasticsearch query, matches back to seconds.

Elasticsearch decides which calls match (``indexer.es_query``). For every utterance a match was
found in, it returns the stored words; ``indexer.matching`` rebuilds the utterance's positions
from them with the same rules used at index time and finds each occurrence, which yields the
exact words — their character spans and their start and end seconds.

Call metrics (``indexer.metrics``) filter and sort the calls: ``talk_ratio_manager>0.7`` is a
range query on the stored ``metrics.talk_ratio_manager``; a metric sort puts calls without that
metric (e.g. no client speech) last in either direction, then orders by call id so pages never
overlap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from api.schemas import CallResult, Hit, SearchResponse, SortOrder
from indexer.documents import TermLayout, term_layout
from indexer.errors import QueryError, SearchBackendError, SearchTimeoutError
from indexer.es_query import CompiledQuery
from indexer.index import backend_errors
from indexer.matching import occurrences
from indexer.metrics import METRIC_NAMES
from indexer.query import Match, Node
from indexer.settings import Settings
from indexer.transcript import Direction

MAX_YEAR = 9998
CALL_FIELDS = [
    "call_id",
    "started_at",
    "duration_s",
    "language",
    "direction",
    "manager",
    "client",
    "audio",
    "metrics",
    "trackers",
]
HIT_FIELDS = ["utterances.index", "utterances.role", "utterances.speaker", "utterances.text"]
HIT_FIELDS += ["utterances.words"]


MAX_METRIC_VALUE = 1e9  # far past any real metric, well inside an integer field's range
METRIC_OPERATORS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_METRIC_FILTER = re.compile(r"^\s*([A-Za-z_]+)\s*(>=|<=|>|<)\s*(\S+)\s*$")
_METRIC_SORT = re.compile(r"^([A-Za-z_]+):(asc|desc)$")


@dataclass(frozen=True)
class MetricFilter:
    """``talk_ratio_manager>0.7``: calls whose stored metric compares so with the value."""

    name: str
    operator: str  # one of METRIC_OPERATORS
    value: float


@dataclass(frozen=True)
class MetricSort:
    """``talk_ratio_manager:desc``: calls ordered by a metric."""

    name: str
    descending: bool


def _metric_name(name: str, where: str) -> str:
    if name not in METRIC_NAMES:
        raise QueryError(f"{where}: unknown metric '{name}'; metrics: {', '.join(METRIC_NAMES)}")
    return name


def parse_metric_filter(text: str) -> MetricFilter:
    found = _METRIC_FILTER.match(text)
    if not found:
        raise QueryError(
            f"metric: expected <name><operator><number> with operator >, >=, < or <=, e.g. "
            f"talk_ratio_manager>0.7; got '{text[:100]}'"
        )
    name, operator, number = found.groups()
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise QueryError(f"metric: '{number[:50]}' is not a number (write 0.7, not 0,7)")
    if abs(value) > MAX_METRIC_VALUE:
        # Count metrics are integer fields: Elasticsearch refuses a bound past their range.
        raise QueryError(f"metric: {number[:50]} is out of range (±{MAX_METRIC_VALUE:g} at most)")
    return MetricFilter(_metric_name(name, "metric"), operator, value)


def parse_sort(text: str) -> SortOrder | MetricSort:
    """``relevance``, ``newest``, ``oldest``, or ``<metric>:asc`` / ``<metric>:desc``."""
    if text in SortOrder.__members__.values():
        return SortOrder(text)
    found = _METRIC_SORT.match(text)
    if not found:
        named = ", ".join(order.value for order in SortOrder)
        raise QueryError(
            f"sort: expected {named} or <metric>:asc|desc (e.g. talk_ratio_manager:desc); "
            f"got '{text[:100]}'"
        )
    return MetricSort(_metric_name(found.group(1), "sort"), found.group(2) == "desc")


def parse_date_param(name: str, value: str | None) -> datetime | date | None:
    """A bare date stays a date (it means the whole day); anything else must be a date-time."""
    if value is None:
        return None
    try:
        parsed = (
            date.fromisoformat(value)
            if len(value) == len("2026-01-31")
            else datetime.fromisoformat(value)
        )
    except ValueError as exc:
        raise QueryError(
            f"{name}: expected a date (2026-03-01) or date-time, got '{value[:100]}'"
        ) from exc
    if parsed.year > MAX_YEAR:
        # The day after 9999-12-31 (the end of a date_to day) does not exist in Python.
        raise QueryError(f"{name}: the year must be {MAX_YEAR} or earlier")
    return parsed


@dataclass(frozen=True)
class SearchRequest:
    tree: Node | None
    manager_id: str | None = None
    client_id: str | None = None
    date_from: datetime | date | None = None
    date_to: datetime | date | None = None
    direction: Direction | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    sort: SortOrder | MetricSort = SortOrder.RELEVANCE
    metrics: tuple[MetricFilter, ...] = ()
    size: int = 20
    cursor: str | None = None

    def fingerprint(self) -> str:
        """Identifies the query a cursor belongs to (everything but the page position)."""
        key = json.dumps(
            [
                repr(self.tree),
                self.manager_id,
                self.client_id,
                str(self.date_from),
                str(self.date_to),
                self.direction,
                self.min_duration_s,
                self.max_duration_s,
                repr(self.sort),
                repr(self.metrics),
            ],
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def _instant(value: datetime | date, *, end_of_day: bool) -> str:
    """A bound for ``started_at``; a bare date covers that whole day (UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    day = value + timedelta(days=1) if end_of_day else value
    return datetime.combine(day, time.min, tzinfo=UTC).isoformat()


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for field, value in (
        ("manager.id", request.manager_id),
        ("client.id", request.client_id),
        ("direction", request.direction),
    ):
        if value is not None:
            filters.append({"term": {field: str(value)}})
    started: dict[str, str] = {}
    if request.date_from is not None:
        started["gte"] = _instant(request.date_from, end_of_day=False)
    if request.date_to is not None:
        bound = "lte" if isinstance(request.date_to, datetime) else "lt"
        started[bound] = _instant(request.date_to, end_of_day=True)
    if started:
        filters.append({"range": {"started_at": started}})
    duration: dict[str, float] = {}
    if request.min_duration_s is not None:
        duration["gte"] = request.min_duration_s
    if request.max_duration_s is not None:
        duration["lte"] = request.max_duration_s
    if duration:
        filters.append({"range": {"duration_s": duration}})
    for metric in request.metrics:
        filters.append(
            {"range": {f"metrics.{metric.name}": {METRIC_OPERATORS[metric.operator]: metric.value}}}
        )
    return filters


def _sort(order: SortOrder | MetricSort, has_query: bool) -> list[dict[str, Any]]:
    if isinstance(order, MetricSort):
        direction = "desc" if order.descending else "asc"
        first: dict[str, Any] = {f"metrics.{order.name}": {"order": direction, "missing": "_last"}}
    elif order is SortOrder.RELEVANCE and has_query:
        first = {"_score": "desc"}
    else:
        first = {"started_at": "asc" if order is SortOrder.OLDEST else "desc"}
    return [first, {"call_id": "asc"}]


def encode_cursor(request: SearchRequest, sort_values: list[Any]) -> str:
    payload = json.dumps({"q": request.fingerprint(), "after": sort_values}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(request: SearchRequest, cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        fingerprint, after = payload["q"], payload["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise QueryError("cursor is not valid: pass next_cursor exactly as returned") from exc
    if fingerprint != request.fingerprint():
        raise QueryError("cursor belongs to a different query: start again without a cursor")
    if not (isinstance(after, list) and len(after) == 2 and _is_sort_value(after[0])):
        raise QueryError("cursor is not valid: pass next_cursor exactly as returned")
    if not isinstance(after[1], str):
        raise QueryError("cursor is not valid: pass next_cursor exactly as returned")
    return after


def _is_sort_value(value: Any) -> bool:
    """What Elasticsearch puts first in a sort array: a score, a date (epoch ms) or a metric
    — a finite number, or ±Infinity as a string for a call without the metric. Anything else
    (a forged cursor) would fail the search inside Elasticsearch."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    return value in ("Infinity", "-Infinity")


def build_query(
    request: SearchRequest, max_hits_per_call: int
) -> tuple[dict[str, Any], dict[str, Match]]:
    """The search body, and the match each named inner hit belongs to."""
    query: dict[str, Any] = {"bool": {"filter": _filters(request)}}
    named: dict[str, Match] = {}
    if request.tree is not None:
        compiled = CompiledQuery(
            request.tree, inner_hits={"size": max_hits_per_call, "_source": HIT_FIELDS}
        )
        query["bool"]["must"] = [compiled.query]
        named = compiled.named
    body: dict[str, Any] = {
        "query": query,
        "sort": _sort(request.sort, request.tree is not None),
        "size": request.size,
        "track_total_hits": True,
        "_source": CALL_FIELDS,
    }
    if request.cursor is not None:
        body["search_after"] = decode_cursor(request, request.cursor)
    return body, named


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow a span of whole words to its letters and digits: "contract," → "contract"."""
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def _layout(utterance: dict[str, Any], duration_s: float) -> TermLayout:
    words = utterance["words"]
    return term_layout(
        [w["text"] for w in words],
        [w["start"] for w in words],
        [w["end"] for w in words],
        duration_s,
    )


def _hits(match: Match, utterance: dict[str, Any], duration_s: float) -> list[Hit]:
    words = utterance["words"]
    layout = _layout(utterance, duration_s)
    hits = []
    for found in occurrences(match, layout):
        spans: list[tuple[int, int]] = []
        for first, last in found.parts:
            start_word = words[layout.terms[first].first_word]
            end_word = words[layout.terms[last].last_word]
            if start_word["char_start"] is not None and end_word["char_end"] is not None:
                spans.append(
                    _trim(utterance["text"], start_word["char_start"], end_word["char_end"])
                )
        hits.append(
            Hit(
                utterance_index=utterance["index"],
                role=utterance["role"],
                speaker=utterance["speaker"],
                matched=match.typed,
                text=utterance["text"],
                spans=spans,
                start=words[layout.terms[found.first].first_word]["start"],
                end=words[layout.terms[found.last].last_word]["end"],
            )
        )
    return hits


def _call_result(document: dict[str, Any], named: dict[str, Match]) -> CallResult:
    hits: list[Hit] = []
    duration_s = document["_source"]["duration_s"]
    for name, match in named.items():
        inner = document.get("inner_hits", {}).get(name, {}).get("hits", {})
        for utterance_hit in inner.get("hits", []):
            hits.extend(_hits(match, utterance_hit["_source"], duration_s))
    hits.sort(key=lambda hit: (hit.start, hit.utterance_index, hit.end, hit.matched))
    return CallResult(**document["_source"], hits=hits)


def search_calls(es: Elasticsearch, settings: Settings, request: SearchRequest) -> SearchResponse:
    body, named = build_query(request, settings.max_hits_per_call)
    with backend_errors(settings.es_url):
        try:
            answer = es.search(
                index=settings.calls_alias,
                # The cluster's time budget. A search that runs out of it would be partial: it
                # is refused below (504), never shown as a page — exact means exact.
                body={**body, "timeout": f"{round(settings.es_search_timeout_s * 1000)}ms"},
                allow_partial_search_results=False,
            )
        except NotFoundError as exc:
            raise SearchBackendError(
                f"the calls index '{settings.calls_alias}' does not exist yet: load transcripts "
                "first (python -m indexer load)"
            ) from exc
        except ApiError as exc:
            if _too_many_terms(exc):
                raise QueryError(
                    "a prefix matches too many different words: type more letters before *"
                ) from exc
            if exc.meta.status == 400 and request.cursor is not None:
                # A forged cursor's values that do not fit the sort field (e.g. "Infinity"
                # for a date).
                raise QueryError(
                    "cursor is not valid: pass next_cursor exactly as returned"
                ) from exc
            raise
    if answer.get("timed_out"):
        raise SearchTimeoutError(
            f"the search ran past {settings.es_search_timeout_s:g} s: narrow the query or filters"
        )
    documents = answer["hits"]["hits"]
    next_cursor = None
    if len(documents) == request.size:
        next_cursor = encode_cursor(request, documents[-1]["sort"])
    return SearchResponse(
        total=answer["hits"]["total"]["value"],
        took_ms=answer["took"],
        calls=[_call_result(document, named) for document in documents],
        next_cursor=next_cursor,
    )


def _too_many_terms(exc: ApiError) -> bool:
    """Lucene refuses a prefix that expands to more terms than it allows (16384 in 9.x); the
    search then fails as a whole, with a 500."""
    text = json.dumps(exc.body, default=str) if exc.body is not None else str(exc)
    return "expanded to too many terms" in text or "too_many_clauses" in text
