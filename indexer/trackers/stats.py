"""Trackers: named sets of phrases that heads of sales watch across every call.

A tracker (``competitors``: "amoCRM", "Битрикс"; ``pricing``: "цена", "дорого", "скидка", said by
the client) lives in the index ``<alias>-trackers`` (``mappings/trackers.json``). Each phrase is an
exact phrase of the query language (``indexer.search.query``): its terms, made by the term rules of
``indexer.search.text``, said one after another inside one utterance — the words as said
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

import logging
from collections.abc import Iterator
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from elasticsearch import ApiError, Elasticsearch
from pydantic import BaseModel, Field

from indexer.errors import (
    QueryError,
)
from indexer.search.compiler import NESTED_PATH
from indexer.search.request import date_range, day_bounds
from indexer.search.runner import search_whole
from indexer.settings import Settings
from indexer.trackers.model import Tracker, TrackerSpec
from indexer.trackers.storage import get_tracker
from indexer.trackers.tagging import mention_query
from indexer.vocabulary import Vocabulary, load_vocabulary

log = logging.getLogger("earshot.trackers")

STATS_PAGE_SIZE = 500


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


def _mention_aggs(tracker: TrackerSpec, vocabulary: Vocabulary) -> dict[str, Any]:
    """Mentions (utterances passing the filter) and the calls they belong to (reverse_nested)."""
    return {
        "utterances": {
            "nested": {"path": NESTED_PATH},
            "aggs": {
                "mentions": {
                    "filter": mention_query(tracker, vocabulary),
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
    start, end, _ = day_bounds(date_from, date_to, zone)
    if start and end and start > end:
        raise QueryError("date_from is after date_to")
    started = date_range(date_from, date_to, zone)
    query: dict[str, Any] = {"bool": {"filter": [{"range": {"started_at": started}}]}}
    if not started:
        query = {"match_all": {}}
    vocabulary = load_vocabulary(es, settings)
    group_aggs = _mention_aggs(tracker, vocabulary)
    if group_by is GroupBy.MANAGER:
        group_aggs["name"] = {"terms": {"field": "manager.name", "size": 1}}

    groups: list[GroupCounts] = []
    total: Counts | None = None
    for answer in _pages(es, settings, query, group_by, tz, group_aggs, tracker, vocabulary):
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


def _refused(exc: ApiError) -> QueryError | None:
    if exc.meta.status == 400:
        # The cluster's reason names its exception types: for the log, not the client.
        log.warning("statistics request refused: %s", exc.message)
        return QueryError("statistics request refused: check date_from, date_to and tz")
    return None


def _pages(
    es: Elasticsearch,
    settings: Settings,
    query: dict[str, Any],
    group_by: GroupBy,
    tz: str,
    group_aggs: dict[str, Any],
    tracker: TrackerSpec,
    vocabulary: Vocabulary,
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
            aggs |= _mention_aggs(tracker, vocabulary)
        answer = search_whole(
            es,
            settings,
            {"query": query, "aggs": aggs, "size": 0, "track_total_hits": True},
            what="statistics",
            advice="narrow the dates",
            refused=_refused,
        )
        yield answer
        groups = answer["aggregations"]["groups"]
        after = groups.get("after_key")
        if after is None or len(groups["buckets"]) < STATS_PAGE_SIZE:
            return
