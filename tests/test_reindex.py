"""Reindexing to the current mapping: the alias moves only after the new index checks out."""

from __future__ import annotations

import copy

import pytest
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.documents import call_document
from indexer.errors import IndexVersionError, ReindexError
from indexer.index import current_index, index_definition, versioned_index_name
from indexer.loader import SourcedCall, load_calls
from indexer.reindex import needs_reindex, reindex
from indexer.settings import Settings


def make_old_index(
    es: Elasticsearch, settings: Settings, documents: list[dict[str, object]]
) -> str:
    """An index as an older release would have left it: schema version 0, behind the alias."""
    alias = settings.calls_alias
    name = f"{alias}-v0"
    definition = copy.deepcopy(index_definition())
    definition["mappings"]["_meta"]["schema_version"] = 0
    es.indices.create(
        index=name,
        settings=definition["settings"],
        mappings=definition["mappings"],
        aliases={alias: {"is_write_index": True}},
    )
    for document in documents:
        es.index(index=name, id=str(document["call_id"]), document=document)
    es.indices.refresh(index=name)
    return name


CALLS = [make_call(f"old-{i}", [("client", f"send me the contract {i}")]) for i in range(5)]


def test_loading_into_an_older_index_says_to_reindex(es: Elasticsearch, settings: Settings) -> None:
    make_old_index(es, settings, [call_document(call) for call in CALLS])

    with pytest.raises(IndexVersionError, match="reindex"):
        load_calls(es, settings, [SourcedCall("new", make_call("new", [("client", "hi")]))])


def test_reindex_moves_the_alias_and_keeps_every_call(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    old = make_old_index(es, settings, [call_document(call) for call in CALLS])
    assert needs_reindex(es, settings.calls_alias)
    before = api.get("/v1/search", params={"q": '"send me the contract"'}).json()

    result = reindex(es, settings.calls_alias)

    assert (result.source, result.target, result.documents) == (
        old,
        versioned_index_name(settings.calls_alias),
        5,
    )
    assert current_index(es, settings.calls_alias) == result.target
    assert es.indices.exists(index=old), "the previous version is kept for a rollback"
    assert not needs_reindex(es, settings.calls_alias)
    after = api.get("/v1/search", params={"q": '"send me the contract"'}).json()
    assert after["total"] == before["total"] == 5
    assert after["calls"] == before["calls"]


def test_failed_reindex_leaves_the_alias_and_removes_the_new_index(
    es: Elasticsearch, settings: Settings
) -> None:
    broken = call_document(CALLS[0])
    broken["call_id"] = "broken"
    broken["utterances"][0]["role"] = "boss"  # accepted by the keyword field, not by the contract
    old = make_old_index(es, settings, [call_document(call) for call in CALLS[1:]] + [broken])

    with pytest.raises(ReindexError, match="broken"):
        reindex(es, settings.calls_alias)

    assert current_index(es, settings.calls_alias) == old
    assert not es.indices.exists(index=versioned_index_name(settings.calls_alias))
