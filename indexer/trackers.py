"""Trackers: named sets of phrases that heads of sales watch across every call.

A tracker (``competitors``: "amoCRM", "Битрикс"; ``pricing``: "цена", "дорого", "скидка", said
by the client) lives in the index ``<alias>-trackers`` (``mappings/trackers.json``). Each phrase
is an exact phrase of the query language (``indexer.query``): its terms, made by the term rules
of ``indexer.text``, said one after another inside one utterance — the words as said
(``mode=exact``) or any of their forms (``mode=forms``), by the tracker's role when it has one.

Definitions, shared by the statistics and the call tags:

* A **mention** is an utterance of the tracker's role (of either role when it has none) in which
  at least one of the tracker's phrases is said. An utterance that says a phrase twice, or two
  of the phrases, is one mention: Elasticsearch's nested aggregations count utterances, not the
  occurrences inside them.
* A call **mentions** a tracker when it holds at least one mention.

Statistics (``tracker_stats``) are computed at query time from the utterances, with aggregations
from Elasticsearch's server module (composite, nested, filter, reverse_nested), so a tracker
created a minute ago already counts every call indexed before it.

Tags: each call document carries in ``trackers`` the ids of the trackers it mentions, for Kibana
(which cannot aggregate nested utterances). They are kept true from both sides: the loader tags
each call it loads (``current_tagger``, using the Python matcher ``call_matches``, which means
exactly what the Elasticsearch query means), and creating, changing or deleting a tracker
re-tags the calls whose tags must change (``retag``).

The calls index keeps its derived search fields out of ``_source``, so a partial update (the
update API) would silently drop them and leave the call unsearchable. A re-tagged call is
therefore rebuilt from its stored transcript and indexed whole, guarded by its sequence number
against a loader that replaced it in the meantime.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, helpers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from indexer.documents import call_document, call_from_document
from indexer.errors import (
    QueryError,
    SearchBackendError,
    SearchTimeoutError,
    TrackerConflictError,
    TrackerNotFoundError,
)
from indexer.es_query import NESTED_PATH, CompiledQuery, utterance_query
from indexer.index import backend_errors, ensure_index
from indexer.matching import call_matches, utterance_layout
from indexer.query import Match, Mode, Node, Or, Pattern, RoleFilter
from indexer.settings import Settings
from indexer.text import fold, terms_of_text
from indexer.transcript import Call

TRACKERS_MAPPING = "trackers.json"
TRACKER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_PHRASES = 50
MAX_PHRASE_LENGTH = 200
# A call re-tagged while a loader replaces it is read and written again, a few times at most.
RETAG_ATTEMPTS = 5
STATS_PAGE_SIZE = 500

Tagger = Callable[[Call], list[str]]


def trackers_index(alias: str) -> str:
    """Where the trackers of the calls behind ``alias`` are stored."""
    return f"{alias}-trackers"


# --- The tracker record ------------------------------------------------------------------------


class TrackerSpec(BaseModel):
    """What a user writes to define a tracker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, examples=["Competitors"])
    phrases: list[str] = Field(
        min_length=1,
        max_length=MAX_PHRASES,
        description="Exact phrases (words said one after another inside one utterance); case, "
        "punctuation and ё/е do not matter, numbers match however they were written.",
        examples=[["amoCRM", "Битрикс", "1С CRM"]],
    )
    role: RoleFilter = Field(default=RoleFilter.ANY, description="Count only what this role says.")
    mode: Mode = Field(
        default=Mode.EXACT,
        description="`exact`: the words as said; `forms`: any form of them (цена → цены, ценой).",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("name is blank")
        return name.strip()

    @field_validator("phrases")
    @classmethod
    def _searchable(cls, phrases: list[str]) -> list[str]:
        """Each phrase must hold a searchable term under the query language's term rules."""
        kept: list[str] = []
        for number, phrase in enumerate(phrases, start=1):
            text = " ".join(phrase.split())
            if len(text) > MAX_PHRASE_LENGTH:
                raise ValueError(f"phrase {number} is longer than {MAX_PHRASE_LENGTH} characters")
            if not terms_of_text(text):
                raise ValueError(
                    f"phrase {number} ({phrase!r}) has no searchable words (letters or digits)"
                )
            kept.append(text)
        return list(dict.fromkeys(kept))


class TrackerCreate(TrackerSpec):
    id: str | None = Field(
        default=None,
        pattern=TRACKER_ID_PATTERN,
        description="Lower-case letters, digits, - and _; it is the tag calls carry (Kibana "
        "shows it). Left out: made from the name, or random when the name has no Latin "
        "letters.",
        examples=["competitors"],
    )


class Tracker(TrackerSpec):
    id: str
    created_at: datetime
    updated_at: datetime


class TrackerList(BaseModel):
    trackers: list[Tracker]


def tracker_matches(tracker: TrackerSpec) -> tuple[Match, ...]:
    """One query-language match per phrase, with the tracker's role and mode."""
    return tuple(
        Match(
            Pattern(tuple(terms_of_text(phrase))),
            role=tracker.role,
            mode=tracker.mode,
            typed=phrase,
        )
        for phrase in tracker.phrases
    )


def tracker_tree(tracker: TrackerSpec) -> Node:
    """The tracker as a query tree: any of its phrases (what ``call_matches`` evaluates)."""
    found = tracker_matches(tracker)
    return found[0] if len(found) == 1 else Or(found)


def mention_query(tracker: TrackerSpec) -> dict[str, Any]:
    """The query an utterance (a nested document) satisfies when it is a mention."""
    return {
        "bool": {
            "should": [utterance_query(match) for match in tracker_matches(tracker)],
            "minimum_should_match": 1,
        }
    }


def call_query(tracker: TrackerSpec) -> dict[str, Any]:
    """The query a call satisfies when it mentions the tracker."""
    return CompiledQuery(tracker_tree(tracker)).query


# --- Storage -----------------------------------------------------------------------------------


def _ensure_trackers_index(es: Elasticsearch, alias: str) -> None:
    ensure_index(es, trackers_index(alias), TRACKERS_MAPPING)


def _tracker(source: dict[str, Any]) -> Tracker:
    return Tracker.model_validate(source)


def list_trackers(es: Elasticsearch, settings: Settings) -> list[Tracker]:
    """Every stored tracker, by id; none when the index does not exist yet."""
    with backend_errors(settings.es_url):
        try:
            found = es.search(
                index=trackers_index(settings.calls_alias),
                query={"match_all": {}},
                sort=[{"id": "asc"}],
                size=settings.max_trackers,
            )
        except NotFoundError:
            return []
    return [_tracker(hit["_source"]) for hit in found["hits"]["hits"]]


def get_tracker(es: Elasticsearch, settings: Settings, tracker_id: str) -> Tracker:
    with backend_errors(settings.es_url):
        try:
            found = es.get(index=trackers_index(settings.calls_alias), id=tracker_id)
        except NotFoundError as exc:
            raise TrackerNotFoundError(tracker_id) from exc
    return _tracker(found["_source"])


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
        _ensure_trackers_index(es, settings.calls_alias)
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


# --- Tags on call documents --------------------------------------------------------------------


def tagger(trackers: Sequence[Tracker]) -> Tagger:
    """The tags of a call: the ids of the given trackers it mentions, sorted."""
    trees = [(tracker.id, tracker_tree(tracker)) for tracker in trackers]

    def tag(call: Call) -> list[str]:
        if not trees:
            return []
        layouts = [utterance_layout(u, call.duration_s) for u in call.utterances]
        return sorted(tracker_id for tracker_id, tree in trees if call_matches(tree, call, layouts))

    return tag


def current_tagger(es: Elasticsearch, settings: Settings) -> Tagger:
    """Tags by the trackers stored now (for the loader: read once per load)."""
    return tagger(list_trackers(es, settings))


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


# --- Statistics --------------------------------------------------------------------------------


class GroupBy(StrEnum):
    MANAGER = "manager"
    TEAM = "team"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


CALENDAR_INTERVALS = {GroupBy.DAY: "1d", GroupBy.WEEK: "1w", GroupBy.MONTH: "1M"}


class Counts(BaseModel):
    calls: int = Field(description="Calls in the group (the date range applied).")
    calls_mentioning: int = Field(description="Calls with at least one mention.")
    mentions: int = Field(
        description="Utterances of the tracker's role that say at least one of its phrases."
    )
    rate: float | None = Field(description="calls_mentioning / calls; null for no calls.")


class GroupCounts(Counts):
    key: str | None = Field(
        description="Manager id, team (null: no team), or the first day of the day, week "
        "(Monday) or month, as YYYY-MM-DD in the time zone asked for."
    )
    label: str | None = Field(description="The manager's name; for other groups the key.")


class TrackerStats(BaseModel):
    tracker: Tracker
    group_by: GroupBy
    tz: str = Field(description="Time zone of the day, week and month buckets and bare dates.")
    date_from: datetime | None = Field(description="Calls started at or after this instant.")
    date_to: datetime | None = Field(description="Calls started before (a date: its end).")
    total: Counts
    groups: list[GroupCounts]


# Files of the zone database that are no zone: the server's own zone would differ between
# Python (which computes date bounds) and Elasticsearch (which computes buckets).
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_ZONES


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone that Python and Elasticsearch read the same way."""
    if name not in _zone_names():
        raise QueryError(
            f"tz: unknown time zone '{name[:64]}' (use an IANA name such as Europe/Moscow or UTC)"
        )
    return ZoneInfo(name)


def day_bounds(
    date_from: date | datetime | None, date_to: date | datetime | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None, bool]:
    """Instants for a date range: a bare date covers its whole day in ``zone``; a date-time
    without an offset is read in ``zone``. The flag says whether the end is inclusive."""

    def instant(value: date | datetime, next_day: bool) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=zone)
        day = value + timedelta(days=1) if next_day else value
        return datetime.combine(day, time.min, tzinfo=zone)

    start = None if date_from is None else instant(date_from, next_day=False)
    end = None if date_to is None else instant(date_to, next_day=True)
    return start, end, isinstance(date_to, datetime)


def _group_source(group_by: GroupBy, tz: str) -> dict[str, Any]:
    if group_by is GroupBy.MANAGER:
        return {"terms": {"field": "manager.id"}}
    if group_by is GroupBy.TEAM:
        return {"terms": {"field": "manager.team", "missing_bucket": True}}
    return {
        "date_histogram": {
            "field": "started_at",
            "calendar_interval": CALENDAR_INTERVALS[group_by],
            "time_zone": tz,
            "format": "yyyy-MM-dd",
        }
    }


def _mention_aggs(tracker: TrackerSpec) -> dict[str, Any]:
    """Mentions (utterances passing the filter) and the calls they belong to (reverse_nested)."""
    return {
        "utterances": {
            "nested": {"path": NESTED_PATH},
            "aggs": {
                "mentions": {
                    "filter": mention_query(tracker),
                    "aggs": {"calls": {"reverse_nested": {}}},
                }
            },
        }
    }


def _counts(bucket: dict[str, Any], calls: int) -> dict[str, Any]:
    mentions = bucket["utterances"]["mentions"]
    mentioning = int(mentions["calls"]["doc_count"])
    return {
        "calls": calls,
        "calls_mentioning": mentioning,
        "mentions": int(mentions["doc_count"]),
        "rate": mentioning / calls if calls else None,
    }


def tracker_stats(
    es: Elasticsearch,
    settings: Settings,
    tracker_id: str,
    group_by: GroupBy,
    *,
    date_from: date | datetime | None = None,
    date_to: date | datetime | None = None,
    tz: str = "UTC",
) -> TrackerStats:
    """Calls, calls mentioning the tracker and mentions, per group and in total."""
    tracker = get_tracker(es, settings, tracker_id)
    zone = time_zone(tz)
    start, end, end_inclusive = day_bounds(date_from, date_to, zone)
    if start and end and start > end:
        raise QueryError("date_from is after date_to")
    started: dict[str, str] = {}
    if start is not None:
        started["gte"] = start.isoformat()
    if end is not None:
        started["lte" if end_inclusive else "lt"] = end.isoformat()
    query: dict[str, Any] = {"bool": {"filter": [{"range": {"started_at": started}}]}}
    if not started:
        query = {"match_all": {}}
    group_aggs = _mention_aggs(tracker)
    if group_by is GroupBy.MANAGER:
        group_aggs["name"] = {"terms": {"field": "manager.name", "size": 1}}

    groups: list[GroupCounts] = []
    total: Counts | None = None
    for answer in _pages(es, settings, query, group_by, tz, group_aggs, tracker):
        if total is None:
            total = Counts(**_counts(answer["aggregations"], answer["hits"]["total"]["value"]))
        for bucket in answer["aggregations"]["groups"]["buckets"]:
            key = bucket["key"]["group"]
            label = key
            if group_by is GroupBy.MANAGER:
                names = bucket["name"]["buckets"]
                label = names[0]["key"] if names else None
            groups.append(
                GroupCounts(key=key, label=label, **_counts(bucket, int(bucket["doc_count"])))
            )
    assert total is not None  # the first page always comes
    return TrackerStats(
        tracker=tracker,
        group_by=group_by,
        tz=tz,
        date_from=start,
        date_to=end,
        total=total,
        groups=groups,
    )


def _pages(
    es: Elasticsearch,
    settings: Settings,
    query: dict[str, Any],
    group_by: GroupBy,
    tz: str,
    group_aggs: dict[str, Any],
    tracker: TrackerSpec,
) -> Iterator[dict[str, Any]]:
    """Every page of the composite aggregation (all groups, however many); the first page
    also carries the totals."""
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": STATS_PAGE_SIZE,
            "sources": [{"group": _group_source(group_by, tz)}],
        }
        if after is not None:
            composite["after"] = after
        aggs: dict[str, Any] = {"groups": {"composite": composite, "aggs": group_aggs}}
        if after is None:
            aggs |= _mention_aggs(tracker)
        with backend_errors(settings.es_url):
            try:
                answer = es.search(
                    index=settings.calls_alias,
                    query=query,
                    aggs=aggs,
                    size=0,
                    track_total_hits=True,
                    # Counts from part of the shards would be wrong, not approximate: refuse.
                    timeout=f"{round(settings.es_search_timeout_s * 1000)}ms",
                    allow_partial_search_results=False,
                )
            except NotFoundError as exc:
                raise SearchBackendError(
                    f"the calls index '{settings.calls_alias}' does not exist yet: load "
                    "transcripts first (python -m indexer load)"
                ) from exc
            except ApiError as exc:
                if exc.meta.status == 400:
                    raise QueryError(f"statistics request refused: {exc.message}") from exc
                raise
        if answer.get("timed_out"):
            raise SearchTimeoutError(
                f"the statistics ran past {settings.es_search_timeout_s:g} s: narrow the dates"
            )
        yield dict(answer)
        groups = answer["aggregations"]["groups"]
        after = groups.get("after_key")
        if after is None or len(groups["buckets"]) < STATS_PAGE_SIZE:
            return
