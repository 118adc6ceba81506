"""What an adversarial probe of the API broke (issue #11), each on the real app and the real
Elasticsearch: repeated terms multiplying hits, dates Python accepts and Elasticsearch does not,
nested cursors, over-long stored paths, leaks of the backend's address and password, HEAD,
trailing-slash redirects, and a deadline that holds while Elasticsearch is still working."""

from __future__ import annotations

import base64
import csv
import io
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import make_call, search
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.settings import Settings
from indexer.transcript import Call

Load = Callable[..., None]

PRICE_CALL = [
    ("client", "цена высокая, цена не та"),
    ("manager", "the price is the price and the deal is the deal"),
]


def _hit_keys(body: dict[str, Any]) -> list[tuple[str, int, tuple[tuple[int, int], ...]]]:
    return [
        (call["call_id"], hit["utterance_index"], tuple(map(tuple, hit["spans"])))
        for call in body["calls"]
        for hit in call["hits"]
    ]


# --- 1. Repeated terms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repeated", "single"),
    [
        ("цена цена", "цена"),
        (" ".join(["the"] * 20), "the"),
        ("the OR the OR the", "the"),
        ('"the" the (the OR the)', "the"),
        ('client:цена AND client:"цена"', "client:цена"),
    ],
)
def test_a_repeated_term_gives_each_hit_once(
    api: TestClient, index_calls: Load, repeated: str, single: str
) -> None:
    index_calls(make_call("c1", PRICE_CALL), make_call("c2", [("client", "the end")]))
    once = _hit_keys(search(api, single, size=100))
    again = _hit_keys(search(api, repeated, size=100))
    assert once  # the query does find something
    assert again == once
    assert len(set(again)) == len(again)


def test_different_parts_matching_the_same_words_give_one_hit(
    api: TestClient, index_calls: Load
) -> None:
    index_calls(make_call("c1", PRICE_CALL))
    body = search(api, "price OR pri* OR (price AND pric*)")
    keys = _hit_keys(body)
    assert len(keys) == 2  # "price" twice in one utterance: two distinct spans
    assert len(set(keys)) == len(keys)


def test_the_hit_cap_holds_per_call_however_the_query_is_written(
    settings: Settings, index_calls: Load
) -> None:
    capped = settings.model_copy(update={"max_hits_per_call": 3})
    index_calls(make_call("c1", [("client", "the")] * 10 + [("manager", "the deal")] * 10))
    with TestClient(create_app(capped)) as api:
        for q in ("the", "the the the", "the OR deal OR th* OR the", 'the "the deal" deal'):
            hits = search(api, q)["calls"][0]["hits"]
            assert len(hits) == 3, q
            assert len(set(map(str, hits))) == 3


def test_csv_export_does_not_repeat_rows_for_a_repeated_term(
    api: TestClient, index_calls: Load
) -> None:
    index_calls(make_call("c1", PRICE_CALL))

    def rows(q: str) -> list[list[str]]:
        answer = api.get("/v1/search.csv", params={"q": q, "bom": "false"})
        assert answer.status_code == 200
        return list(csv.reader(io.StringIO(answer.text)))

    assert rows("цена цена цена") == rows("цена")
    assert len(rows("цена")) == 3  # header and the two places "цена" was said


# --- 5. Bad input that was a 500 ------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+23:59", "-18:30", "+18:00:00.5"])
def test_an_offset_elasticsearch_cannot_read_is_a_400_everywhere(
    api: TestClient, index_calls: Load, offset: str
) -> None:
    index_calls(make_call("c1", PRICE_CALL))
    created = api.post("/v1/trackers", json={"name": "Price", "phrases": ["цена"]})
    assert created.status_code in (201, 202), created.text
    tracker_id = created.json().get("id") or created.json()["tracker"]["id"]
    value = f"2026-01-01T00:00:00{offset}"
    for path, params in (
        ("/v1/search", {"q": "цена", "date_from": value}),
        ("/v1/search", {"date_to": value}),
        ("/v1/search.csv", {"q": "цена", "date_from": value}),
        (f"/v1/trackers/{tracker_id}/stats", {"date_from": value}),
    ):
        answer = api.get(path, params=params)
        assert answer.status_code == 400, (path, answer.text)
        assert "UTC offset" in answer.json()["detail"]
        assert "exception" not in answer.text.lower()


@pytest.mark.parametrize("offset", ["+18:00", "-18:00", "+05:30", "Z"])
def test_offsets_elasticsearch_reads_still_work(
    api: TestClient, index_calls: Load, offset: str
) -> None:
    index_calls(make_call("c1", PRICE_CALL))
    assert search(api, "цена", date_from=f"2026-01-01T00:00:00{offset}")["total"] == 1
    assert search(api, "цена", date_to=f"2026-01-01T00:00:00{offset}")["total"] == 0


