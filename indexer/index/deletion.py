"""Deleting a call for good (consent withdrawn): from every index version and from the store.

A deletion leaves a tombstone in ``<alias>-deleted``: the call id and the time, never content
(``mappings/deleted.json``). Tombstones keep a deletion final: reindex never copies a tombstoned
call into a new version, rollback removes them from the version it returns to, and the loader
refuses to load the id again unless told to undelete it (``load --undelete``).

Order matters for a concurrent loader: the tombstone is written first, so a load that starts
after it refuses the call; then the store file and the documents go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from elasticsearch import Elasticsearch, helpers

from indexer.elastic import scan_hits
from indexer.errors import CallNotFoundError
from indexer.index.definitions import ensure_index, index_versions
from indexer.index.store import TranscriptStore
from indexer.redaction.policy import remove_copies
from indexer.settings import Settings
from indexer.transcript import is_call_id

TOMBSTONE_MAPPING = "deleted.json"
TOMBSTONE_BATCH = 1000


def tombstone_index(alias: str) -> str:
    return f"{alias}-deleted"


def _ensure_tombstone_index(es: Elasticsearch, alias: str) -> None:
    ensure_index(es, tombstone_index(alias), TOMBSTONE_MAPPING)


@dataclass(frozen=True)
class Deletion:
    call_id: str
    deleted_at: str
    indices: list[str]  # index versions the call was removed from
    from_store: bool
    already_deleted: bool  # a tombstone existed before this request


def deleted_ids(es: Elasticsearch, alias: str, call_ids: Iterable[str]) -> dict[str, str]:
    """Which of ``call_ids`` are tombstoned, with their deletion times (a realtime ``mget``:
    a tombstone written a moment ago counts)."""
    ids = list(dict.fromkeys(call_ids))
    if not ids:
        return {}
    # A missing tombstone index answers each id with an index_not_found error: none deleted.
    found = es.mget(index=tombstone_index(alias), ids=ids)
    return {
        str(doc["_id"]): str(doc["_source"]["deleted_at"])
        for doc in found["docs"]
        if doc.get("found")
    }


def all_deleted_ids(es: Elasticsearch, alias: str) -> set[str]:
    name = tombstone_index(alias)
    if not es.indices.exists(index=name):
        return set()
    es.indices.refresh(index=name)
    return {str(hit["_id"]) for hit in scan_hits(es, name, size=1000, source=False)}


def _indices_holding(es: Elasticsearch, alias: str, call_id: str) -> list[str]:
    holding = []
    for version in index_versions(es, alias):
        if es.exists(index=version.name, id=call_id):
            holding.append(version.name)
    return holding


def delete_call(es: Elasticsearch, settings: Settings, call_id: str) -> Deletion:
    """Remove the call from every index version of the alias (refreshed), from the store, from
    the redaction originals and bleeped recordings, and tombstone it. Deleting an already
    deleted call again is harmless (and finishes a deletion that was interrupted); an id that
    was never there raises CallNotFoundError."""
    alias = settings.calls_alias
    store = TranscriptStore.of(settings)
    if not is_call_id(call_id):
        raise CallNotFoundError(call_id)
    holding = _indices_holding(es, alias, call_id)
    in_store = store is not None and store.contains(call_id)
    earlier = deleted_ids(es, alias, [call_id]).get(call_id)
    if not holding and not in_store and earlier is None:
        raise CallNotFoundError(call_id)

    deleted_at = earlier or datetime.now(UTC).isoformat(timespec="seconds")
    if earlier is None:
        _ensure_tombstone_index(es, alias)
        es.index(
            index=tombstone_index(alias),
            id=call_id,
            document={"call_id": call_id, "deleted_at": deleted_at},
            refresh=True,
        )
    from_store = store.remove(call_id) if store is not None else False
    remove_copies(settings, call_id)  # the kept original, the bleeped recording
    for name in holding:
        # Someone else deleting it in between (404) has the same outcome.
        es.options(ignore_status=404).delete(index=name, id=call_id, refresh=True)
    return Deletion(call_id, deleted_at, holding, from_store, already_deleted=earlier is not None)


def undelete(es: Elasticsearch, alias: str, call_id: str) -> bool:
    """Drop the call's tombstone (consent given again); False when there was none."""
    name = tombstone_index(alias)
    found = es.options(ignore_status=404).delete(index=name, id=call_id, refresh=True)
    return bool(found.get("result") == "deleted")


def apply_tombstones(es: Elasticsearch, alias: str, index: str) -> list[str]:
    """Delete every tombstoned call still in ``index`` (refreshed); return their ids."""
    tombstoned = sorted(all_deleted_ids(es, alias))
    present: list[str] = []
    for start in range(0, len(tombstoned), TOMBSTONE_BATCH):
        found = es.mget(index=index, ids=tombstoned[start : start + TOMBSTONE_BATCH], source=False)
        present += [str(doc["_id"]) for doc in found["docs"] if doc.get("found")]
    if present:
        helpers.bulk(
            es,
            ({"_op_type": "delete", "_index": index, "_id": call_id} for call_id in present),
            raise_on_error=False,
        )
        es.indices.refresh(index=index)
    return present
