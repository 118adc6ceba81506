"""Search pages built in worker processes (indexer/search/workers.py) and hits rebuilt only as
far as a page shows them (indexer/search/runner.py ``_call_result``): the same answers as a
search in the request's own thread that rebuilds every returned utterance."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

import pytest
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.search import search_request
from bench.hostile import WORST_QUERY, common_word_calls
from indexer.search import Mode, RoleFilter, SearchRequest
from indexer.search.query import Match
from indexer.search.results import CallResult, Hit
from indexer.search.runner import _hits, build_query, distinct_hits, search_calls
from indexer.search.workers import search_page_json, start_search_workers
from indexer.settings import Settings

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
    parsed = search_request(settings, es, q=q, role=RoleFilter.ANY, mode=Mode.EXACT)
    return replace(parsed, size=size)


def _every_utterance_rebuilt(
    document: dict[str, Any], named: dict[str, Match], max_hits: int
) -> list[Hit]:
    """The hits of a call as they were made before pruning: every match in every returned
    utterance, then ``distinct_hits``."""
    hits: list[Hit] = []
    duration_s = document["_source"]["duration_s"]
    for name, match in named.items():
        inner = document.get("inner_hits", {}).get(name, {}).get("hits", {})
        for utterance_hit in inner.get("hits", []):
            hits.extend(_hits(match, utterance_hit["_source"], duration_s))
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


def test_a_page_from_a_worker_is_the_page_searched_in_this_thread(
    es: Elasticsearch, settings: Settings, index_calls: Any
) -> None:
    index_calls(
        *common_word_calls(5),
        make_call("c-price", [("client", "the price is too high"), ("manager", "the deal")]),
    )
    pooled = settings.model_copy(update={"search_processes": 1})
    workers = start_search_workers(pooled)
    assert workers
    assert os.getpid() not in workers
    for q in QUERIES:
        request = _request(settings, es, q, size=20)
        in_thread = search_calls(es, settings, request).model_dump(mode="json")
        from_worker = json.loads(search_page_json(es, pooled, request))
        for page in (in_thread, from_worker):
            page.pop("took_ms")
        assert from_worker == in_thread, q
        assert CallResult.model_validate(from_worker["calls"][0]).hits


def test_errors_from_a_worker_are_the_errors_of_a_search_in_this_thread(
    settings: Settings, index_calls: Any
) -> None:
    index_calls(make_call("c1", [("client", "the price is too high")]))
    answers = []
    for processes in (0, 1):
        mode = settings.model_copy(update={"search_processes": processes})
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


def test_an_unreachable_cluster_is_a_503_from_a_worker_too(settings: Settings) -> None:
    gone = settings.model_copy(
        update={"es_url": "http://127.0.0.1:9", "es_max_retries": 0, "search_processes": 1}
    )
    with TestClient(create_app(gone)) as api:
        answer = api.get("/v1/search", params={"q": "price"})
    assert answer.status_code == 503
    assert answer.json() == {"detail": "search is unavailable: Elasticsearch is unreachable"}
