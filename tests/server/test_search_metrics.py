"""Filtering and sorting searches by call metrics, through the real API on the real
Elasticsearch. Expected answers come from ``call_metrics`` on the same transcripts (its values
are checked by hand in test_metrics.py) and plain Python filtering and sorting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from builders import make_call
from fastapi.testclient import TestClient
from test_metrics import main_call

from indexer.metrics import METRIC_NAMES, call_metrics
from indexer.transcript import Call

Load = Callable[..., None]

LONG = "we offer a complete package with onboarding support and a dedicated manager for you"


def calls() -> list[Call]:
    return [
        make_call("manager-heavy", [("manager", LONG), ("client", "ok price")]),
        make_call("balanced", [("manager", "the price is ten"), ("client", "the price is high")]),
        make_call("client-heavy", [("manager", "price?"), ("client", LONG)]),
        make_call("manager-only", [("manager", f"{LONG} price")]),
        make_call("client-only", [("client", "hello is anyone there price")]),
        make_call("nobody", []),
        make_call(
            "mixed",
            [("manager", "hello there"), ("client", "price please"), ("manager", LONG)],
        ),
        main_call("overlaps"),  # interruptions both ways, a known response latency
    ]


def metric(call: Call, name: str) -> float | None:
    value: float | None = getattr(call_metrics(call), name)
    return value


def get(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [call["call_id"] for call in body["calls"]]


def all_pages(api: TestClient, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(50):
        body = get(api, **params, **({"cursor": cursor} if cursor else {}))
        seen += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


@pytest.fixture
def loaded(index_calls: Load) -> list[Call]:
    made = calls()
    index_calls(*made)
    return made


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        (["talk_ratio_manager>0.7"], lambda m: (m.talk_ratio_manager or 0) > 0.7),
        (
            ["talk_ratio_manager<=0.5"],
            lambda m: m.talk_ratio_manager is not None and m.talk_ratio_manager <= 0.5,
        ),
        (
            ["talk_ratio_manager>0.3", "talk_ratio_manager<0.9"],
            lambda m: m.talk_ratio_manager is not None and 0.3 < m.talk_ratio_manager < 0.9,
        ),
        (["wpm_client>=1"], lambda m: m.wpm_client is not None),
        (["silence_s < 1.5"], lambda m: m.silence_s < 1.5),
        (["interruptions_client>0"], lambda m: m.interruptions_client > 0),
        (["interruptions_client>1.5"], lambda m: m.interruptions_client > 1.5),
        (["interruptions_client<=0"], lambda m: m.interruptions_client <= 0),
    ],
)
def test_metric_filters_keep_exactly_the_calls_that_pass(
    api: TestClient, loaded: list[Call], filters: list[str], keep: Callable[[Any], bool]
) -> None:
    expected = {call.call_id for call in loaded if keep(call_metrics(call))}
    # A case that keeps every call, or none, could not catch a filter that does nothing.
    assert 0 < len(expected) < len(loaded), filters

    body = get(api, metric=filters, size=100)

    assert set(ids(body)) == expected
    assert body["total"] == len(expected)


def test_filters_select_something_and_leave_something_out(loaded: list[Call]) -> None:
    """The cases above must be able to fail: the ratio splits the calls."""
    ratios = [metric(call, "talk_ratio_manager") for call in loaded]
    assert any(r is not None and r > 0.7 for r in ratios)
    assert any(r is not None and r <= 0.5 for r in ratios)
    assert None in ratios
    assert any(metric(call, "interruptions_client") for call in loaded)


def test_metric_filter_combines_with_the_query(api: TestClient, loaded: list[Call]) -> None:
    body = get(api, q="price", role="client", metric="talk_ratio_manager>0.5")

    expected = {
        call.call_id
        for call in loaded
        if any(u.role == "client" and "price" in u.text for u in call.utterances)
        and (metric(call, "talk_ratio_manager") or 0) > 0.5
    }
    assert set(ids(body)) == expected
    assert expected  # manager-heavy and mixed


@pytest.mark.parametrize("name", ["talk_ratio_manager", "wpm_client", "response_latency_s"])
@pytest.mark.parametrize("descending", [True, False])
def test_sort_by_metric_pages_through_every_call_once_with_missing_values_last(
    api: TestClient, loaded: list[Call], name: str, descending: bool
) -> None:
    with_value = [c for c in loaded if metric(c, name) is not None]
    without = [c for c in loaded if metric(c, name) is None]
    with_value.sort(key=lambda c: c.call_id)
    with_value.sort(key=lambda c: metric(c, name) or 0.0, reverse=descending)
    expected = [c.call_id for c in with_value] + sorted(c.call_id for c in without)
    assert without  # calls without the metric are part of every case

    order = "desc" if descending else "asc"
    seen = all_pages(api, sort=f"{name}:{order}", size=2)

    assert seen == expected


def test_sort_by_metric_with_a_query_ignores_relevance(api: TestClient, loaded: list[Call]) -> None:
    body = get(api, q="price", sort="talk_ratio_manager:asc", size=100)

    values = [call["metrics"]["talk_ratio_manager"] for call in body["calls"]]
    present = [v for v in values if v is not None]
    assert present == sorted(present)
    assert values[len(present) :] == [None] * (len(values) - len(present))


def test_results_carry_the_call_metrics(api: TestClient, loaded: list[Call]) -> None:
    body = get(api, size=100)

    for call in body["calls"]:
        made = next(c for c in loaded if c.call_id == call["call_id"])
        assert call["metrics"] == pytest.approx(call_metrics(made).model_dump())
    assert set(body["calls"][0]["metrics"]) == set(METRIC_NAMES)


def test_named_sorts_still_work(api: TestClient, loaded: list[Call]) -> None:
    for sort in ("relevance", "newest", "oldest"):
        assert len(all_pages(api, q="price", sort=sort, size=2)) == 6


def test_a_cursor_belongs_to_its_sort(api: TestClient, loaded: list[Call]) -> None:
    cursor = get(api, sort="talk_ratio_manager:desc", size=1)["next_cursor"]

    response = api.get(
        "/v1/search", params={"sort": "talk_ratio_manager:asc", "size": 1, "cursor": cursor}
    )

    assert response.status_code == 400
    assert "different query" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"metric": "talk_ratio>0.5"}, "unknown metric 'talk_ratio'"),
        ({"metric": "talk_ratio_manager=0.5"}, "expected <name><operator><number>"),
        ({"metric": "talk_ratio_manager>>0.5"}, "not a number"),
        ({"metric": "talk_ratio_manager>0,5"}, "not a number"),
        ({"metric": "talk_ratio_manager>nan"}, "not a number"),
        ({"metric": "talk_ratio_manager>inf"}, "not a number"),
        ({"metric": "interruptions_client>1e20"}, "out of range"),
        ({"metric": "talk_ratio_manager>-1e308"}, "out of range"),
        ({"metric": "talk_ratio_manager"}, "expected <name><operator><number>"),
        ({"metric": ["wpm_client>1"] * 21}, "at most 20"),
        ({"sort": "talk_ratio_manager"}, "sort: expected"),
        ({"sort": "talk_ratio_manager:up"}, "sort: expected"),
        ({"sort": "loudness:desc"}, "unknown metric 'loudness'"),
        ({"sort": "score"}, "sort: expected"),
    ],
)
def test_bad_metric_parameters_get_400(
    api: TestClient, loaded: list[Call], params: dict[str, Any], message: str
) -> None:
    response = api.get("/v1/search", params=params)

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_openapi_lists_the_metric_names(api: TestClient) -> None:
    parameters = api.get("/openapi.json").json()["paths"]["/v1/search"]["get"]["parameters"]
    described = {p["name"]: p.get("description", "") for p in parameters}

    assert all(name in described["metric"] for name in METRIC_NAMES)
    assert "talk_ratio_manager:desc" in described["sort"]
