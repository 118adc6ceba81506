"""Faults injected between Earshot and the real Elasticsearch (``tests/faults.py``): the loader
retries per-item 429 and 503, whole-request 5xx, timeouts and dropped connections with capped
backoff and loses nothing; the API answers a search that timed out with a 504, never a page."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from faults import FaultProxy

from api.main import create_app
from indexer.elastic import connect, scan_hits
from indexer.errors import SearchBackendError
from indexer.index.loader import load_calls
from indexer.settings import Settings
from indexer.transcript import Call, SourcedCall

THROUGH_PROXY = {"es_max_retries": 0, "es_retry_max_backoff_s": 0.2, "bulk_chunk_size": 4}


@pytest.fixture
def proxy(settings: Settings) -> Iterator[FaultProxy]:
    """The proxy in front of the test's node; faults name the calls alias's own path, since the
    app also searches other indices (tracker jobs) at start."""
    running = FaultProxy(settings.es_url).start()
    yield running
    running.stop()


def _through(proxy: FaultProxy, settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"es_url": proxy.url, **THROUGH_PROXY, **changes})


def _page_search(settings: Settings) -> tuple[str, str]:
    """A search page's request: a _search of the calls alias, or a _msearch of it with the
    vocabulary's terms (a page with a query: indexer/search/runner.py)."""
    return f"/{settings.calls_alias}/_search", f"/{settings.calls_alias}/_msearch"


def _calls(n: int) -> list[Call]:
    return [make_call(f"fault-{i}", [("client", f"цена {i}")]) for i in range(n)]


def _load(proxy_settings: Settings, calls: list[Call]) -> int:
    es = connect(proxy_settings)
    try:
        summary = load_calls(
            es, proxy_settings, [SourcedCall("test", c) for c in calls], tag=lambda call: []
        )
    finally:
        es.close()
    assert summary.failures == []
    assert summary.loaded == len(calls)
    return summary.retries


def _indexed(es: Elasticsearch, settings: Settings) -> set[str]:
    es.indices.refresh(index=settings.calls_alias)
    answer = es.search(index=settings.calls_alias, size=100, source=False)
    return {hit["_id"] for hit in answer["hits"]["hits"]}


@pytest.mark.parametrize("status", [429, 503])
def test_items_refused_for_now_are_sent_again_until_they_land(
    es: Elasticsearch, settings: Settings, proxy: FaultProxy, status: int
) -> None:
    calls = _calls(8)
    proxy.arm("bulk_item_status", "/_bulk", times=3, status=status)
    retries = _load(_through(proxy, settings), calls)
    assert retries >= 3
    assert sum(1 for line in proxy.fired if line.startswith("bulk_item_status")) == 3
    assert _indexed(es, settings) == {c.call_id for c in calls}


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("status", {"status": 503}),
        ("status", {"status": 502}),
        ("drop", {}),
        ("stall", {"stall_s": 3.0}),  # past bulk_request_timeout_s: the client times out
    ],
)
def test_a_failed_bulk_request_is_sent_again(
    es: Elasticsearch, settings: Settings, proxy: FaultProxy, kind: str, options: dict[str, float]
) -> None:
    calls = _calls(5)
    proxy.arm(kind, "/_bulk", times=2, **options)  # type: ignore[arg-type]
    retries = _load(_through(proxy, settings, bulk_request_timeout_s=1.0), calls)
    assert retries >= 2
    assert _indexed(es, settings) == {c.call_id for c in calls}


def test_backoff_is_capped_and_the_deadline_stops_the_load(
    settings: Settings, proxy: FaultProxy
) -> None:
    proxy.arm("bulk_item_status", "/_bulk", times=10_000, status=429)
    proxy_settings = _through(proxy, settings, es_retry_deadline_s=3.0)
    es = connect(proxy_settings)
    started = time.monotonic()
    with pytest.raises(SearchBackendError, match="still failing after 3 s") as failure:
        load_calls(es, proxy_settings, [SourcedCall("t", c) for c in _calls(2)], tag=lambda c: [])
    took = time.monotonic() - started
    es.close()
    # Uncapped doubling from 0.5 s would fit 3 pauses in 3 s; capped at 0.2 s, about 15.
    bulks = sum(1 for line in proxy.seen if "/_bulk" in line)
    assert bulks >= 10
    assert 3.0 <= took < 10.0
    assert "calls loaded before, the rest not" in str(failure.value)


