"""What a search asks for: filters, metric conditions, sort order and the page cursor, and how
each becomes part of an Elasticsearch request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from indexer.errors import QueryError
from indexer.metrics import METRIC_NAMES
from indexer.search.query import Node
from indexer.search.results import SortOrder
from indexer.transcript import Direction

MAX_YEAR = 9998


# Java's ZoneOffset, which Elasticsearch parses dates with, stops at ±18:00 (checked on the
# node: +18:00 passes, +18:01 fails the shard); Python accepts up to ±23:59:59.999999.
MAX_UTC_OFFSET = timedelta(hours=18)


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
    offset = parsed.utcoffset() if isinstance(parsed, datetime) else None
    if offset is not None and (abs(offset) > MAX_UTC_OFFSET or offset.microseconds):
        raise QueryError(
            f"{name}: the UTC offset must be whole seconds between -18:00 and +18:00, "
            f"got '{value[:100]}'"
        )
    return parsed


@dataclass(frozen=True)
class SearchRequest:
    tree: Node | None
    manager_id: str | None = None
    team: str | None = None
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
                self.team,
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


def day_bounds(
    date_from: date | datetime | None, date_to: date | datetime | None, zone: tzinfo = UTC
) -> tuple[datetime | None, datetime | None, bool]:
    """Instants for a date range: a bare date covers its whole day in ``zone``; a date-time
    without an offset is read in ``zone``. The flag says whether the end is inclusive."""

    def instant(value: date | datetime, next_day: bool) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        day = value + timedelta(days=1) if next_day else value
        return datetime.combine(day, time.min, tzinfo=zone)

    start = None if date_from is None else instant(date_from, next_day=False)
    end = None if date_to is None else instant(date_to, next_day=True)
    return start, end, isinstance(date_to, datetime)


def date_range(
    date_from: date | datetime | None, date_to: date | datetime | None, zone: tzinfo = UTC
) -> dict[str, str]:
    """The one rule for date bounds → the ``range`` over ``started_at`` (empty: no bounds),
    used by search filters (UTC) and tracker statistics (their ``tz``)."""
    start, end, end_inclusive = day_bounds(date_from, date_to, zone)
    started: dict[str, str] = {}
    if start is not None:
        started["gte"] = start.isoformat()
    if end is not None:
        started["lte" if end_inclusive else "lt"] = end.isoformat()
    return started


def search_filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for field, value in (
        ("manager.id", request.manager_id),
        ("manager.team", request.team),
        ("client.id", request.client_id),
        ("direction", request.direction),
    ):
        if value is not None:
            filters.append({"term": {field: str(value)}})
    started = date_range(request.date_from, request.date_to)
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


def search_sort(order: SortOrder | MetricSort, has_query: bool) -> list[dict[str, Any]]:
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
    # RecursionError: a forged cursor of deeply nested JSON arrays.
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
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
