"""Changing trackers and keeping tags true: create, replace and delete a tracker, each followed
by retagging the calls whose tags change, and repairing every call's tags after a crash mid-change.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError, helpers
from pydantic import ValidationError

from indexer.elastic import backend_errors
from indexer.errors import (
    SearchBackendError,
    TrackerConflictError,
    TrackerNotFoundError,
)
from indexer.index.documents import call_document, call_from_document
from indexer.search.compiler import CompiledQuery
from indexer.search.matching import call_matches
from indexer.search.query import Node
from indexer.search.text import fold
from indexer.settings import Settings
from indexer.trackers.model import TRACKER_ID_PATTERN, Tracker, TrackerCreate, TrackerSpec
from indexer.trackers.storage import (
    ensure_trackers_index,
    get_tracker,
    list_trackers,
    trackers_index,
)
from indexer.trackers.tagging import tracker_tree

# A call re-tagged while a loader replaces it is read and written again, a few times at most.
RETAG_ATTEMPTS = 5


def _id_from_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:64].strip("-")
    return slug if re.fullmatch(TRACKER_ID_PATTERN, slug) else f"tracker-{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def create_tracker(es: Elasticsearch, settings: Settings, spec: TrackerCreate) -> Tracker:
    """Store a new tracker and tag every call that mentions it."""
    tracker_id = spec.id or _id_from_name(spec.name)
    now = _now()
    tracker = Tracker(
        **spec.model_dump(exclude={"id"}), id=tracker_id, created_at=now, updated_at=now
    )
    with backend_errors(settings.es_url):
        ensure_trackers_index(es, settings.calls_alias)
        index = trackers_index(settings.calls_alias)
        if es.count(index=index)["count"] >= settings.max_trackers:
            raise TrackerConflictError(
                f"there are already {settings.max_trackers} trackers (EARSHOT_MAX_TRACKERS): "
                "delete one first"
            )
        try:
            es.index(
                index=index,
                id=tracker_id,
                document=tracker.model_dump(mode="json"),
                op_type="create",
                refresh=True,
            )
        except ConflictError as exc:
            raise TrackerConflictError(
                f"a tracker with id '{tracker_id}' exists: give another id, or change that "
                "tracker with PUT"
            ) from exc
    retag(es, settings, tracker_id)
    return tracker


def replace_tracker(
    es: Elasticsearch, settings: Settings, tracker_id: str, spec: TrackerSpec
) -> Tracker:
    """Change a tracker's definition and re-tag the calls whose tags change."""
    old = get_tracker(es, settings, tracker_id)
    tracker = Tracker(
        **spec.model_dump(), id=tracker_id, created_at=old.created_at, updated_at=_now()
    )
    with backend_errors(settings.es_url):
        es.index(
            index=trackers_index(settings.calls_alias),
            id=tracker_id,
            document=tracker.model_dump(mode="json"),
            refresh=True,
        )
    retag(es, settings, tracker_id)
    return tracker


def delete_tracker(es: Elasticsearch, settings: Settings, tracker_id: str) -> None:
    """Remove a tracker and its tag from every call."""
    with backend_errors(settings.es_url):
        try:
            es.delete(index=trackers_index(settings.calls_alias), id=tracker_id, refresh=True)
        except NotFoundError as exc:
            raise TrackerNotFoundError(tracker_id) from exc
    retag(es, settings, tracker_id)


