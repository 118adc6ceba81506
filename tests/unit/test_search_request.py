"""The pure parts of a search, without Elasticsearch: the page cursor, filters, sort, metric
conditions, date bounds and the term layout."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from indexer.errors import QueryError
from indexer.search.layout import second_token, tens_token, term_layout, window_ranges
from indexer.search.query import parse_query
from indexer.search.request import (
    MetricSort,
    SearchRequest,
    date_range,
    decode_cursor,
    encode_cursor,
    parse_date_param,
    parse_metric_filter,
    parse_sort,
    search_filters,
    search_sort,
)
from indexer.search.results import SortOrder
from indexer.transcript import Direction, Word

REQUEST = SearchRequest(tree=parse_query("contract"), manager_id="m-1")


def test_a_cursor_round_trips() -> None:
    cursor = encode_cursor(REQUEST, [1.5, "call-7"])

    assert decode_cursor(REQUEST, cursor) == [1.5, "call-7"]


def test_a_cursor_of_another_query_is_refused() -> None:
    cursor = encode_cursor(REQUEST, [1.5, "call-7"])
    other = SearchRequest(tree=parse_query("price"), manager_id="m-1")

    with pytest.raises(QueryError, match="different query"):
        decode_cursor(other, cursor)


def _forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        _forged({"after": [1, "a"]}),  # no fingerprint
        _forged({"q": REQUEST.fingerprint(), "after": ["NaN", "a"]}),
        _forged({"q": REQUEST.fingerprint(), "after": [True, "a"]}),
        _forged({"q": REQUEST.fingerprint(), "after": [2**63, "a"]}),
        _forged({"q": REQUEST.fingerprint(), "after": [1, 2]}),
        _forged({"q": REQUEST.fingerprint(), "after": [1]}),
    ],
)
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(QueryError, match="cursor is not valid"):
        decode_cursor(REQUEST, cursor)


def test_infinity_is_a_sort_value_for_a_call_without_the_metric() -> None:
    cursor = _forged({"q": REQUEST.fingerprint(), "after": ["-Infinity", "a"]})

    assert decode_cursor(REQUEST, cursor) == ["-Infinity", "a"]


def test_filters_name_every_condition() -> None:
    request = SearchRequest(
        tree=None,
        client_id="c-9",
        direction=Direction("inbound"),
        date_from=date(2026, 3, 1),
        date_to=datetime(2026, 3, 2, 12, 0),
        min_duration_s=30,
        metrics=(parse_metric_filter("talk_ratio_manager>=0.5"),),
    )

    assert search_filters(request) == [
        {"term": {"client.id": "c-9"}},
        {"term": {"direction": "inbound"}},
        {
            "range": {
                "started_at": {
                    "gte": "2026-03-01T00:00:00+00:00",
                    "lte": "2026-03-02T12:00:00+00:00",
                }
            }
        },
        {"range": {"duration_s": {"gte": 30}}},
        {"range": {"metrics.talk_ratio_manager": {"gte": 0.5}}},
    ]


def test_a_bare_end_date_covers_its_whole_day() -> None:
    assert date_range(None, date(2026, 3, 1)) == {"lt": "2026-03-02T00:00:00+00:00"}


def test_date_bounds_follow_the_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")

    assert date_range(date(2026, 3, 1), date(2026, 3, 1), moscow) == {
        "gte": "2026-03-01T00:00:00+03:00",
        "lt": "2026-03-02T00:00:00+03:00",
    }
    assert date_range(None, None) == {}


def test_date_parameters() -> None:
    assert parse_date_param("date_from", "2026-03-01") == date(2026, 3, 1)
    assert parse_date_param("date_from", "2026-03-01T10:00") == datetime(2026, 3, 1, 10)
    assert parse_date_param("date_from", None) is None
    with pytest.raises(QueryError, match="date_to: expected a date"):
        parse_date_param("date_to", "yesterday")
    with pytest.raises(QueryError, match="9998 or earlier"):
        parse_date_param("date_to", "9999-12-31")


def test_sort_orders() -> None:
    assert search_sort(SortOrder.RELEVANCE, has_query=True)[0] == {"_score": "desc"}
    assert search_sort(SortOrder.RELEVANCE, has_query=False)[0] == {"started_at": "desc"}
    assert search_sort(SortOrder.OLDEST, has_query=True)[0] == {"started_at": "asc"}
    by_metric = search_sort(parse_sort("talk_ratio_manager:desc"), has_query=True)
    assert by_metric == [
        {"metrics.talk_ratio_manager": {"order": "desc", "missing": "_last"}},
        {"call_id": "asc"},
    ]
    assert parse_sort("interruptions_client:asc") == MetricSort("interruptions_client", False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loudest", "sort: expected"),
        ("no_such_metric:asc", "no_such_metric"),
    ],
)
def test_bad_sort_is_refused(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_sort(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("talk_ratio_manager", "expected <name><operator><number>"),
        ("talk_ratio_manager>0,7", "not a number"),
        ("talk_ratio_manager>1e12", "out of range"),
        ("talk_ratio_manager>inf", "not a number"),
    ],
)
def test_bad_metric_filter_is_refused(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_metric_filter(text)


def test_the_layout_is_the_same_from_words_and_from_stored_words() -> None:
    words = [Word(text="Send", start=1.2, end=1.5), Word(text="contracts,", start=61.0, end=62.4)]
    stored = [dataclasses.asdict(word) for word in words]

    from_words = term_layout(words, 90.0)
    from_stored = term_layout(stored, 90.0)

    assert [t.text for t in from_words.terms] == [t.text for t in from_stored.terms]
    assert from_words.start_s == from_stored.start_s == ["00001", "00061"]
    assert from_words.to_end_s == from_stored.to_end_s == ["00088", "00027"]
    assert from_words.start_tens == from_stored.start_tens == ["0000", "0006"]
    assert from_words.to_end_tens == from_stored.to_end_tens == ["0008", "0002"]
    assert from_words.lemma == from_stored.lemma


@pytest.mark.parametrize("seconds", [1, 9, 10, 11, 29, 30, 31, 59, 60, 61, 3599, 3600])
def test_a_window_is_whole_tens_and_at_most_nine_seconds(seconds: int) -> None:
    tens, rest = window_ranges(seconds)
    # The whole seconds whose tokens fall in the ranges, as Elasticsearch compares them.
    covered = set()
    if tens is not None:
        covered |= {
            s for s in range(seconds + 10) if tens[0] <= tens_token(second_token(s)) <= tens[1]
        }
    if rest is not None:
        covered |= {s for s in range(seconds + 10) if rest[0] <= second_token(s) <= rest[1]}

    assert covered == set(range(seconds))
    assert rest is None or int(rest[1]) - int(rest[0]) + 1 <= 9
    assert tens is None or int(tens[1]) - int(tens[0]) + 1 == seconds // 10
