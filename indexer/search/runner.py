"""Running a search: a query tree and filters to an Elasticsearch query, matches back to seconds.

Elasticsearch decides which calls match (``indexer.search.compiler``). For every utterance a match
was found in, it returns the stored words; ``indexer.search.matching`` rebuilds the utterance's
positions from them with the same rules used at index time and finds each occurrence, which yields
the exact words — their character spans and their start and end seconds.

Call metrics (``indexer.metrics``) filter and sort the calls: ``talk_ratio_manager>0.7`` is a
range query on the stored ``metrics.talk_ratio_manager``; a metric sort puts calls without that
metric (e.g. no client speech) last in either direction, then orders by call id so pages never
overlap.

A query's vocabulary terms (``indexer.vocabulary``) are expanded here, and the stored terms are
read in the same request as the page (one ``_msearch``: the terms, then the page): the query
is expanded with the vocabulary last built, and when the terms read with the page are not the
ones it was built from, the page is searched again with the vocabulary of the terms just read.
So a term written a moment ago, by any process, counts in the next search, as when the terms
were read first, without a round trip of their own on every search.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any, NoReturn, TypeVar

import elastic_transport
from elastic_transport import ApiResponseMeta
from elasticsearch import ApiError, Elasticsearch, NotFoundError

from indexer.elastic import (
    api_error,
    backend_errors,
    decode_answer,
    decode_error_body,
    describe,
    index_path,
    json_request,
)
from indexer.errors import QueryError, SearchBackendError, SearchTimeoutError
from indexer.search.compiler import CompiledQuery
from indexer.search.layout import TermLayout, stored_layouts
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
from indexer.vocabulary import (
    TERMS_SEARCH,
    Vocabulary,
    last_built,
    load_vocabulary,
    stored_terms_of,
    vocabulary_index,
    vocabulary_of,
)

log = logging.getLogger("earshot.search")
T = TypeVar("T")

# The shortest wait given to the client: a budget nearly spent still sends the request once.
MIN_WAIT_S = 0.001
CANCEL_TIMEOUT_S = 5.0

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


# What a hit is rebuilt from: of each word, what the layout and the hit read (not its score,
# ~15 % of a word's bytes, which every page would fetch and decode for nothing).
HIT_FIELDS = [
    "utterances.index",
    "utterances.role",
    "utterances.speaker",
    "utterances.text",
    *(f"utterances.words.{field}" for field in ("text", "start", "end", "char_start", "char_end")),
]


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


def _hits(match: Match, utterance: dict[str, Any], layout: TermLayout) -> list[Hit]:
    words = utterance["words"]
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


def distinct_hits(hits: list[Hit], max_hits: int) -> list[Hit]:
    """The one rule for a call's hits: each matched span once (two parts of a query that
    match the same words — ``цена`` and ``цен*`` — give one hit, the first in query order),
    in time order, at most ``max_hits`` of them."""
    if len(hits) <= 1:  # an utterance's hits, most often: nothing to merge or order
        return hits[:max_hits]
    seen: dict[tuple[int, tuple[tuple[int, int], ...], float, float], Hit] = {}
    for hit in hits:
        seen.setdefault((hit.utterance_index, tuple(hit.spans), hit.start, hit.end), hit)
    ordered = sorted(
        seen.values(), key=lambda hit: (hit.start, hit.utterance_index, hit.end, hit.spans)
    )
    return ordered[:max_hits]


_start = itemgetter("start")


def _earliest_start(utterance: dict[str, Any]) -> float:
    """No hit in the utterance starts before this: a hit starts where one of its words does."""
    return min(map(_start, utterance["words"]), default=math.inf)


def _call_result(document: dict[str, Any], named: dict[str, Match], max_hits: int) -> CallResult:
    """The call with its hits: ``distinct_hits`` of every match in every utterance Elasticsearch
    returned, rebuilt only as far as the answer needs. Utterances are taken by the start of
    their earliest word; once ``max_hits`` hits start before the next utterance's earliest
    word, nothing from there on could be among the first ``max_hits`` (a repeated common word
    otherwise rebuilds every returned utterance of every call for the few it shows)."""
    duration_s = document["_source"]["duration_s"]
    inner_hits = document.get("inner_hits", {})
    # Each returned utterance once, with the matches it was returned for in query order (the
    # order in which distinct_hits keeps the first of two hits on the same words).
    returned: dict[int, tuple[dict[str, Any], list[Match]]] = {}
    for name, match in named.items():
        for utterance_hit in inner_hits.get(name, {}).get("hits", {}).get("hits", []):
            utterance = utterance_hit["_source"]
            returned.setdefault(utterance["index"], (utterance, []))[1].append(match)
    if not returned:  # a page without a query (or a call found by NOT alone): no hit
        return CallResult(**document["_source"], hits=[])
    ordered = sorted(
        (_earliest_start(utterance), index, utterance, matches)
        for index, (utterance, matches) in returned.items()
    )
    # All laid out at once, as a call is at index time (``stored_layouts``): most are rebuilt.
    layouts = stored_layouts([entry[2]["words"] for entry in ordered], duration_s)
    hits: list[Hit] = []
    for (earliest, _, utterance, matches), layout in zip(ordered, layouts, strict=True):
        if len(hits) >= max_hits and earliest > sorted(hit.start for hit in hits)[max_hits - 1]:
            break
        found: list[Hit] = []
        for match in matches:
            found.extend(_hits(match, utterance, layout))
        # Hits of different utterances are never the same hit: each one's own are made distinct.
        hits.extend(distinct_hits(found, max_hits))
    return CallResult(**document["_source"], hits=distinct_hits(hits, max_hits))


class Deadline:
    """The time budget of one search page (``es_search_timeout_s``), from the moment it
    starts: what Elasticsearch is given, how long the client waits for it, and a check for the
    Python work after it. Its ``opaque_id`` tags the search task in Elasticsearch, so a search
    the client gave up on can be found and cancelled there."""

    def __init__(
        self, settings: Settings, *, ends_at: float | None = None, opaque_id: str | None = None
    ) -> None:
        self.budget_s = settings.es_search_timeout_s
        # ``ends_at`` carries a deadline into a search worker process: ``time.monotonic`` is
        # the system's monotonic clock, the same in every process of the machine.
        self.ends_at = time.monotonic() + self.budget_s if ends_at is None else ends_at
        # The alias leads, so one instance's (or one test's) tasks can be told apart.
        self.opaque_id = opaque_id or f"earshot:{settings.calls_alias}:{uuid.uuid4().hex}"

    def left_s(self) -> float:
        return self.ends_at - time.monotonic()

    def exceeded(self, what: str, advice: str) -> SearchTimeoutError:
        """The error of a search that ran past its budget, wherever that was found (the
        client's wait, Elasticsearch's ``timed_out``, the Python work after it, a worker)."""
        return SearchTimeoutError(f"the {what} ran past {self.budget_s:g} s: {advice}")

    def check(self, what: str, advice: str) -> None:
        if self.left_s() <= 0:
            raise self.exceeded(what, advice)


def cancel_tasks(es: Elasticsearch, opaque_id: str) -> int:
    """Cancel every Elasticsearch task started under ``opaque_id`` (a search the client gave
    up on keeps running there otherwise); return how many were asked to stop."""
    cancelled = 0
    client = es.options(request_timeout=CANCEL_TIMEOUT_S)
    try:
        listing = client.tasks.list(actions="*search*", detailed=True)
        for node in listing.get("nodes", {}).values():
            for task_id, task in node.get("tasks", {}).items():
                if task.get("headers", {}).get("X-Opaque-Id") == opaque_id and not task.get(
                    "parent_task_id"
                ):
                    client.tasks.cancel(task_id=task_id)
                    cancelled += 1
    except (elastic_transport.TransportError, ApiError) as exc:
        # The answer (a 504) does not depend on this; Elasticsearch's own timeout still ends
        # the task, later.
        log.warning("could not cancel search task %s: %s", opaque_id, describe(exc))
    return cancelled


SEARCH_ADVICE = "narrow the query or filters"


def cancel_in_background(es: Elasticsearch, opaque_id: str) -> None:
    # The 504 goes out at once; the cancel follows on its own thread.
    threading.Thread(
        target=cancel_tasks, args=(es, opaque_id), name="cancel-search", daemon=True
    ).start()


def _refusal(
    exc: ApiError, settings: Settings, refused: Callable[[ApiError], QueryError | None]
) -> Exception:
    """What a search of the calls alias that Elasticsearch refused raises: a missing index is
    a clear SearchBackendError, ``refused`` may name a QueryError; else the error itself."""
    decode_error_body(exc)
    if isinstance(exc, NotFoundError):
        return SearchBackendError(
            f"the calls index '{settings.calls_alias}' does not exist yet: load transcripts "
            "first (python -m indexer load)"
        )
    return refused(exc) or exc


def _send(
    es: Elasticsearch,
    settings: Settings,
    body: dict[str, Any],
    *,
    what: str,
    advice: str,
    refused: Callable[[ApiError], QueryError | None],
    deadline: Deadline,
    terms_first: bool = False,
) -> tuple[Any, ApiResponseMeta]:
    """One search of the calls alias under the deadline; its answer's body (the bytes of a
    large answer from a ``LargeAnswersUndecoded`` client, else the decoded JSON) and meta.
    With ``terms_first``, one ``_msearch`` of the stored vocabulary terms and then the search:
    its answer holds both (``page_part``)."""
    deadline.check(what, advice)
    left_s = max(deadline.left_s(), MIN_WAIT_S)
    timed = {**body, "timeout": f"{max(1, round(left_s * 1000))}ms"}
    try:
        with backend_errors(settings.es_url):
            try:
                if terms_first:
                    # Sent to the calls alias's own path, as the search alone is (the page's
                    # search is of the path's index; the terms name theirs).
                    answer = json_request(
                        es,
                        "POST",
                        index_path(settings.calls_alias, "_msearch"),
                        body=[
                            # None stored yet: no index, and no hits rather than an error.
                            {
                                "index": vocabulary_index(settings.calls_alias),
                                "ignore_unavailable": True,
                            },
                            TERMS_SEARCH,
                            {"allow_partial_search_results": False},
                            timed,
                        ],
                        request_timeout=left_s,
                        opaque_id=deadline.opaque_id,
                        ndjson=True,
                    )
                else:
                    # The request ``es.search(index=..., body=..., allow_partial_search_results=
                    # False)`` sends, without the client's API layer (``json_request``).
                    answer = json_request(
                        es,
                        "POST",
                        index_path(settings.calls_alias, "_search")
                        + "?allow_partial_search_results=false",
                        body=timed,
                        request_timeout=left_s,
                        opaque_id=deadline.opaque_id,
                    )
            except ApiError as exc:
                raise _refusal(exc, settings, refused) from exc
    except SearchTimeoutError as exc:
        cancel_in_background(es, deadline.opaque_id)
        raise deadline.exceeded(what, advice) from exc
    return answer.body, answer.meta


def _whole(answer: dict[str, Any], deadline: Deadline, *, what: str, advice: str) -> None:
    if answer.get("timed_out"):
        raise deadline.exceeded(what, advice)


def search_whole(
    es: Elasticsearch,
    settings: Settings,
    body: dict[str, Any],
    *,
    what: str,
    advice: str,
    refused: Callable[[ApiError], QueryError | None],
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """One search of the calls alias that is whole or nothing (for search pages and tracker
    statistics alike): a missing index is a clear SearchBackendError, a request the cluster
    refuses becomes the QueryError ``refused`` gives (or passes through), and running out of
    the time budget is a SearchTimeoutError (504) — a partial answer would be wrong, not
    approximate.

    The budget is a real deadline: Elasticsearch's ``timeout`` is best effort (a shard checks it
    now and then), so the client also stops waiting when the budget is spent, and then cancels
    the task in Elasticsearch (found by its ``X-Opaque-Id``)."""
    deadline = deadline or Deadline(settings)
    answer, _ = _send(
        es, settings, body, what=what, advice=advice, refused=refused, deadline=deadline
    )
    _whole(answer, deadline, what=what, advice=advice)
    return dict(answer)


@dataclass(frozen=True)
class PagePlan:
    """A page search about to be sent: the request with its query's vocabulary terms expanded,
    its body and named matches (``build_query``), and the stored vocabulary terms the query was
    expanded with when the search reads them again to compare (``None``: no query, or the
    terms were just read)."""

    request: SearchRequest
    body: dict[str, Any]
    named: dict[str, Match]
    assumed_terms: list[dict[str, Any]] | None


@dataclass(frozen=True)
class StaleVocabulary:
    """The stored vocabulary terms read with a page are not those its query was expanded
    with: the page is to be searched again with the vocabulary of these."""

    stored: list[dict[str, Any]]


def plan_of(
    settings: Settings, expanded: SearchRequest, assumed_terms: list[dict[str, Any]] | None
) -> PagePlan:
    body, named = build_query(expanded, settings.max_hits_per_call)
    return PagePlan(expanded, body, named, assumed_terms)


def _expanded(request: SearchRequest, vocabulary: Vocabulary) -> SearchRequest:
    if request.tree is None:
        return request
    return replace(request, tree=vocabulary.expand(request.tree))


def plan_page(es: Elasticsearch, settings: Settings, request: SearchRequest) -> PagePlan:
    """The page search of ``request`` (its query as typed), expanded with the vocabulary last
    built, to be compared with the terms read with the page."""
    if request.tree is None:
        return plan_of(settings, request, None)
    stored, vocabulary = last_built(settings)
    try:
        return plan_of(settings, _expanded(request, vocabulary), stored)
    except QueryError:
        # Refused under the vocabulary last built (too many spellings; a cursor of another
        # expansion): that vocabulary may be stale, so the stored terms decide, read first.
        return plan_of(settings, _expanded(request, load_vocabulary(es, settings)), None)


def _page_refusal(request: SearchRequest) -> Callable[[ApiError], QueryError | None]:
    def refused(exc: ApiError) -> QueryError | None:
        if _too_many_terms(exc):
            return QueryError(
                "the query expands to too many alternatives: type more letters before *, "
                "or put fewer numbers or variants into one phrase"
            )
        if exc.meta.status == 400 and request.cursor is not None:
            # A forged cursor's values that do not fit the sort field (e.g. "Infinity" for a
            # date).
            return QueryError("cursor is not valid: pass next_cursor exactly as returned")
        return None

    return refused


def send_page_search(
    es: Elasticsearch, settings: Settings, plan: PagePlan, deadline: Deadline
) -> tuple[Any, ApiResponseMeta]:
    """The search of one page, whole or nothing as ``search_whole``: its answer, decoded, or
    its bytes from a ``LargeAnswersUndecoded`` client (``page_part`` takes the page out),
    and the answer's meta. With the stored vocabulary terms first when the plan compares them."""
    return _send(
        es,
        settings,
        plan.body,
        what="search",
        advice=SEARCH_ADVICE,
        refused=_page_refusal(plan.request),
        deadline=deadline,
        terms_first=plan.assumed_terms is not None,
    )


