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
    # An index made before trackers had versions: adding a field is allowed in place.
    es.indices.put_mapping(index=trackers_index(alias), properties={"version": {"type": "long"}})


def _tracker(source: dict[str, Any]) -> Tracker:
    return Tracker.model_validate(source)


def list_trackers(es: Elasticsearch, settings: Settings) -> list[Tracker]:
    """Every stored tracker, by id, however many there are (a cap lowered after they were
    made hides none of them, nor stops the loader tagging with them); none when the index
    does not exist yet."""
    index = trackers_index(settings.calls_alias)
    with backend_errors(settings.es_url):
        try:
            stored = int(es.count(index=index)["count"])
            found = es.search(
                index=index,
                query={"match_all": {}},
                sort=[{"id": "asc"}],
                size=max(stored, 1),
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
