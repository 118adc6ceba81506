"""Trackers stored in their own index next to the calls: create, read, replace, delete."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from indexer.elastic import backend_errors
from indexer.errors import (
    TrackerNotFoundError,
)
from indexer.index.definitions import ensure_index
from indexer.settings import Settings
from indexer.trackers.model import Tracker

TRACKERS_MAPPING = "trackers.json"


def trackers_index(alias: str) -> str:
    """Where the trackers of the calls behind ``alias`` are stored."""
    return f"{alias}-trackers"


def ensure_trackers_index(es: Elasticsearch, alias: str) -> None:
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