@pytest.mark.parametrize("depth", [100, 1000, 1500])
def test_a_deeply_nested_cursor_is_a_400(api: TestClient, depth: int) -> None:
    for payload in ("[" * depth, '{"q": ' + "[" * depth, '{"q": "x", "after": ' + "{" * depth):
        cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        answer = api.get("/v1/search", params={"cursor": cursor[:2048]})
        assert answer.status_code == 400, answer.text
        assert "cursor" in answer.json()["detail"]


def test_a_stored_audio_path_past_the_system_limit_is_a_404(
    settings: Settings, index_calls: Load, tmp_path: Path
) -> None:
    call = make_call("long", [("client", "hello")])
    for name, uri in (
        ("long", "a" * 300 + ".wav"),  # one name past NAME_MAX
        ("deep", "/".join(["d" * 200] * 30) + "/x.wav"),  # a path past PATH_MAX
    ):
        index_calls(call.model_copy(update={"call_id": name, "audio": _audio(call, uri)}))
    with TestClient(create_app(settings.model_copy(update={"audio_root": tmp_path}))) as api:
        for call_id in ("long", "deep"):
            answer = api.get(f"/v1/calls/{call_id}/audio")
            assert answer.status_code == 404, answer.text
            assert answer.json()["detail"] == "the recording is not in the audio store"


def _audio(call: Call, uri: str) -> Any:
    return call.audio.model_copy(update={"uri": uri})