def retag(es: Elasticsearch, settings: Settings, tracker_id: str) -> int:
    """Make the tag ``tracker_id`` true on every call, by the tracker stored now (removed from
    every call when there is none); return how many calls changed.

    Elasticsearch finds the candidates — calls the tracker matches without the tag, and calls
    with the tag it does not match — and each is decided again by ``call_matches`` on the
    transcript, the same way the loader decides, before it is written.
    """
    alias = settings.calls_alias
    try:
        tree: Node | None = tracker_tree(get_tracker(es, settings, tracker_id))
    except TrackerNotFoundError:
        tree = None
    has_tag = {"term": {"trackers": tracker_id}}
    if tree is None:
        candidates: dict[str, Any] = has_tag
    else:
        said = CompiledQuery(tree).query
        candidates = {
            "bool": {
                "should": [
                    {"bool": {"must": [said], "must_not": [has_tag]}},
                    {"bool": {"filter": [has_tag], "must_not": [said]}},
                ],
                "minimum_should_match": 1,
            }
        }
    changed = 0
    with backend_errors(settings.es_url):
        if not es.indices.exists_alias(name=alias):
            return 0  # no calls yet: the loader tags them as they come
        # Calls loaded a moment ago must be visible to the scan.
        es.indices.refresh(index=alias)
        pending = [
            hit["_id"]
            for hit in helpers.scan(es, index=alias, query={"query": candidates}, _source=False)
        ]
        for _ in range(RETAG_ATTEMPTS):
            if not pending:
                break
            conflicts: list[str] = []
            for start in range(0, len(pending), settings.bulk_chunk_size):
                batch = pending[start : start + settings.bulk_chunk_size]
                done, clashed = _retag_batch(es, settings, tracker_id, tree, batch)
                changed += done
                conflicts += clashed
            pending = conflicts
        if pending:
            raise SearchBackendError(
                f"re-tagging '{tracker_id}': {len(pending)} calls kept changing while being "
                "tagged; run the change again"
            )
        if changed:
            es.indices.refresh(index=alias)
    return changed


def _retag_batch(
    es: Elasticsearch, settings: Settings, tracker_id: str, tree: Node | None, ids: list[str]
) -> tuple[int, list[str]]:
    """Tag or untag these calls; return how many changed and which changed under our feet."""
    actions = []
    for doc in es.mget(index=settings.calls_alias, ids=ids)["docs"]:
        if not doc.get("found"):
            continue  # deleted meanwhile: nothing to tag
        source = doc["_source"]
        try:
            call = call_from_document(source)
        except ValidationError as exc:
            raise SearchBackendError(
                f"call {doc['_id']} cannot be read back to re-tag it: {exc}"
            ) from exc
        tags = set(source.get("trackers", []))
        wanted = tree is not None and call_matches(tree, call)
        new_tags = tags | {tracker_id} if wanted else tags - {tracker_id}
        if new_tags == tags:
            continue
        actions.append(
            {
                "_op_type": "index",
                "_index": doc["_index"],
                "_id": doc["_id"],
                "if_seq_no": doc["_seq_no"],
                "if_primary_term": doc["_primary_term"],
                "_source": call_document(call, trackers=sorted(new_tags)),
            }
        )
    changed, conflicts = 0, []
    for ok, result in helpers.streaming_bulk(
        es,
        actions,
        max_retries=settings.es_max_retries,
        raise_on_error=False,
        raise_on_exception=True,
    ):
        item = result.get("index", {})
        if ok:
            changed += 1
        elif item.get("status") == 409:
            conflicts.append(str(item["_id"]))
        else:
            raise SearchBackendError(
                f"re-tagging call {item.get('_id')} failed: {item.get('error')}"
            )
    return changed, conflicts


def tagged_ids(es: Elasticsearch, settings: Settings) -> set[str]:
    """Every tracker id some call carries (stale ones included)."""
    with backend_errors(settings.es_url):
        found = es.search(
            index=settings.calls_alias,
            size=0,
            aggs={"ids": {"terms": {"field": "trackers", "size": 10 * settings.max_trackers}}},
        )
    return {bucket["key"] for bucket in found["aggregations"]["ids"]["buckets"]}


def sync_tags(es: Elasticsearch, settings: Settings) -> int:
    """Make every tag true again — stored trackers and stale ids alike (after a crash in the
    middle of a change, or a load that raced with one); return how many calls changed."""
    ids = {tracker.id for tracker in list_trackers(es, settings)}
    with backend_errors(settings.es_url):
        if not es.indices.exists_alias(name=settings.calls_alias):
            return 0
    ids |= tagged_ids(es, settings)
    return sum(retag(es, settings, tracker_id) for tracker_id in sorted(ids))