def page_part(answer: dict[str, Any], plan: PagePlan) -> tuple[str, Any]:
    """What a decoded answer of ``send_page_search`` holds: ``("page", its answer)``,
    ``("refused", the failed search's item)`` of an ``_msearch``, or ``("stale",
    StaleVocabulary)`` when the terms read with it are not those the plan assumed."""
    if plan.assumed_terms is None:
        return "page", answer
    terms, page = answer["responses"]
    if "error" in terms:
        return "refused", terms
    stored = stored_terms_of(terms)
    # Before the page's own error: a page refused under a stale vocabulary (too many
    # spellings) may be searched under the fresh one.
    if stored != plan.assumed_terms:
        return "stale", StaleVocabulary(stored)
    if "error" in page:
        return "refused", page
    return "page", page


def raise_refused(
    item: dict[str, Any], meta: ApiResponseMeta, settings: Settings, plan: PagePlan
) -> NoReturn:
    """Raise the error of one failed search of an ``_msearch`` as that search alone raises it
    (``_send``)."""
    exc = api_error(replace(meta, status=item.get("status", 500)), item)
    with backend_errors(settings.es_url):
        raise _refusal(exc, settings, _page_refusal(plan.request)) from exc


def searched(
    es: Elasticsearch,
    settings: Settings,
    request: SearchRequest,
    deadline: Deadline,
    build: Callable[[Any, ApiResponseMeta, PagePlan], T | StaleVocabulary],
    vocabulary: Vocabulary | None = None,
) -> T:
    """``build``'s page of ``request`` (its query as typed): planned, sent, and sent again with
    the vocabulary just read when ``build`` finds the one assumed stale (at most once: that
    search compares nothing). With ``vocabulary``, expanded with it and no terms read."""
    plan = (
        plan_page(es, settings, request)
        if vocabulary is None
        else plan_of(settings, _expanded(request, vocabulary), None)
    )
    built = build(*send_page_search(es, settings, plan, deadline), plan)
    if isinstance(built, StaleVocabulary):
        plan = plan_of(settings, _expanded(request, vocabulary_of(settings, built.stored)), None)
        built = build(*send_page_search(es, settings, plan, deadline), plan)
        assert not isinstance(built, StaleVocabulary)
    return built