def test_a_search_that_timed_out_is_a_504_never_a_page(
    index_calls: Callable[..., None], settings: Settings, proxy: FaultProxy
) -> None:
    index_calls(make_call("slow-1", [("client", "дорого")]))
    proxy.arm("search_timed_out", _page_search(settings), times=1)
    with TestClient(create_app(_through(proxy, settings))) as api:
        timed_out = api.get("/v1/search", params={"q": "дорого"})
        again = api.get("/v1/search", params={"q": "дорого"})
    assert proxy.fired
    assert proxy.fired[0].startswith("search_timed_out")
    assert timed_out.status_code == 504, timed_out.text
    assert "took too long" in timed_out.json()["detail"]
    assert "calls" not in timed_out.json()
    assert again.status_code == 200
    assert [c["call_id"] for c in again.json()["calls"]] == ["slow-1"]


def test_a_search_the_node_does_not_answer_in_time_is_a_504(
    index_calls: Callable[..., None], settings: Settings, proxy: FaultProxy
) -> None:
    index_calls(make_call("slow-2", [("client", "дорого")]))
    proxy.arm("stall", _page_search(settings), times=1, stall_s=3.0)
    api_settings = _through(proxy, settings, es_request_timeout_s=1.0, es_search_timeout_s=0.5)
    with TestClient(create_app(api_settings)) as api:
        response = api.get("/v1/search", params={"q": "дорого"})
    assert response.status_code == 504, response.text


def test_a_dropped_search_connection_is_a_503(
    index_calls: Callable[..., None], settings: Settings, proxy: FaultProxy
) -> None:
    index_calls(make_call("drop-1", [("client", "дорого")]))
    proxy.arm("drop", _page_search(settings), times=1)
    with TestClient(create_app(_through(proxy, settings))) as api:
        response = api.get("/v1/search", params={"q": "дорого"})
    assert response.status_code == 503, response.text
    assert "unavailable" in response.json()["detail"]


def test_a_page_request_retried_after_a_timeout_loses_no_hit(
    es: Elasticsearch, settings: Settings, proxy: FaultProxy
) -> None:
    # The client retries a page request whose answer is late; the node has served the first
    # attempt all the same. With a scroll, that attempt moved the cursor and the retry got the
    # page after: one page gone, no error (a 100k reindex read 90,000 of 100,000 ids).
    # scan_hits names each page by the hit before it, so the retry gets the same page.
    index = f"{settings.calls_alias}-scan"
    es.options(ignore_status=404).indices.delete(index=index)
    operations: list[dict[str, object]] = []
    for n in range(35):
        operations += [{"index": {"_index": index, "_id": f"doc-{n}"}}, {"n": n}]
    es.bulk(operations=operations, refresh=True)
    patient = {"es_request_timeout_s": 0.5, "es_max_retries": 2, "es_retry_max_backoff_s": 0.2}
    client = connect(settings.model_copy(update={"es_url": proxy.url, **patient}))
    try:
        hits = scan_hits(client, index, size=10, source=False)
        seen = [next(hits)["_id"] for _ in range(10)]  # the first page
        proxy.arm("late", "/_search", times=1, stall_s=1.5)  # the second page's request
        seen += [hit["_id"] for hit in hits]
    finally:
        client.close()
        es.options(ignore_status=404).indices.delete(index=index)
    assert sorted(seen) == sorted(f"doc-{n}" for n in range(35))
    assert sum("_search" in request for request in proxy.seen) == 5, "4 pages, one retried"
