"""Deleting a call (consent withdrawn): gone from the index and the store at once, a tombstone
of id and time only, no reindex or rollback brings it back, and the loader refuses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from builders import load_through_loader, make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.index.definitions import current_index
from indexer.index.deletion import delete_call, tombstone_index
from indexer.index.documents import call_document
from indexer.index.reindex import Source, reindex, rollback
from indexer.index.store import TranscriptStore
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, write_call_file

CALLS = [make_call(f"call-{i}", [("client", f"please delete nothing {i}")]) for i in range(4)]


def load(es: Elasticsearch, settings: Settings, calls: list[Call] = CALLS) -> None:
    load_through_loader(es, settings, calls)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def found_ids(api: TestClient) -> list[str]:
    answer = api.get("/v1/search", params={"q": '"please delete"', "size": 100})
    assert answer.status_code == 200, answer.text
    return sorted(call["call_id"] for call in answer.json()["calls"])


def store_of(settings: Settings) -> TranscriptStore:
    store = TranscriptStore.of(settings)
    assert store is not None
    return store


def test_cli_delete_removes_the_call_and_leaves_only_a_tombstone(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    load(es, settings)

    result = cli(settings, "delete", "call-1", "never-loaded")

    assert result.returncode == 1  # one id was unknown
    assert "error: no call with id 'never-loaded'" in result.stderr
    assert "deleted call-1 from" in result.stderr
    assert found_ids(api) == ["call-0", "call-2", "call-3"]  # refreshed: gone at once
    assert api.get("/v1/calls/call-1").status_code == 404
    assert store_of(settings).call_ids() == ["call-0", "call-2", "call-3"]
    tombstone = es.get(index=tombstone_index(settings.calls_alias), id="call-1")["_source"]
    assert sorted(tombstone) == ["call_id", "deleted_at"]
    assert tombstone["call_id"] == "call-1"
    assert not es.exists(index=tombstone_index(settings.calls_alias), id="never-loaded")


def test_api_delete(es: Elasticsearch, settings: Settings, api: TestClient) -> None:
    load(es, settings)

    first = api.delete("/v1/calls/call-2")
    again = api.delete("/v1/calls/call-2")
    unknown = api.delete("/v1/calls/no-such-call")
    not_an_id = api.delete("/v1/calls/not%20an%20id!")

    assert first.status_code == 204
    assert again.status_code == 204
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no call with id 'no-such-call'"}
    assert not_an_id.status_code == 404
    assert found_ids(api) == ["call-0", "call-1", "call-3"]
    assert api.get("/v1/calls/call-2").status_code == 404
    assert not store_of(settings).contains("call-2")


def test_a_deletion_survives_reindex_from_the_store_and_from_the_index(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    load(es, settings)
    delete_call(es, settings, "call-0")

    from_store = reindex(es, settings, tag=current_tagger(es, settings))
    from_index = reindex(es, settings, source=Source.INDEX, tag=current_tagger(es, settings))

    assert from_store.source.startswith("the transcript store")
    assert from_store.documents == from_index.documents == 3
    assert found_ids(api) == ["call-1", "call-2", "call-3"]
    assert not store_of(settings).contains("call-0")


def test_a_deleted_call_written_past_the_loader_is_left_out_by_reindex(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    load(es, settings)
    delete_call(es, settings, "call-3")
    # A writer that bypasses the loader (and its tombstone check) puts it back in the index.
    serving = current_index(es, settings.calls_alias)
    assert serving is not None
    es.index(index=serving, id="call-3", document=call_document(CALLS[3]), refresh=True)
    assert "call-3" in found_ids(api)

    result = reindex(es, settings, source=Source.INDEX, tag=current_tagger(es, settings))

    assert result.left_out_deleted == ["call-3"]
    assert found_ids(api) == ["call-0", "call-1", "call-2"]


def test_rollback_does_not_bring_a_deleted_call_back(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    load(es, settings)
    reindex(es, settings, tag=current_tagger(es, settings))
    delete_call(es, settings, "call-1")

    rollback(es, settings.calls_alias)

    assert found_ids(api) == ["call-0", "call-2", "call-3"]


def test_the_loader_refuses_a_deleted_call_unless_undeleted(
    es: Elasticsearch, settings: Settings, api: TestClient, tmp_path: Path
) -> None:
    load(es, settings)
    delete_call(es, settings, "call-2")
    for call in CALLS:
        write_call_file(call, tmp_path / f"{call.call_id}.json")

    refused = cli(settings, "load", "--quiet", str(tmp_path))

    assert refused.returncode == 1
    assert f"{tmp_path / 'call-2.json'}: call call-2 was deleted on" in refused.stderr
    assert "load --undelete loads it again" in refused.stderr
    assert "loaded 3, failed 1" in refused.stderr
    assert found_ids(api) == ["call-0", "call-1", "call-3"]
    assert not store_of(settings).contains("call-2")

    undeleted = cli(settings, "load", "--quiet", "--undelete", str(tmp_path / "call-2.json"))

    assert undeleted.returncode == 0, undeleted.stderr
    assert found_ids(api) == ["call-0", "call-1", "call-2", "call-3"]
    assert store_of(settings).contains("call-2")
    assert not es.exists(index=tombstone_index(settings.calls_alias), id="call-2")