def page_of(
    answer: dict[str, Any],
    settings: Settings,
    request: SearchRequest,
    named: dict[str, Match],
    deadline: Deadline,
) -> SearchResponse:
    """The page of a search's decoded answer: its calls, each with its hits."""
    _whole(answer, deadline, what="search", advice=SEARCH_ADVICE)
    documents = answer["hits"]["hits"]
    next_cursor = None
    if len(documents) == request.size:
        next_cursor = encode_cursor(request, documents[-1]["sort"])
    calls = []
    for document in documents:
        # Rebuilding hits is Python work on every matched utterance: it counts against the
        # same budget, checked call by call.
        deadline.check("search", SEARCH_ADVICE)
        calls.append(_call_result(document, named, settings.max_hits_per_call))
    return SearchResponse(
        total=answer["hits"]["total"]["value"],
        took_ms=answer["took"],
        calls=calls,
        next_cursor=next_cursor,
    )


def search_calls(
    es: Elasticsearch,
    settings: Settings,
    request: SearchRequest,
    deadline: Deadline | None = None,
    vocabulary: Vocabulary | None = None,
) -> SearchResponse:
    """One page of calls of ``request`` (its query as typed), searched and built in this
    thread; its vocabulary terms expanded with ``vocabulary`` when given (every page of an
    export the same query), else with the stored terms read with the page."""
    deadline = deadline or Deadline(settings)

    def build(
        answer: Any, meta: ApiResponseMeta, plan: PagePlan
    ) -> SearchResponse | StaleVocabulary:
        kind, part = page_part(decode_answer(answer) if isinstance(answer, bytes) else answer, plan)
        if kind == "refused":
            raise_refused(part, meta, settings, plan)
        if kind == "stale":
            assert isinstance(part, StaleVocabulary)
            return part
        return page_of(part, settings, plan.request, plan.named, deadline)

    return searched(es, settings, request, deadline, build, vocabulary)


def _too_many_terms(exc: ApiError) -> bool:
    """Lucene refuses a prefix that expands to more terms than it allows (16384 in 9.x); the
    search then fails as a whole, with a 500."""
    text = json.dumps(exc.body, default=str) if exc.body is not None else str(exc)
    return any(
        reason in text
        for reason in ("expanded to too many terms", "too_many_clauses", "too many clauses")
    )
