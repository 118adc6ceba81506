"""Search pages of large answers built in worker processes (indexer/search/workers.py), small
ones in the request's thread, the pools' shutdown (indexer/processes.py), and hits rebuilt only
as far as a page shows them (indexer/search/runner.py ``_call_result``): the same answers as a
search in the request's own thread that rebuilds every returned utterance."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.search import search_request
from bench.hostile import WORST_QUERY, common_word_calls, serve
from bench.measure import children
from indexer.elastic import connect
from indexer.errors import SearchBackendError
from indexer.search import Mode, RoleFilter, SearchRequest
from indexer.search.layout import term_layout
from indexer.search.query import Match
from indexer.search.results import CallResult, Hit
from indexer.search.runner import (
    Deadline,
    _hits,
    build_query,
    distinct_hits,
    plan_of,
    search_calls,
    send_page_search,
)
from indexer.search.workers import (
    SEARCH_POOL,
    search_client,
    search_page_json,
    start_search_workers,
)
from indexer.settings import Settings
from indexer.vocabulary import TermCreate, create_term, delete_term

QUERIES = [
    WORST_QUERY,
    "the deal",
    '"the contract"',
    "the NEAR/3 price",
    '"the contract" OR the* OR price',
    "client:the AND manager:deal",
    "deal WITHIN first 30s",
]


def _request(settings: Settings, es: Elasticsearch, q: str, size: int) -> SearchRequest:
    parsed = search_request(settings, q=q, role=RoleFilter.ANY, mode=Mode.EXACT)
    return replace(parsed, size=size)


def _every_utterance_rebuilt(
    document: dict[str, Any], named: dict[str, Match], max_hits: int
) -> list[Hit]:
    """The hits of a call as they were made before pruning and before a call's utterances
    were laid out together: every match in every returned utterance, each laid out alone,
    then ``distinct_hits``."""
    hits: list[Hit] = []
    duration_s = document["_source"]["duration_s"]
    for name, match in named.items():
        inner = document.get("inner_hits", {}).get(name, {}).get("hits", {})
        for utterance_hit in inner.get("hits", []):
            utterance = utterance_hit["_source"]
            layout = term_layout(utterance["words"], duration_s)
            hits.extend(_hits(match, utterance, layout))
    return distinct_hits(hits, max_hits)


@pytest.mark.parametrize("max_hits", [1, 7, 50])
def test_hits_of_worst_case_calls_are_those_of_every_utterance_rebuilt(
    es: Elasticsearch, settings: Settings, index_calls: Any, max_hits: int
) -> None:
    # A common word several times in each of 20 utterances: the page shows the first
    # max_hits hits of a call, and most utterances need not be rebuilt for them.
    index_calls(*common_word_calls(12))
    capped = settings.model_copy(update={"max_hits_per_call": max_hits})
    for q in QUERIES:
        request = _request(capped, es, q, size=100)
        page = search_calls(es, capped, request)
        body, named = build_query(request, max_hits)
        answer = es.search(index=settings.calls_alias, body=body)
        documents = answer["hits"]["hits"]
        assert [call.call_id for call in page.calls] == [d["_id"] for d in documents], q
        assert page.calls, q
        for call, document in zip(page.calls, documents, strict=True):
            expected = _every_utterance_rebuilt(document, named, max_hits)
            assert call.hits == expected, (q, call.call_id)
        if q == WORST_QUERY:
            assert all(len(call.hits) == max_hits for call in page.calls)


def _in_thread(es: Elasticsearch, settings: Settings, request: SearchRequest) -> dict[str, Any]:
    page = search_calls(es, settings, request).model_dump(mode="json")
    page.pop("took_ms")
    return page


def _from_pool(settings: Settings, request: SearchRequest) -> dict[str, Any]:
    client = search_client(settings)
    try:
        page: dict[str, Any] = json.loads(search_page_json(client, settings, request))
    finally:
        client.close()
    page.pop("took_ms")
    return page


def _answer_bytes(settings: Settings, request: SearchRequest) -> int:
    """How many bytes Elasticsearch answers for the page."""
    client = connect(settings, undecoded_from=0)
    try:
        answer, _ = send_page_search(
            client, settings, plan_of(settings, request, None), Deadline(settings)
        )
    finally:
        client.close()
    assert isinstance(answer, bytes)
    return len(answer)


def _gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether the process has exited (and been reaped) within ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_page_from_a_worker_is_the_page_searched_in_this_thread(
    es: Elasticsearch, settings: Settings, index_calls: Any
) -> None:
    index_calls(
        *common_word_calls(5),
        make_call("c-price", [("client", "the price is too high"), ("manager", "the deal")]),
    )
    # Every answer to a worker.
    pooled = settings.model_copy(update={"search_processes": 1, "search_worker_min_bytes": 0})
    workers = start_search_workers(pooled)
    try:
        assert workers
        assert os.getpid() not in workers
        for q in QUERIES:
            request = _request(settings, es, q, size=20)
            from_worker = _from_pool(pooled, request)
            assert from_worker == _in_thread(es, settings, request), q
            assert CallResult.model_validate(from_worker["calls"][0]).hits
    finally:
        SEARCH_POOL.shutdown()


def test_a_worker_finds_the_vocabulary_changed_and_the_page_is_searched_again(
    es: Elasticsearch, settings: Settings, index_calls: Any
) -> None:
    """A page built in a worker reads the stored terms with it as one built here does: a term
    written by another process since the vocabulary was last built counts in the very next
    page, sent again with the vocabulary of the terms the worker found."""
    index_calls(
        make_call("c-deal", [("client", "the deal is fine")]),
        make_call("c-contract", [("client", "send the contract")]),
    )
    pooled = settings.model_copy(update={"search_processes": 1, "search_worker_min_bytes": 0})
    request = _request(settings, es, "deal", size=20)
    try:
        assert {c["call_id"] for c in _from_pool(pooled, request)["calls"]} == {"c-deal"}
        create_term(es, settings, TermCreate(canonical="deal", spellings=["contract"]))
        from_worker = _from_pool(pooled, request)
        assert {c["call_id"] for c in from_worker["calls"]} == {"c-deal", "c-contract"}
        delete_term(es, settings, "deal")
        from_worker = _from_pool(pooled, request)
        assert {c["call_id"] for c in from_worker["calls"]} == {"c-deal"}
        assert from_worker == _in_thread(es, settings, request)
    finally:
        SEARCH_POOL.shutdown()


def test_a_large_answer_is_built_by_a_worker_and_a_small_one_in_this_thread(
    es: Elasticsearch, settings: Settings, index_calls: Any
) -> None:
    index_calls(
        *common_word_calls(20),
        make_call("c-price", [("client", "the price is too high"), ("manager", "the deal")]),
    )
    small = _request(settings, es, "price", size=1)
    large = _request(settings, es, WORST_QUERY, size=20)
    small_bytes, large_bytes = _answer_bytes(settings, small), _answer_bytes(settings, large)
    assert small_bytes * 10 < large_bytes
    routed = settings.model_copy(
        update={"search_processes": 1, "search_worker_min_bytes": (small_bytes + large_bytes) // 2}
    )
    [worker] = start_search_workers(routed)
    try:
        # With the only worker killed, a page that needs a worker fails (and says so), and a
        # page that does not is answered as ever: it never went near the pool.
        os.kill(worker, signal.SIGKILL)
        assert _gone(worker)
        assert _from_pool(routed, small) == _in_thread(es, settings, small)
        with pytest.raises(SearchBackendError, match="a search worker stopped; try again"):
            _from_pool(routed, large)
        # The broken pool was discarded: the next large page starts a new worker, built there.
        assert _from_pool(routed, large) == _in_thread(es, settings, large)
        [restarted] = start_search_workers(routed)
        assert restarted != worker
        os.kill(restarted, signal.SIGKILL)
        assert _gone(restarted)
        assert _from_pool(routed, small) == _in_thread(es, settings, small)
        with pytest.raises(SearchBackendError, match="a search worker stopped; try again"):
            _from_pool(routed, large)
    finally:
        SEARCH_POOL.shutdown()


def test_shutdown_stops_every_worker_and_the_next_use_starts_new_ones(
    settings: Settings,
) -> None:
    pooled = settings.model_copy(update={"search_processes": 2})
    first = start_search_workers(pooled)
    assert first
    SEARCH_POOL.shutdown()
    assert all(_gone(pid, within_s=0) for pid in first)
    try:
        second = start_search_workers(pooled)
        assert second
        assert not set(second) & set(first)
    finally:
        SEARCH_POOL.shutdown()


def test_an_api_stopped_by_sigterm_stops_its_workers_and_leaks_no_semaphore(
    settings: Settings, index_calls: Any, tmp_path: Path
) -> None:
    index_calls(*common_word_calls(3))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        # Every page to a worker: the pool is running when the API stops.
        "EARSHOT_SEARCH_WORKER_MIN_BYTES": "0",
    }
    log = tmp_path / "api.log"
    server = serve(env, port, log)
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/v1/search?" + urllib.parse.urlencode({"q": "the deal"}),
            timeout=60,
        ) as answer:
            assert json.loads(answer.read())["total"] == 3
        workers = children(server.pid)
        # The search worker, and multiprocessing's resource tracker.
        assert len(workers) >= 2
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
    # uvicorn ends by raising the SIGTERM again once the lifespan is done (no exit handlers
    # run after it): the lifespan has to have stopped the pools.
    assert server.returncode == -signal.SIGTERM
    assert all(_gone(pid) for pid in workers)
    stderr = log.read_text()
    assert "leaked semaphore" not in stderr, stderr


def test_errors_are_the_same_with_search_workers_and_without(
    settings: Settings, index_calls: Any
) -> None:
    index_calls(make_call("c1", [("client", "the price is too high")]))
    answers = []
    for processes in (0, 1):
        mode = settings.model_copy(
            update={"search_processes": processes, "search_worker_min_bytes": 0}
        )
        with TestClient(create_app(mode)) as api:
            answers.append(
                [
                    # A forged cursor: refused by Elasticsearch, a 400 from the search itself.
                    api.get("/v1/search", params={"q": "price", "cursor": "WyJJbmZpbml0eSJd"}),
                    # More alternatives than Lucene expands.
                    api.get("/v1/search", params={"q": "a*", "mode": "forms"}),
                ]
            )
    for in_thread, from_worker in zip(*answers, strict=True):
        assert from_worker.status_code == in_thread.status_code
        assert from_worker.json() == in_thread.json()
    assert answers[1][0].status_code == 400


def test_an_unreachable_cluster_is_a_503_with_search_workers_too(settings: Settings) -> None:
    gone = settings.model_copy(
        update={
            "es_url": "http://127.0.0.1:9",
            "es_max_retries": 0,
            "search_processes": 1,
            "search_worker_min_bytes": 0,
        }
    )
    with TestClient(create_app(gone)) as api:
        answer = api.get("/v1/search", params={"q": "price"})
    assert answer.status_code == 503
    assert answer.json() == {"detail": "search is unavailable: Elasticsearch is unreachable"}
