"""``GET /v1/search.csv`` against the JSON answer of ``/v1/search``, row for row, on the real
Elasticsearch: every page, escaping, the byte-order mark, the cap."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.export import _calls
from api.routes.search import search_request
from indexer.search import Mode, RoleFilter, search_calls
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import Call, read_call_file
from indexer.vocabulary import TermCreate, create_term, delete_term, load_vocabulary

Load = Callable[..., None]
HEADER = [
    "call_id",
    "started_at",
    "manager_id",
    "manager_name",
    "client_id",
    "client_name",
    "role",
    "start",
    "end",
    "matched",
    "text",
]


@pytest.fixture(scope="module")
def sample_calls() -> list[Call]:
    return [read_call_file(p) for p in sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))]


@pytest.fixture
def small_pages(settings: Settings) -> Iterator[TestClient]:
    """The API with 3 calls a page, so an export walks many pages."""
    with TestClient(create_app(settings.model_copy(update={"max_page_size": 3}))) as client:
        yield client


def json_rows(api: TestClient, params: dict[str, Any]) -> list[list[str]]:
    """Rows made from the JSON answer, every page, as the CSV should hold them."""
    rows: list[list[str]] = []
    cursor = None
    while True:
        page = {**params, "size": 3, **({"cursor": cursor} if cursor else {})}
        response = api.get("/v1/search", params=page)
        assert response.status_code == 200, response.text
        body = response.json()
        for call in body["calls"]:
            head = [
                call["call_id"],
                call["started_at"],
                call["manager"]["id"],
                call["manager"]["name"] or "",
                call["client"]["id"] or "",
                call["client"]["name"] or "",
            ]
            if not call["hits"]:
                rows.append([*head, "", "", "", "", ""])
            for hit in call["hits"]:
                rows.append(
                    [
                        *head,
                        hit["role"],
                        str(hit["start"]),
                        str(hit["end"]),
                        hit["matched"],
                        hit["text"],
                    ]
                )
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def csv_rows(api: TestClient, params: dict[str, Any], delimiter: str = ",") -> list[list[str]]:
    response = api.get("/v1/search.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=delimiter))
    assert rows[0] == HEADER
    return rows[1:]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "договор"},
        {"q": "price OR discount OR скидка", "sort": "newest"},
        {"q": "дорого", "role": "client", "mode": "forms"},
        {"q": '"send me" OR contract*', "date_from": "2025-06-01"},
        {"manager_id": "m-carter", "sort": "oldest"},  # no q: one row per call, no hit columns
        {"q": "NOT договор", "sort": "talk_ratio_manager:desc"},  # calls without hits
        {"q": "demo", "metric": "talk_ratio_manager>0.5"},
    ],
)
def test_csv_matches_the_json_answer_row_for_row(
    small_pages: TestClient, index_calls: Load, sample_calls: list[Call], params: dict[str, Any]
) -> None:
    index_calls(*sample_calls)

    expected = json_rows(small_pages, params)
    exported = csv_rows(small_pages, params)

    assert exported == expected
    assert expected
    if "q" not in params or params["q"] in ("договор", "NOT договор"):
        assert len({row[0] for row in expected}) > 3  # several pages of calls were walked


def test_csv_escapes_quotes_separators_line_breaks_and_formulas(
    api: TestClient, index_calls: Load
) -> None:
    tricky = 'He said "yes, fine"; then\nleft'
    call = make_call("tricky", [("client", tricky), ("client", "=HYPERLINK(1) price")])
    index_calls(call)

    rows = csv_rows(api, {"q": "said OR price"})

    assert [(row[9], row[10]) for row in rows] == [
        ("said", tricky),
        ("price", "'=HYPERLINK(1) price"),  # shown as text, not run as a formula
    ]
    semicolon = api.get("/v1/search.csv", params={"q": "said", "delimiter": "semicolon"})
    parsed = list(csv.reader(io.StringIO(semicolon.text.lstrip("\ufeff")), delimiter=";"))
    assert parsed[1][10] == tricky


def test_bom_can_be_left_out(api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("x", [("client", "price")]))

    response = api.get("/v1/search.csv", params={"q": "price", "bom": "false"})

    assert response.content.startswith(b"call_id,")
    assert response.headers["x-earshot-truncated"] == "false"
    assert response.headers["content-disposition"].startswith("attachment")


def test_export_is_cut_at_the_cap_and_says_so(settings: Settings, index_calls: Load) -> None:
    index_calls(*[make_call(f"c{n}", [("client", "price")]) for n in range(7)])
    capped = settings.model_copy(update={"export_max_calls": 4, "max_page_size": 3})

    with TestClient(create_app(capped)) as client:
        response = client.get("/v1/search.csv", params={"q": "price", "sort": "oldest"})

    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert [row[0] for row in rows[1:-1]] == ["c0", "c1", "c2", "c3"]
    assert rows[-1][0].startswith("# cut: 4 of 7 calls exported")
    assert response.headers["x-earshot-truncated"] == "true"
    assert response.headers["x-earshot-total-calls"] == "7"
    assert response.headers["x-earshot-exported-calls"] == "4"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": '"unclosed'}, "unclosed quote"),
        ({"q": "a", "metric": "nope>1"}, "unknown metric"),
        ({"q": "a", "delimiter": "pipe"}, "delimiter"),
        ({"q": "a", "size": "5"}, "unknown query parameter"),
    ],
)
def test_bad_export_requests_are_json_400(
    api: TestClient, index_calls: Load, params: dict[str, Any], message: str
) -> None:
    index_calls(make_call("x", [("client", "a")]))

    response = api.get("/v1/search.csv", params=params)

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_every_page_of_an_export_is_the_query_of_its_first_page(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    """The vocabulary is read once per export: a term deleted while the export walks its pages
    (here: between its first and second page) does not change what the later pages match."""
    said = {"c1": "the deal", "c2": "the contract", "c3": "a deal"}
    index_calls(
        *[
            make_call(call_id, [("client", text)], started_at=datetime(2025, 1, day, tzinfo=UTC))
            for day, (call_id, text) in enumerate(said.items(), start=1)
        ]
    )
    create_term(es, settings, TermCreate(canonical="deal", spellings=["contract"]))
    paged = settings.model_copy(update={"max_page_size": 1})
    request = replace(
        search_request(paged, q="deal", role=RoleFilter.ANY, mode=Mode.EXACT, sort="oldest"),
        size=1,
    )
    vocabulary = load_vocabulary(es, paged)
    first = search_calls(es, paged, request, vocabulary=vocabulary)
    calls = _calls(es, paged, request, vocabulary, first)
    assert next(calls).call_id == "c1"
    delete_term(es, paged, "deal")
    assert [call.call_id for call in calls] == ["c2", "c3"]
    # A search after the export follows the change.
    assert [c.call_id for c in search_calls(es, paged, replace(request, size=10)).calls] == [
        "c1",
        "c3",
    ]
