"""Moving the calls alias to a new index version without a blink.

The next index (``<alias>-v<N>``, N from ``mappings/calls.json``) is built from the documents of
the index the alias points at now: each stored call is read back into the transcript contract and
turned into a document again, so derived fields (terms, word offsets) follow the current code.
Refresh is off during the load. Then counts and probe queries are compared, and only then is the
alias moved in one atomic ``_aliases`` call. If anything fails, the alias stays where it was and
the half-built index is deleted. (The test distribution has no ``_reindex`` API, so this does not
use it.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch, helpers
from pydantic import ValidationError

from indexer.documents import call_document, call_from_document
from indexer.errors import ReindexError
from indexer.index import (
    current_index,
    index_schema_version,
    put_index_template,
    schema_version,
    versioned_index_name,
)

PROBE_CALLS = 20


@dataclass(frozen=True)
class ReindexResult:
    source: str
    target: str
    documents: int


def needs_reindex(es: Elasticsearch, alias: str) -> bool:
    source = current_index(es, alias)
    return source is not None and index_schema_version(es, source) != schema_version()


def _documents(es: Elasticsearch, source: str, target: str) -> Iterator[dict[str, Any]]:
    for hit in helpers.scan(es, index=source, query={"query": {"match_all": {}}}, size=200):
        try:
            call = call_from_document(hit["_source"])
        except ValidationError as exc:
            raise ReindexError(
                f"call {hit['_id']} in {source} does not match the transcript contract: {exc}"
            ) from exc
        yield {"_index": target, "_id": hit["_id"], "_source": call_document(call)}


def _probe_queries(es: Elasticsearch, index: str) -> list[dict[str, Any]]:
    """Phrase queries taken from the data itself: the first two terms of sampled utterances."""
    sample = es.search(
        index=index, size=PROBE_CALLS, sort=["_doc"], source_includes=["utterances.terms"]
    )
    probes = []
    for hit in sample["hits"]["hits"]:
        for utterance in hit["_source"].get("utterances", [])[:1]:
            phrase = " ".join(utterance.get("terms", "").split()[:2])
            if phrase:
                probes.append(
                    {
                        "nested": {
                            "path": "utterances",
                            "query": {
                                "match_phrase": {
                                    "utterances.terms": {"query": phrase, "analyzer": "whitespace"}
                                }
                            },
                        }
                    }
                )
    return probes


def _matching_ids(es: Elasticsearch, index: str, query: dict[str, Any]) -> set[str]:
    found = es.search(index=index, query=query, size=10_000, source=False)
    return {hit["_id"] for hit in found["hits"]["hits"]}


def _verify(es: Elasticsearch, source: str, target: str) -> None:
    source_count = es.count(index=source)["count"]
    target_count = es.count(index=target)["count"]
    if source_count != target_count:
        raise ReindexError(f"{target} holds {target_count} calls, {source} holds {source_count}")
    for probe in _probe_queries(es, source):
        before, after = _matching_ids(es, source, probe), _matching_ids(es, target, probe)
        if before != after:
            raise ReindexError(
                f"probe query {probe} finds {len(before)} calls before, {len(after)} after"
            )


def reindex(es: Elasticsearch, alias: str, *, chunk_size: int = 200) -> ReindexResult:
    """Build ``<alias>-v<N>`` from the alias's current index, verify it, then move the alias."""
    source = current_index(es, alias)
    if source is None:
        raise ReindexError(
            f"alias '{alias}' does not exist: nothing to reindex (load calls instead)"
        )
    target = versioned_index_name(alias)
    if target == source:
        raise ReindexError(f"'{alias}' already points at {target}, the current schema version")
    if es.indices.exists(index=target):
        raise ReindexError(
            f"{target} exists but the alias is not on it: inspect and delete it first"
        )
    put_index_template(es, alias)
    # Settings and mappings come from the template; only refresh is held off during the load.
    es.indices.create(index=target, settings={"index": {"refresh_interval": "-1"}})
    try:
        loaded, errors = helpers.bulk(
            es, _documents(es, source, target), chunk_size=chunk_size, raise_on_error=False
        )
        if isinstance(errors, list) and errors:
            raise ReindexError(f"{len(errors)} calls were rejected by {target}; first: {errors[0]}")
        es.indices.put_settings(index=target, settings={"index": {"refresh_interval": None}})
        es.indices.refresh(index=target)
        _verify(es, source, target)
        es.indices.update_aliases(
            actions=[
                {"remove": {"index": source, "alias": alias}},
                {"add": {"index": target, "alias": alias, "is_write_index": True}},
            ]
        )
    except BaseException:
        es.options(ignore_status=404).indices.delete(index=target)
        raise
    return ReindexResult(source=source, target=target, documents=loaded)
