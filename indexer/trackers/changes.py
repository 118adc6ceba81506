"""Changing trackers and keeping tags true: create, replace and delete a tracker, each followed
by retagging the calls whose tags change, and repairing every call's tags after a crash mid-change.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, helpers
from pydantic import ValidationError

from indexer.elastic import backend_errors, scan_hits
from indexer.errors import (
    SearchBackendError,
    TrackerConflictError,
    TrackerNotFoundError,
)
from indexer.index.definitions import ensure_index
from indexer.index.documents import call_document, call_from_document
from indexer.search.compiler import CompiledQuery
from indexer.search.query import Node
from indexer.search.text import fold
from indexer.settings import Settings
from indexer.trackers.model import TRACKER_ID_PATTERN, Tracker, TrackerCreate, TrackerSpec
from indexer.trackers.retag_pool import RETAG_POOL, BrokenProcessPool, worker_client
from indexer.trackers.storage import (
    ensure_trackers_index,
    get_tracker,
    list_trackers,
    trackers_index,
)
from indexer.trackers.tagging import tracker_tree
from indexer.vocabulary import load_vocabulary

log = logging.getLogger("earshot.trackers")

JOBS_MAPPING = "jobs.json"

# A call re-tagged while a loader replaces it is read and written again, a few times at most.
RETAG_ATTEMPTS = 5


def _id_from_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:64].strip("-")
    return slug if re.fullmatch(TRACKER_ID_PATTERN, slug) else f"tracker-{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


REGISTRY_ID = "tracker-registry"
# Concurrent writers each retry their registry update after losing a race; this many times,
# with a short random pause, before the write is refused as too contended.
REGISTRY_ATTEMPTS = 50


def jobs_index(alias: str) -> str:
    """Where the tracker jobs and the tracker registry of the calls behind ``alias`` live."""
    return f"{alias}-jobs"


@dataclass(frozen=True)
class _Registry:
    tracker_ids: frozenset[str]
    next_version: int
    seq_no: int | None
    primary_term: int | None


def _read_registry(es: Elasticsearch, settings: Settings) -> _Registry:
    index = jobs_index(settings.calls_alias)
    try:
        found = es.get(index=index, id=REGISTRY_ID)
    except NotFoundError:
        # First write since trackers got versions: the registry starts from what is stored,
        # above every version a stored document already has.
        stored = es.search(
            index=trackers_index(settings.calls_alias),
            query={"match_all": {}},
            size=max(int(es.count(index=trackers_index(settings.calls_alias))["count"]), 1),
            version=True,
            source_includes=["id"],
        )["hits"]["hits"]
        ids = frozenset(str(hit["_id"]) for hit in stored)
        top = max((int(hit.get("_version", 0)) for hit in stored), default=0)
        return _Registry(ids, top + 1, None, None)
    source = found["_source"]
    return _Registry(
        frozenset(source.get("tracker_ids", [])),
        int(source["next_version"]),
        int(found["_seq_no"]),
        int(found["_primary_term"]),
    )


def _claim(
    es: Elasticsearch, settings: Settings, change: Callable[[frozenset[str]], frozenset[str]]
) -> int:
    """Apply ``change`` to the set of stored tracker ids in the registry, atomically (an update
    conditional on the registry's sequence number, retried after a lost race); return the
    version this write gets. ``change`` raises to refuse the write (a cap, a taken id)."""
    index = jobs_index(settings.calls_alias)
    ensure_index(es, index, JOBS_MAPPING)
    for _ in range(REGISTRY_ATTEMPTS):
        try:
            registry = _read_registry(es, settings)
        except ApiError as exc:
            # The jobs index another writer has just created: its shard starts in a moment.
            if exc.meta.status != 503:
                raise
            time.sleep(0.05)
            continue
        ids = change(registry.tracker_ids)
        document = {
            "kind": "registry",
            "tracker_ids": sorted(ids),
            "next_version": registry.next_version + 1,
            "updated_at": _now().isoformat(),
        }
        try:
            if registry.seq_no is None:
                es.index(index=index, id=REGISTRY_ID, document=document, op_type="create")
            else:
                es.index(
                    index=index,
                    id=REGISTRY_ID,
                    document=document,
                    if_seq_no=registry.seq_no,
                    if_primary_term=registry.primary_term,
                )
        except ConflictError:
            time.sleep(random.uniform(0, 0.02))
            continue
        return registry.next_version
    raise SearchBackendError("too many tracker changes at once: try again in a moment")


def _store(es: Elasticsearch, settings: Settings, tracker: Tracker) -> None:
    """Write the tracker under its version as the document's external version: a write that
    lost the race to a newer one (a later PUT, a DELETE) is refused by Elasticsearch itself."""
    try:
        es.index(
            index=trackers_index(settings.calls_alias),
            id=tracker.id,
            document=tracker.model_dump(mode="json"),
            version=tracker.version,
            version_type="external",
            refresh=True,
        )
    except ConflictError:
        log.info(
            "tracker %s version %d was overtaken by a newer write", tracker.id, tracker.version
        )


def record_create(es: Elasticsearch, settings: Settings, spec: TrackerCreate) -> Tracker:
    """Store a new tracker (its calls not yet tagged: ``retag`` or a job does that)."""
    tracker_id = spec.id or _id_from_name(spec.name)

    def add(ids: frozenset[str]) -> frozenset[str]:
        if tracker_id in ids:
            raise TrackerConflictError(
                f"a tracker with id '{tracker_id}' exists: give another id, or change that "
                "tracker with PUT"
            )
        if len(ids) >= settings.max_trackers:
            raise TrackerConflictError(
                f"there are already {settings.max_trackers} trackers (EARSHOT_MAX_TRACKERS): "
                "delete one first"
            )
        return ids | {tracker_id}

    with backend_errors(settings.es_url):
        ensure_trackers_index(es, settings.calls_alias)
        version = _claim(es, settings, add)
        now = _now()
        tracker = Tracker(
            **spec.model_dump(exclude={"id"}),
            id=tracker_id,
            created_at=now,
            updated_at=now,
            version=version,
        )
        _store(es, settings, tracker)
    return tracker


def record_replace(
    es: Elasticsearch, settings: Settings, tracker_id: str, spec: TrackerSpec
) -> Tracker:
    """Store a tracker's new definition (its calls not yet re-tagged)."""

    def keep(ids: frozenset[str]) -> frozenset[str]:
        if tracker_id not in ids:
            raise TrackerNotFoundError(tracker_id)
        return ids

    with backend_errors(settings.es_url):
        ensure_trackers_index(es, settings.calls_alias)
        version = _claim(es, settings, keep)
    try:
        created_at = get_tracker(es, settings, tracker_id).created_at
    except TrackerNotFoundError:  # its creation is not written yet
        created_at = _now()
    tracker = Tracker(
        **spec.model_dump(),
        id=tracker_id,
        created_at=created_at,
        updated_at=_now(),
        version=version,
    )
    with backend_errors(settings.es_url):
        _store(es, settings, tracker)
    return tracker


def record_delete(es: Elasticsearch, settings: Settings, tracker_id: str) -> int:
    """Remove a tracker (its tag not yet removed from the calls); return the version of the
    deletion."""

    def remove(ids: frozenset[str]) -> frozenset[str]:
        if tracker_id not in ids:
            raise TrackerNotFoundError(tracker_id)
        return ids - {tracker_id}

    with backend_errors(settings.es_url):
        ensure_trackers_index(es, settings.calls_alias)
        version = _claim(es, settings, remove)
        # External versioning leaves a tombstone: an older create written late is refused. Not
        # found: not written yet (the tombstone still counts); a conflict: already overtaken.
        with contextlib.suppress(NotFoundError, ConflictError):
            es.delete(
                index=trackers_index(settings.calls_alias),
                id=tracker_id,
                version=version,
                version_type="external",
                refresh=True,
            )
    return version


def create_tracker(es: Elasticsearch, settings: Settings, spec: TrackerCreate) -> Tracker:
    """Store a new tracker and tag every call that mentions it, before returning (the CLI and
    benchmarks; the API runs the tagging as a job)."""
    tracker = record_create(es, settings, spec)
    retag(es, settings, tracker.id)
    return tracker


def replace_tracker(
    es: Elasticsearch, settings: Settings, tracker_id: str, spec: TrackerSpec
) -> Tracker:
    """Change a tracker's definition and re-tag the calls whose tags change."""
    tracker = record_replace(es, settings, tracker_id, spec)
    retag(es, settings, tracker_id)
    return tracker


def delete_tracker(es: Elasticsearch, settings: Settings, tracker_id: str) -> None:
    """Remove a tracker and its tag from every call."""
    record_delete(es, settings, tracker_id)
    retag(es, settings, tracker_id)


class SupersededError(Exception):
    """A newer write of the tracker came while re-tagging for an older one: its own job, which
    runs after this one, makes the tags follow it."""


@dataclass
class Progress:
    """How far a re-tagging got; ``report`` is called after every batch (a job saves it, and
    may stop the run there by raising)."""

    calls_examined: int = 0
    calls_retagged: int = 0
    report: Callable[[Progress], None] | None = None


def _stored_version(es: Elasticsearch, settings: Settings, tracker_id: str) -> Tracker | None:
    try:
        return get_tracker(es, settings, tracker_id)
    except TrackerNotFoundError:
        return None


# The two kinds of candidate a re-tagging finds, as named queries: Elasticsearch says which
# one each call is, so no call is matched again in Python.
ADD, REMOVE = "earshot-tag-add", "earshot-tag-remove"


@dataclass(frozen=True)
class _Candidate:
    """A call whose tag must change, as Elasticsearch saw it: the write is conditional on
    exactly this version of the document."""

    id: str
    index: str
    seq_no: int
    primary_term: int
    tags: frozenset[str]
    wanted: bool


def _candidate_query(tracker_id: str, tree: Node | None) -> dict[str, Any]:
    has_tag = {"term": {"trackers": tracker_id}}
    if tree is None:
        return {"bool": {"filter": [has_tag], "_name": REMOVE}}
    said = CompiledQuery(tree).query
    return {
        "bool": {
            "should": [
                {"bool": {"filter": [said], "must_not": [has_tag], "_name": ADD}},
                {"bool": {"filter": [has_tag], "must_not": [said], "_name": REMOVE}},
            ],
            "minimum_should_match": 1,
        }
    }


def _candidate_batches(
    es: Elasticsearch, settings: Settings, query: dict[str, Any], only: list[str] | None
) -> Iterator[list[_Candidate]]:
    """The candidates in batches of ``bulk_chunk_size``, read as the scan goes (a tracker said
    in every call of 100k is never a list of 100k documents): each call's id, version, tags
    and which side of the query it is on."""
    if only is not None:
        query = {"bool": {"filter": [{"ids": {"values": only}}, query]}}
    batch: list[_Candidate] = []
    for hit in scan_hits(
        es,
        settings.calls_alias,
        query,
        size=settings.bulk_chunk_size,
        source=["trackers"],
        seq_no_primary_term=True,
    ):
        batch.append(
            _Candidate(
                id=str(hit["_id"]),
                index=str(hit["_index"]),
                seq_no=int(hit["_seq_no"]),
                primary_term=int(hit["_primary_term"]),
                tags=frozenset(hit["_source"].get("trackers", [])),
                wanted=ADD in hit.get("matched_queries", []),
            )
        )
        if len(batch) == settings.bulk_chunk_size:
            yield batch
            batch = []
    if batch:
        yield batch


def retag(
    es: Elasticsearch,
    settings: Settings,
    tracker_id: str,
    *,
    version: int | None = None,
    deleted: bool = False,
    progress: Progress | None = None,
) -> int:
    """Make the tag ``tracker_id`` true on every call, by the tracker stored now (removed from
    every call when there is none); return how many calls changed.

    With ``version`` (a job's), the run is for that write only — the tracker of that version,
    or its deletion (``deleted``) — and stops with SupersededError as soon as a newer write is
    stored: before every batch and once more at the end. Jobs run one after another, so the
    newer write's job then sets the tags, and the last write wins.

    Elasticsearch decides: one query finds the calls the tracker matches without the tag and
    the calls with the tag it does not match, and says which is which — the same query the
    search runs, which agrees with the Python matcher the loader tags with
    (tests/server/test_query_property.py). Each write is conditional on the version the query
    saw; a call changed meanwhile (a loader replacing it) is asked about again.
    """
    alias = settings.calls_alias
    progress = progress or Progress()
    stored = _stored_version(es, settings, tracker_id)

    def check_current() -> None:
        if version is None:
            return
        now = _stored_version(es, settings, tracker_id)
        current = now is None if deleted else now is not None and now.version == version
        if not current:
            raise SupersededError(f"tracker '{tracker_id}' changed after version {version}")

    check_current()
    tree: Node | None = (
        None if stored is None else tracker_tree(stored, load_vocabulary(es, settings))
    )
    query = _candidate_query(tracker_id, tree)
    changed = 0
    with backend_errors(settings.es_url):
        if not es.indices.exists_alias(name=alias):
            return 0  # no calls yet: the loader tags them as they come
        # Calls loaded a moment ago must be visible to the scan.
        es.indices.refresh(index=alias)
        # One batch or less is rebuilt right here: starting the worker processes would take
        # longer than the work (a change that tags a few calls answers at once).
        many = int(es.count(index=alias, query=query)["count"]) > settings.bulk_chunk_size
        pool = RETAG_POOL.executor(settings) if many else None
        only: list[str] | None = None
        for attempt in range(RETAG_ATTEMPTS):
            if attempt:
                es.indices.refresh(index=alias)  # the conflicted calls' new versions
            conflicts: list[str] = []
            in_flight: deque[tuple[int, Future[tuple[int, list[str]]]]] = deque()

            def account(
                size: int, result: tuple[int, list[str]], conflicts: list[str] = conflicts
            ) -> None:
                nonlocal changed
                done, clashed = result
                changed += done
                conflicts.extend(clashed)
                progress.calls_examined += size - len(clashed)
                progress.calls_retagged += done
                if progress.report is not None:
                    progress.report(progress)

            try:
                for batch in _candidate_batches(es, settings, query, only):
                    check_current()
                    if pool is None:
                        account(len(batch), _retag_batch(es, settings, tracker_id, batch))
                        continue
                    # One batch per worker at a time; the counts come back in order.
                    future = pool.submit(_retag_apart, settings, tracker_id, batch)
                    in_flight.append((len(batch), future))
                    if len(in_flight) >= settings.retag_processes:
                        account(*_result(in_flight.popleft()))
                while in_flight:
                    account(*_result(in_flight.popleft()))
            except BrokenProcessPool as exc:
                assert pool is not None
                RETAG_POOL.discard(pool)
                raise SearchBackendError(
                    f"re-tagging '{tracker_id}': a worker process died; run the change again"
                ) from exc
            finally:
                # A run cut short (superseded, stopped, failed) returns only when none of its
                # writes is still on the way.
                wait([future for _, future in in_flight])
            only = conflicts
            if not only:
                break
        if only:
            raise SearchBackendError(
                f"re-tagging '{tracker_id}': {len(only)} calls kept changing while being "
                "tagged; run the change again"
            )
        if changed:
            es.indices.refresh(index=alias)
    check_current()
    return changed


def _result(
    sent: tuple[int, Future[tuple[int, list[str]]]],
) -> tuple[int, tuple[int, list[str]]]:
    size, future = sent
    return size, future.result()


def _retag_apart(
    settings: Settings, tracker_id: str, batch: list[_Candidate]
) -> tuple[int, list[str]]:
    """``_retag_batch`` in a worker process of ``indexer.trackers.retag_pool``."""
    return _retag_batch(worker_client(settings), settings, tracker_id, batch)


def _retag_batch(
    es: Elasticsearch, settings: Settings, tracker_id: str, batch: list[_Candidate]
) -> tuple[int, list[str]]:
    """Tag or untag these calls; return how many changed and which changed under our feet.

    The derived fields (terms, lemmas, second tokens...) are left out of ``_source``
    (mappings/calls.json), so a partial update would drop them: each call's document is built
    again from its transcript and written whole."""
    by_id = {candidate.id: candidate for candidate in batch}
    actions = []
    conflicts: list[str] = []
    whole = es.options(request_timeout=settings.bulk_request_timeout_s)
    for doc in whole.mget(index=settings.calls_alias, ids=list(by_id))["docs"]:
        if not doc.get("found"):
            continue  # deleted meanwhile: nothing to tag
        candidate = by_id[str(doc["_id"])]
        if (doc["_seq_no"], doc["_primary_term"]) != (candidate.seq_no, candidate.primary_term):
            conflicts.append(candidate.id)  # replaced since the query saw it: ask again
            continue
        try:
            call = call_from_document(doc["_source"])
        except ValidationError as exc:
            raise SearchBackendError(
                f"call {doc['_id']} cannot be read back to re-tag it: {exc}"
            ) from exc
        new_tags = (
            candidate.tags | {tracker_id} if candidate.wanted else candidate.tags - {tracker_id}
        )
        actions.append(
            {
                "_op_type": "index",
                "_index": candidate.index,
                "_id": candidate.id,
                "if_seq_no": candidate.seq_no,
                "if_primary_term": candidate.primary_term,
                "_source": call_document(call, trackers=sorted(new_tags)),
            }
        )
    changed = 0
    for ok, result in helpers.streaming_bulk(
        # A batch of whole documents takes a while on a busy node: given the loader's time, it
        # is not timed out and sent again (which its own first write would then refuse).
        whole,
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


def retag_all(
    es: Elasticsearch,
    settings: Settings,
    *,
    progress: Progress | None = None,
    check_current: Callable[[], None] | None = None,
) -> int:
    """Re-tag every call for every tracker (after a vocabulary change: what each tracker
    matches may have changed); return how many calls changed. ``progress`` adds up over the
    trackers; ``check_current`` (a vocabulary job's) is called before each tracker and once
    more at the end, and raises SupersededError to stop when a newer change came."""
    progress = progress or Progress()
    changed = 0
    for tracker in list_trackers(es, settings):
        if check_current is not None:
            check_current()
        changed += retag(es, settings, tracker.id, progress=progress)
    if check_current is not None:
        check_current()
    return changed


def sync_tags(es: Elasticsearch, settings: Settings) -> int:
    """Make every tag true again — stored trackers and stale ids alike (after a crash in the
    middle of a change, or a load that raced with one); return how many calls changed."""
    ids = {tracker.id for tracker in list_trackers(es, settings)}
    with backend_errors(settings.es_url):
        if not es.indices.exists_alias(name=settings.calls_alias):
            return 0
    ids |= tagged_ids(es, settings)
    return sum(retag(es, settings, tracker_id) for tracker_id in sorted(ids))
