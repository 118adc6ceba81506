"""Running a search: a query tree and filters to an Elasticsearch query, matches back to seconds.

Elasticsearch decides which calls match (``indexer.search.compiler``). For every utterance a match
was found in, it returns the stored words; ``indexer.search.matching`` rebuilds the utterance's
positions from them with the same rules used at index time and finds each occurrence, which yields
the exact words — their character spans and their start and end seconds.

Call metrics (``indexer.metrics``) filter and sort the calls: ``talk_ratio_manager>0.7`` is a
range query on the stored ``metrics.talk_ratio_manager``; a metric sort puts calls without that
metric (e.g. no client speech) last in either direction, then orders by call id so pages never
overlap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from indexer.elastic import backend_errors
from indexer.errors import QueryError, SearchBackendError, SearchTimeoutError
from indexer.search.compiler import CompiledQuery
from indexer.search.layout import term_layout
from indexer.search.matching import occurrences
from indexer.search.query import Match
from indexer.search.request import (
    SearchRequest,
    decode_cursor,
    encode_cursor,
    search_filters,
    search_sort,
)
from indexer.search.results import CallResult, Hit, SearchResponse
from indexer.settings import Settings

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


def build_query(
    request: SearchRequest, max_hits_per_call: int
) -> tuple[dict[str, Any], dict[str, Match]]:
    """The search body, and the match each named inner hit belongs to."""
    query: dict[str, Any] = {"bool": {"filter": search_filters(request)}}
    named: dict[str, Match] = {}
    if request.tree is not None:
        compiled = CompiledQuery(
            request.tree, inner_hits={"size": max_hits_per_call, "_source": HIT_FIELDS}
        )
        query["bool"]["must"] = [compiled.query]
        named = compiled.named
    body: dict[str, Any] = {
        "query": query,
        "sort": search_sort(request.sort, request.tree is not None),
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


def _hits(match: Match, utterance: dict[str, Any], duration_s: float) -> list[Hit]:
    words = utterance["words"]
    layout = term_layout(utterance["words"], duration_s)
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


def search_whole(
    es: Elasticsearch,
    settings: Settings,
    body: dict[str, Any],
    *,
    what: str,
    advice: str,
    refused: Callable[[ApiError], QueryError | None],
) -> dict[str, Any]:
    """One search of the calls alias that is whole or nothing (for search pages and tracker
    statistics alike): a missing index is a clear SearchBackendError, a request the cluster
    refuses becomes the QueryError ``refused`` gives (or passes through), and running out of
    the time budget is a SearchTimeoutError (504) — a partial answer would be wrong, not
    approximate."""
    with backend_errors(settings.es_url):
        try:
            answer = es.search(
                index=settings.calls_alias,
                body={**body, "timeout": f"{round(settings.es_search_timeout_s * 1000)}ms"},
                allow_partial_search_results=False,
            )
        except NotFoundError as exc:
            raise SearchBackendError(
                f"the calls index '{settings.calls_alias}' does not exist yet: load transcripts "
                "first (python -m indexer load)"
            ) from exc
        except ApiError as exc:
            error = refused(exc)
            if error is not None:
                raise error from exc
            raise
    if answer.get("timed_out"):
        raise SearchTimeoutError(
            f"the {what} ran past {settings.es_search_timeout_s:g} s: {advice}"
        )
    return dict(answer)


def search_calls(es: Elasticsearch, settings: Settings, request: SearchRequest) -> SearchResponse:
    body, named = build_query(request, settings.max_hits_per_call)

    def refused(exc: ApiError) -> QueryError | None:
        if _too_many_terms(exc):
            return QueryError(
                "a prefix matches too many different words: type more letters before *"
            )
        if exc.meta.status == 400 and request.cursor is not None:
            # A forged cursor's values that do not fit the sort field (e.g. "Infinity" for a
            # date).
            return QueryError("cursor is not valid: pass next_cursor exactly as returned")
        return None

    answer = search_whole(
        es, settings, body, what="search", advice="narrow the query or filters", refused=refused
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