# --- 6. Leaks -------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_backend_failures_name_neither_address_nor_password_in_answers_or_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    gone = settings.model_copy(
        update={"es_url": f"http://elastic:s3cret-pw@127.0.0.1:{port}", "es_max_retries": 0}
    )
    with caplog.at_level(logging.DEBUG), TestClient(create_app(gone)) as api:
        answers = [
            api.get("/v1/search", params={"q": "price"}),
            api.get("/v1/search.csv", params={"q": "price"}),
            api.get("/v1/calls/c1"),
            api.get("/v1/trackers"),
            api.get("/readyz"),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        for secret in ("s3cret-pw", str(port), "127.0.0.1", "Error", "Exception"):
            assert secret not in answer.text, (secret, answer.text)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"127.0.0.1:{port}" in logged  # the operators still learn where it failed
    assert "s3cret-pw" not in logged


# --- 7. HEAD, redirects ---------------------------------------------------------------------------


def test_head_answers_every_get_route_with_its_headers_and_no_body(
    settings: Settings, index_calls: Load, tmp_path: Path
) -> None:
    (tmp_path / "c1.wav").write_bytes(b"RIFF" + bytes(1000))
    call = make_call("c1", PRICE_CALL)
    index_calls(call.model_copy(update={"audio": _audio(call, "c1.wav")}))
    with TestClient(create_app(settings.model_copy(update={"audio_root": tmp_path}))) as api:
        for path in ("/v1/calls/c1/audio", "/v1/calls/c1", "/v1/search?q=price", "/healthz"):
            got, head = api.get(path), api.head(path)
            assert head.status_code == got.status_code == 200, path
            assert head.content == b""
            for name in ("content-type", "accept-ranges"):
                assert head.headers.get(name) == got.headers.get(name), (path, name)
            # A search answer carries its own took_ms, so two answers may differ in its digits.
            slack = 3 if path.startswith("/v1/search") else 0
            lengths = int(head.headers["content-length"]), int(got.headers["content-length"])
            assert abs(lengths[0] - lengths[1]) <= slack, (path, lengths)
        assert api.head("/v1/calls/nope").status_code == 404
        assert api.head("/v1/calls/nope").content == b""


def test_a_trailing_slash_is_never_redirected_to_the_host_header(api: TestClient) -> None:
    for path in ("/v1/search/", "/v1/trackers/", "/healthz/"):
        answer = api.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
        assert answer.headers["content-type"] == "application/json"


# --- 4. A real deadline ---------------------------------------------------------------------------


def heavy_calls(count: int) -> list[Call]:
    """Long utterances over a small vocabulary: every word occurs everywhere, so prefix NEARs
    match every utterance in many ways (Elasticsearch takes seconds on them, and each call
    brings back every utterance per match)."""
    vocabulary = [f"{a}{b}x" for a in "pqrst" for b in "aeiou"]
    calls = []
    for number in range(count):
        turns = [
            (
                "client" if turn % 2 else "manager",
                " ".join(
                    vocabulary[(number * 7 + turn * 13 + word * 17) % 25] for word in range(200)
                ),
            )
            for turn in range(10)
        ]
        calls.append(make_call(f"heavy-{number:03d}", turns))
    return calls


HEAVY_PAIRS = [
    "pa* NEAR/50 qe*",
    "ri* NEAR/50 so*",
    "tu* NEAR/50 pe*",
    "qa* NEAR/50 ru*",
    "si* NEAR/50 to*",
    "po* NEAR/50 qi*",
    "ra* NEAR/50 se*",
    "ti* NEAR/50 pu*",
]
HEAVY_QUERY = " OR ".join(HEAVY_PAIRS)
TIGHT_BUDGET_S = 0.5


def _our_search_tasks(es: Any, alias: str) -> list[str]:
    listing = es.tasks.list(actions="*search*", detailed=True)
    return [
        task_id
        for node in listing["nodes"].values()
        for task_id, task in node["tasks"].items()
        if task.get("headers", {}).get("X-Opaque-Id", "").startswith(f"earshot:{alias}:")
    ]


def test_a_heavy_search_answers_504_within_the_budget_and_its_task_is_cancelled(
    es: Any, settings: Settings, index_calls: Load
) -> None:
    index_calls(*heavy_calls(30))
    budget_s = TIGHT_BUDGET_S
    tight = settings.model_copy(update={"es_search_timeout_s": budget_s})
    with TestClient(create_app(tight)) as api:
        for path in ("/v1/search", "/v1/search.csv"):
            started = time.monotonic()
            answer = api.get(
                path, params={"q": HEAVY_QUERY, **({"size": 100} if path == "/v1/search" else {})}
            )
            took_s = time.monotonic() - started
            assert answer.status_code == 504, answer.text[:300]
            assert "took too long" in answer.json()["detail"]
            # The budget plus the app's own work on a shared, busy machine; Elasticsearch
            # alone needs several seconds for this query.
            assert took_s < budget_s + 2.0, took_s
    deadline = time.monotonic() + 10
    while _our_search_tasks(es, settings.calls_alias):
        assert time.monotonic() < deadline, "the search task is still running in Elasticsearch"
        time.sleep(0.1)


def test_the_same_heavy_search_is_genuinely_heavy(settings: Settings, index_calls: Load) -> None:
    """The control for the test above: with a generous budget the same query takes longer
    than that test's budget, so its 504 came from the deadline, not from a quick failure.
    (It took longer than the budget plus that test's 2 s of slack too, until the hits of a
    call were rebuilt only as far as the page shows them: ~1 s on an idle machine now.)"""
    index_calls(*heavy_calls(30))
    generous = settings.model_copy(
        update={"es_search_timeout_s": 120.0, "es_request_timeout_s": 130.0}
    )
    with TestClient(create_app(generous)) as api:
        started = time.monotonic()
        answer = api.get("/v1/search", params={"q": HEAVY_QUERY, "size": 100})
        took_s = time.monotonic() - started
    assert answer.status_code == 200
    assert took_s > TIGHT_BUDGET_S, took_s


# --- 1. Memory and liveness under worst-case queries ----------------------------------------------

# Documented in docs/benchmarks.md: 4 worst-case queries at once keep the API process and its
# search workers under this (measured: ~355 MB peak on 150 calls when the searches ran in the
# API's process; main took it to several GB on the probe's data).
MAX_API_RSS_MB = 1024
# The API's own process while they run: searches are decoded and rebuilt in the worker
# processes, so it grows by the pages' bytes only (4 answers of ~0.7 MB here; 200+ MB when
# the 4 answers of Elasticsearch were decoded in it).
MAX_API_GROWTH_MB = 50


def test_four_worst_case_queries_keep_memory_bounded_and_healthz_answering(
    settings: Settings, index_calls: Load, tmp_path: Path
) -> None:
    from bench.hostile import common_word_calls, serve, worst_case

    index_calls(*common_word_calls(60))
    port = _closed_port()
    env = {
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_ES_SEARCH_TIMEOUT_S": "120",
        "EARSHOT_ES_REQUEST_TIMEOUT_S": "130",
    }
    server = serve(env, port, tmp_path / "api.log")
    try:
        result = worst_case(f"http://127.0.0.1:{port}", server.pid, concurrency=4, size=100)
    finally:
        server.terminate()
        server.wait(30)
    assert result["statuses"] == [200] * 4
    assert result["rss_peak_mb"] + result["workers_rss_peak_mb"] < MAX_API_RSS_MB, result
    assert result["workers"] >= 2, result  # the search workers (the default 2) were there
    assert result["rss_peak_mb"] - result["rss_before_mb"] < MAX_API_GROWTH_MB, result
    # /healthz kept answering while the searches ran, the typical probe at once (it never
    # waits for a thread-pool worker). Its p95 and max are benchmark figures
    # (scripts/bench-hostile, docs/benchmarks.md): on a busy 2-core machine they depend on the
    # other load, so here only bounds a stalled or queued probe would break.
    assert result["healthz_probes"] >= 1
    assert result["healthz"]["p50_ms"] < 100, result
    assert result["healthz"]["max_ms"] < 10_000, result
