"""Running a search: filters and clauses to an Elasticsearch query, matches back to seconds.

Elasticsearch decides which calls match: each clause is a nested query, so a phrase can only
match inside one utterance (of the chosen role). For every matched utterance it returns the
stored words; Python then finds each occurrence of the clause's terms among them with the same
term rules used at index time, which yields the exact words — their character spans and their
start and end seconds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from api.query import Clause
from api.schemas import CallResult, Hit, RoleFilter, SearchResponse, SortOrder
from indexer.errors import QueryError, SearchBackendError
from indexer.index import backend_errors
from indexer.settings import Settings
from indexer.text import find_phrase, terms_of_words
from indexer.transcript import Direction

TERMS_FIELD = "utterances.terms"
CALL_FIELDS = [
    "call_id",
    "started_at",
    "duration_s",
    "language",
    "direction",
    "manager",
    "client",
    "audio",
]
HIT_FIELDS = ["utterances.index", "utterances.role", "utterances.speaker", "utterances.text"]
HIT_FIELDS += ["utterances.words"]


@dataclass(frozen=True)
class SearchRequest:
    clauses: list[Clause]
    role: RoleFilter = RoleFilter.ANY
    manager_id: str | None = None
    client_id: str | None = None
    date_from: datetime | date | None = None
    date_to: datetime | date | None = None
    direction: Direction | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    sort: SortOrder = SortOrder.RELEVANCE
    size: int = 20
    cursor: str | None = None

    def fingerprint(self) -> str:
        """Identifies the query a cursor belongs to (everything but the page position)."""
        key = json.dumps(
            [
                [c.terms for c in self.clauses],
                self.role,
                self.manager_id,
                self.client_id,
                str(self.date_from),
                str(self.date_to),
                self.direction,
                self.min_duration_s,
                self.max_duration_s,
                self.sort,
            ],
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]


def _instant(value: datetime | date, *, end_of_day: bool) -> str:
    """A bound for ``started_at``; a bare date covers that whole day (UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    day = value + timedelta(days=1) if end_of_day else value
    return datetime.combine(day, time.min, tzinfo=UTC).isoformat()


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for field, value in (
        ("manager.id", request.manager_id),
        ("client.id", request.client_id),
        ("direction", request.direction),
    ):
        if value is not None:
            filters.append({"term": {field: str(value)}})
    started: dict[str, str] = {}
    if request.date_from is not None:
        started["gte"] = _instant(request.date_from, end_of_day=False)
    if request.date_to is not None:
        bound = "lte" if isinstance(request.date_to, datetime) else "lt"
        started[bound] = _instant(request.date_to, end_of_day=True)
    if started:
        filters.append({"range": {"started_at": started}})
    duration: dict[str, float] = {}
    if request.min_duration_s is not None:
        duration["gte"] = request.min_duration_s
    if request.max_duration_s is not None:
        duration["lte"] = request.max_duration_s
    if duration:
        filters.append({"range": {"duration_s": duration}})
    return filters


def _clause_query(clause: Clause, role: RoleFilter, name: str, hits: int) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "bool": {
            "must": [
                {
                    "match_phrase": {
                        TERMS_FIELD: {"query": " ".join(clause.terms), "analyzer": "whitespace"}
                    }
                }
            ]
        }
    }
    if role is not RoleFilter.ANY:
        inner["bool"]["filter"] = [{"term": {"utterances.role": role.value}}]
    return {
        "nested": {
            "path": "utterances",
            "query": inner,
            "score_mode": "sum",
            "inner_hits": {"name": name, "size": hits, "_source": HIT_FIELDS},
        }
    }


def _sort(order: SortOrder) -> list[dict[str, Any]]:
    first = {"_score": "desc"} if order is SortOrder.RELEVANCE else {"started_at": "desc"}
    return [first, {"call_id": "asc"}]


def encode_cursor(request: SearchRequest, sort_values: list[Any]) -> str:
    payload = json.dumps({"q": request.fingerprint(), "after": sort_values}).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(request: SearchRequest, cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        fingerprint, after = payload["q"], payload["after"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise QueryError("cursor is not valid: pass next_cursor exactly as returned") from exc
    if fingerprint != request.fingerprint():
        raise QueryError("cursor belongs to a different query: start again without a cursor")
    if not (isinstance(after, list) and len(after) == 2):
        raise QueryError("cursor is not valid: pass next_cursor exactly as returned")
    return after


def build_query(request: SearchRequest, max_hits_per_call: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "query": {
            "bool": {
                "filter": _filters(request),
                "must": [
                    _clause_query(clause, request.role, f"clause{i}", max_hits_per_call)
                    for i, clause in enumerate(request.clauses)
                ],
            }
        },
        "sort": _sort(request.sort),
        "size": request.size,
        "track_total_hits": True,
        "_source": CALL_FIELDS,
    }
    if request.cursor is not None:
        body["search_after"] = decode_cursor(request, request.cursor)
    return body


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow a span of whole words to its letters and digits: "contract," → "contract"."""
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def _occurrences(clause: Clause, utterance: dict[str, Any]) -> list[Hit]:
    words = utterance["words"]
    terms = terms_of_words([word["text"] for word in words])
    hits = []
    for first, last in find_phrase(terms, clause.terms):
        first_word = words[terms[first].first_word]
        last_word = words[terms[last].last_word]
        spans: list[tuple[int, int]] = []
        if first_word["char_start"] is not None and last_word["char_end"] is not None:
            spans.append(_trim(utterance["text"], first_word["char_start"], last_word["char_end"]))
        hits.append(
            Hit(
                utterance_index=utterance["index"],
                role=utterance["role"],
                speaker=utterance["speaker"],
                matched=clause.typed,
                text=utterance["text"],
                spans=spans,
                start=first_word["start"],
                end=last_word["end"],
            )
        )
    return hits


def _call_result(document: dict[str, Any], clauses: list[Clause]) -> CallResult:
    hits: list[Hit] = []
    for i, clause in enumerate(clauses):
        inner = document.get("inner_hits", {}).get(f"clause{i}", {}).get("hits", {})
        for utterance_hit in inner.get("hits", []):
            hits.extend(_occurrences(clause, utterance_hit["_source"]))
    hits.sort(key=lambda hit: (hit.start, hit.utterance_index, hit.end))
    return CallResult(**document["_source"], hits=hits)


def search_calls(es: Elasticsearch, settings: Settings, request: SearchRequest) -> SearchResponse:
    body = build_query(request, settings.max_hits_per_call)
    with backend_errors(settings.es_url):
        try:
            answer = es.search(index=settings.calls_alias, body=body)
        except NotFoundError as exc:
            raise SearchBackendError(
                f"the calls index '{settings.calls_alias}' does not exist yet: load transcripts "
                "first (python -m indexer load)"
            ) from exc
    documents = answer["hits"]["hits"]
    next_cursor = None
    if len(documents) == request.size:
        next_cursor = encode_cursor(request, documents[-1]["sort"])
    return SearchResponse(
        total=answer["hits"]["total"]["value"],
        took_ms=answer["took"],
        calls=[_call_result(document, request.clauses) for document in documents],
        next_cursor=next_cursor,
    )
