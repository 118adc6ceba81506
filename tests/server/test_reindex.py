"""Reindexing: the alias moves only after the new index checks out, while the API keeps
answering; rollback, prune, and every failed check leaving the alias where it was."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from builders import load_through_loader, make_call, tracker_write
from elasticsearch import Elasticsearch, helpers
from fastapi.testclient import TestClient

import indexer.index.reindex as reindex_module
from api.main import create_app
from indexer.errors import IndexVersionError, ReindexError
from indexer.index.definitions import (
    current_index,
    index_definition,
    index_versions,
    previous_alias,
    schema_version,
    versioned_index_name,
)
from indexer.index.documents import DERIVED_FIELDS, call_document
from indexer.index.loader import load_calls
from indexer.index.reindex import (
    Source,
    keeps_calls_under_their_ids,
    needs_reindex,
    prune,
    reindex,
    rollback,
)
from indexer.index.store import TranscriptStore
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall


def make_old_index(
    es: Elasticsearch,
    settings: Settings,
    documents: list[dict[str, Any]],
    *,
    drop_fields: Sequence[str] = (),
    ids: Sequence[str] | None = None,
) -> str:
    """An index as an older release would have left it: schema version 0, behind the alias,
    optionally without some fields (and documents without them)."""
    alias = settings.calls_alias
    name = f"{alias}-v0"
    definition = copy.deepcopy(index_definition())
    mappings = definition["mappings"]
    mappings["_meta"]["schema_version"] = 0
    for path in drop_fields:
        *parents, leaf = path.split(".")
        properties = mappings["properties"]
        for parent in parents:
            properties = properties[parent]["properties"]
        del properties[leaf]
    es.indices.create(
        index=name,
        settings=definition["settings"],
        mappings=mappings,
        aliases={alias: {"is_write_index": True}},
    )
    for number, document in enumerate(documents):
        document = copy.deepcopy(document)
        for path in drop_fields:
            _drop(document, path.split("."))
        doc_id = ids[number] if ids else str(document["call_id"])
        es.index(index=name, id=doc_id, document=document)
    es.indices.refresh(index=name)
    return name


def _drop(node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _drop(item, parts)
    elif isinstance(node, dict) and parts[0] in node:
        if len(parts) == 1:
            del node[parts[0]]
        else:
            _drop(node[parts[0]], parts[1:])


CALLS = [make_call(f"old-{i}", [("client", f"send me the contract {i}")]) for i in range(5)]


def load(es: Elasticsearch, settings: Settings, calls: Sequence[Call]) -> None:
    load_through_loader(es, settings, calls)


def search_total(api: TestClient, q: str, **params: str) -> int:
    response = api.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_loading_into_an_older_index_says_to_reindex(es: Elasticsearch, settings: Settings) -> None:
    make_old_index(es, settings, [call_document(call) for call in CALLS])

    with pytest.raises(IndexVersionError, match="reindex"):
        load_calls(
            es,
            settings,
            [SourcedCall("new", make_call("new", [("client", "hi")]))],
            tag=current_tagger(es, settings),
        )


def test_reindex_from_the_old_index_moves_the_alias_and_fills_the_store(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    old = make_old_index(es, settings, [call_document(call) for call in CALLS])
    assert needs_reindex(es, settings)
    before = api.get("/v1/search", params={"q": '"send me the contract"'}).json()

    result = reindex(es, settings, tag=current_tagger(es, settings))

    assert (result.previous, result.target, result.documents) == (
        old,
        versioned_index_name(settings.calls_alias),
        5,
    )
    assert result.source == f"the documents of {old}"
    assert result.probes > 0
    assert current_index(es, settings.calls_alias) == result.target
    assert current_index(es, previous_alias(settings.calls_alias)) == old, "kept for rollback"
    assert not needs_reindex(es, settings)
    after = api.get("/v1/search", params={"q": '"send me the contract"'}).json()
    assert after["total"] == before["total"] == 5
    assert after["calls"] == before["calls"]
    # The store was empty: the calls read back from the index now fill it.
    store = TranscriptStore.of(settings)
    assert store is not None
    assert store.call_ids() == sorted(call.call_id for call in CALLS)
    assert list(store.calls()) == sorted(CALLS, key=lambda call: call.call_id)


def test_new_fields_are_checked_and_populated(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    new_in_v2 = ["metrics", "trackers", "utterances.lemma", "utterances.lemma_alt"]
    make_old_index(es, settings, [call_document(call) for call in CALLS], drop_fields=new_in_v2)
    assert search_total(api, '"sends me"', mode="forms") == 0  # no lemmas in the old index

    def tag(call: Call) -> list[str]:
        return ["contract"] if call.call_id in ("old-1", "old-3") else []

    result = reindex(es, settings, tag=tag)

    assert result.new_fields["trackers"] == 2
    assert result.new_fields["metrics.talk_s_client"] == 5
    assert result.new_fields["utterances.lemma"] == 5
    assert search_total(api, '"sends me"', mode="forms") == 5
    tagged = es.search(index=settings.calls_alias, query={"term": {"trackers": "contract"}})
    assert sorted(hit["_id"] for hit in tagged["hits"]["hits"]) == ["old-1", "old-3"]


def test_reindex_from_the_store_to_the_same_schema_version(
    es: Elasticsearch, settings: Settings
) -> None:
    load(es, settings, CALLS)
    first = versioned_index_name(settings.calls_alias)
    assert not needs_reindex(es, settings)

    second = reindex(es, settings, tag=current_tagger(es, settings))
    third = reindex(es, settings, tag=current_tagger(es, settings))

    assert second.source.startswith("the transcript store")
    assert (second.previous, second.target) == (first, f"{first}-2")
    assert (third.previous, third.target) == (f"{first}-2", f"{first}-3")
    assert current_index(es, settings.calls_alias) == f"{first}-3"
    assert current_index(es, previous_alias(settings.calls_alias)) == f"{first}-2"
    assert es.count(index=settings.calls_alias)["count"] == 5


# Set per index by Elasticsearch itself, never by the definition.
OWN_SETTINGS = ("uuid", "creation_date", "provided_name", "version", "history_uuid")


def _index_settings(es: Elasticsearch, index: str) -> dict[str, Any]:
    found = dict(es.indices.get_settings(index=index, flat_settings=True)[index]["settings"])
    return {k: v for k, v in found.items() if k.removeprefix("index.") not in OWN_SETTINGS}


def test_the_live_index_has_exactly_the_definitions_settings(
    es: Elasticsearch, settings: Settings
) -> None:
    """Refresh and replicas are held off while a version is built; once live it has the
    settings of an index made from the definition alone (mappings/calls.json)."""
    load(es, settings, CALLS)
    made_from_definition = versioned_index_name(settings.calls_alias)

    result = reindex(es, settings, tag=current_tagger(es, settings))

    live = _index_settings(es, result.target)
    assert live == _index_settings(es, made_from_definition)
    assert "index.refresh_interval" not in live
    assert live["index.auto_expand_replicas"] == "0-1"


def test_stored_tracker_tags_survive_a_reindex(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    load(es, settings, CALLS)
    tracker = {"id": "contract", "name": "Contract", "phrases": ["the contract"]}
    tracker_write(api, "POST", "/v1/trackers", tracker)

    def tagged() -> list[str]:
        found = es.search(index=settings.calls_alias, query={"term": {"trackers": "contract"}})
        return sorted(hit["_id"] for hit in found["hits"]["hits"])

    assert tagged() == [call.call_id for call in CALLS]

    reindex(
        es, settings, tag=current_tagger(es, settings)
    )  # from the store, which holds no tags: the stored tracker decides

    assert tagged() == [call.call_id for call in CALLS]


def test_reindex_while_the_api_answers_queries(es: Elasticsearch, settings: Settings) -> None:
    calls = [
        make_call(
            f"call-{i:03d}",
            [
                ("manager", f"hello this is manager number {i}"),
                ("client", "send me the contract please" if i % 2 else "that is too expensive"),
            ],
        )
        for i in range(200)
    ]
    load(es, settings, calls)
    queries = [
        {"q": '"send me the contract"'},
        {"q": "expensive", "role": "client"},
        {"q": "manager:hello"},
        {"q": '"sends me"', "mode": "forms"},
    ]
    failures: list[str] = []
    reindexing, finished = threading.Event(), threading.Event()
    during = threading.Semaphore(0)  # one release per query answered while the reindex runs
    answered = [0]

    def query_continuously() -> None:
        with TestClient(create_app(settings)) as client:
            expected = {}
            for params in queries:
                response = client.get("/v1/search", params=params)
                expected[params["q"]] = response.json()["total"]
                if not expected[params["q"]]:
                    failures.append(f"{params}: no results even before the reindex")
            after_finish = 0
            while after_finish < 2 * len(queries):
                for params in queries:
                    running = reindexing.is_set() and not finished.is_set()
                    response = client.get("/v1/search", params=params)
                    if response.status_code != 200:
                        failures.append(f"{params}: {response.status_code} {response.text}")
                    elif response.json()["total"] != expected[params["q"]]:
                        failures.append(f"{params}: total {response.json()['total']}")
                    single = client.get("/v1/calls/call-007")
                    if single.status_code != 200:
                        failures.append(f"call-007: {single.status_code}")
                    answered[0] += 1
                    if running:
                        during.release()
                    if finished.is_set():
                        after_finish += 1

    def tag(call: Call) -> list[str]:
        # The first call built waits until the API has answered queries during the reindex,
        # so the two overlap however fast either is.
        if call.call_id == "call-000":
            for _ in range(5):
                assert during.acquire(timeout=60), "the API answered no queries during reindex"
        return []

    querying = threading.Thread(target=query_continuously)
    querying.start()
    try:
        reindexing.set()
        result = reindex(es, settings, tag=tag)
    finally:
        finished.set()
        querying.join(timeout=120)

    assert not querying.is_alive()
    assert result.target == f"{versioned_index_name(settings.calls_alias)}-2"
    assert current_index(es, settings.calls_alias) == result.target
    assert answered[0] >= 5 + 2 * len(queries)
    assert failures == []


def test_rollback_and_back_again(es: Elasticsearch, settings: Settings, api: TestClient) -> None:
    load(es, settings, CALLS[:3])
    first = current_index(es, settings.calls_alias)
    result = reindex(es, settings, tag=current_tagger(es, settings))
    load(es, settings, CALLS[3:])  # only in the new version

    moved = rollback(es, settings.calls_alias)

    assert (moved.now, moved.before) == (first, result.target)
    assert (moved.documents_now, moved.documents_before) == (3, 5)
    assert current_index(es, settings.calls_alias) == first
    assert current_index(es, previous_alias(settings.calls_alias)) == result.target
    assert search_total(api, '"send me the contract"') == 3

    again = rollback(es, settings.calls_alias)

    assert again.now == result.target
    assert search_total(api, '"send me the contract"') == 5


def test_rollback_without_a_previous_version_is_refused(
    es: Elasticsearch, settings: Settings
) -> None:
    load(es, settings, CALLS)

    with pytest.raises(ReindexError, match="no previous version"):
        rollback(es, settings.calls_alias)


def test_prune_keeps_the_serving_and_previous_versions(
    es: Elasticsearch, settings: Settings
) -> None:
    load(es, settings, CALLS)
    v1 = current_index(es, settings.calls_alias)
    assert v1 is not None
    v2 = reindex(es, settings, tag=current_tagger(es, settings)).target
    v3 = reindex(es, settings, tag=current_tagger(es, settings)).target

    assert prune(es, settings.calls_alias) == [v1]
    assert [v.name for v in index_versions(es, settings.calls_alias)] == [v1 + "-2", v1 + "-3"]
    assert (v2, v3) == (v1 + "-2", v1 + "-3")

    assert prune(es, settings.calls_alias, keep_previous=False) == [v2]
    assert [v.name for v in index_versions(es, settings.calls_alias)] == [v3]
    assert current_index(es, settings.calls_alias) == v3
    with pytest.raises(ReindexError, match="no previous version"):
        rollback(es, settings.calls_alias)


def assert_untouched(es: Elasticsearch, settings: Settings, serving: str) -> None:
    assert current_index(es, settings.calls_alias) == serving
    assert [v.name for v in index_versions(es, settings.calls_alias)] == [serving]


def test_a_call_breaking_the_contract_fails_the_build(
    es: Elasticsearch, settings: Settings
) -> None:
    broken = call_document(CALLS[0])
    broken["call_id"] = "broken"
    broken["utterances"][0]["role"] = "boss"  # accepted by the keyword field, not by the contract
    old = make_old_index(es, settings, [call_document(call) for call in CALLS[1:]] + [broken])

    with pytest.raises(ReindexError, match="broken"):
        reindex(es, settings, tag=current_tagger(es, settings))

    assert_untouched(es, settings, old)


def test_calls_missing_from_the_store_fail_the_count_check(
    es: Elasticsearch, settings: Settings
) -> None:
    load(es, settings, CALLS)
    serving = current_index(es, settings.calls_alias)
    assert serving is not None
    store = TranscriptStore.of(settings)
    assert store is not None
    store.remove("old-1")
    store.remove("old-4")

    with pytest.raises(ReindexError, match=r"holds 5: 2 would be lost \(old-1, old-4\)"):
        reindex(es, settings, tag=current_tagger(es, settings))
    assert_untouched(es, settings, serving)

    # Building from the index instead brings them back into the store.
    result = reindex(es, settings, source=Source.INDEX, tag=current_tagger(es, settings))
    assert result.documents == 5
    assert store.call_ids() == [call.call_id for call in CALLS]


def test_a_document_under_a_foreign_id_fails_the_count_check(
    es: Elasticsearch, settings: Settings
) -> None:
    documents = [call_document(call) for call in CALLS] + [call_document(CALLS[1])]
    ids = [call.call_id for call in CALLS] + ["copy-of-old-1"]
    old = make_old_index(es, settings, documents, ids=ids)

    with pytest.raises(ReindexError, match=r"holds 6: 1 would be lost \(copy-of-old-1\)"):
        reindex(es, settings, tag=current_tagger(es, settings))
    assert_untouched(es, settings, old)


# 2: the checks count among a set of ids in several queries, as at a million calls.
IDS_PER_QUERY_CASES = pytest.mark.parametrize(
    "ids_per_query", [None, 2], ids=["one-query", "ids-in-parts"]
)


@IDS_PER_QUERY_CASES
def test_the_checks_read_ids_from_call_ids_only_where_the_counts_show_they_are_the_ids(
    es: Elasticsearch,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    ids_per_query: int | None,
) -> None:
    """The checks read call ids from doc values (reading ``_id`` decompresses each source);
    that stands only where every document is filed under its own call_id."""
    if ids_per_query is not None:
        monkeypatch.setattr(reindex_module, "IDS_PER_QUERY", ids_per_query)
    documents = [call_document(call) for call in CALLS]
    ids = [call.call_id for call in CALLS]
    call_ids = set(ids)

    def index_of(documents: list[dict[str, Any]], ids: list[str]) -> str:
        old = current_index(es, settings.calls_alias)
        if old is not None:
            es.indices.delete(index=old)
        return make_old_index(es, settings, documents, ids=ids)

    own = index_of(documents, ids)
    assert keeps_calls_under_their_ids(es, own, call_ids)
    assert not keeps_calls_under_their_ids(es, own, call_ids - {"old-2"})
    # old-1 twice: under its own id and another
    copied = index_of([*documents, documents[1]], [*ids, "copy-of-old-1"])
    assert not keeps_calls_under_their_ids(es, copied, call_ids)
    # old-1 only under another id
    renamed = index_of(documents, [ids[0], "not-old-1", *ids[2:]])
    assert not keeps_calls_under_their_ids(es, renamed, call_ids)


def test_probe_queries_that_answer_differently_fail_unless_accepted(
    es: Elasticsearch, settings: Settings
) -> None:
    # old-2 was indexed by analysis code that made other terms of the same words.
    documents = [call_document(call) for call in CALLS]
    documents[2]["utterances"][0]["terms"] = "sent me da contract 2"
    old = make_old_index(es, settings, documents)

    new_version = rf"-v{schema_version()}"
    with pytest.raises(ReindexError, match=rf'"send me" .*only in .*{new_version}: \[old-2\]'):
        reindex(es, settings, tag=current_tagger(es, settings))
    assert_untouched(es, settings, old)

    result = reindex(es, settings, accept_probe_changes=True, tag=current_tagger(es, settings))
    assert current_index(es, settings.calls_alias) == result.target


@IDS_PER_QUERY_CASES
@pytest.mark.parametrize("others", [0, 30], ids=["most-calls-match", "few-calls-match"])
def test_a_probe_finding_as_many_but_other_calls_fails(
    es: Elasticsearch,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    others: int,
    ids_per_query: int | None,
) -> None:
    """The old analysis found "send me" in z-1 (which says "sell me") but not in a-02: the
    new index finds as many calls, not the same ones. Counts alone would pass it. With
    ``others`` calls that do not say it, the probe finds most or few of the calls (the check
    reads the smaller side)."""
    if ids_per_query is not None:
        monkeypatch.setattr(reindex_module, "IDS_PER_QUERY", ids_per_query)
    calls = [make_call(f"a-{i:02}", [("client", f"send me the contract {i}")]) for i in range(20)]
    calls += [make_call(f"m-{i:02}", [("client", "good morning everyone")]) for i in range(others)]
    calls.append(make_call("z-1", [("client", "sell me the contract")]))
    documents = [call_document(call) for call in calls]
    documents[2]["utterances"][0]["terms"] = "sent me da contract 2"
    documents[-1]["utterances"][0]["terms"] = "send me the contract"
    old = make_old_index(es, settings, documents)

    with pytest.raises(
        ReindexError,
        match=rf'"send me" \(any, exact\) finds 20 calls in {old}, 20 in .*; only in {old}: '
        r"\[z-1\], only in .*: \[a-02\]",
    ):
        reindex(es, settings, tag=current_tagger(es, settings))
    assert_untouched(es, settings, old)


def test_the_cli_says_why_and_exits_1(es: Elasticsearch, settings: Settings) -> None:
    load(es, settings, CALLS)
    store = TranscriptStore.of(settings)
    assert store is not None
    store.remove("old-0")
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "indexer", "reindex", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    failed = run()
    rebuilt = run("--from", "index")
    rolled = run("--rollback")

    assert failed.returncode == 1
    assert "error: reindex failed, alias unchanged:" in failed.stderr
    assert "would be lost (old-0)" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"building {versioned_index_name(settings.calls_alias)}-2 from the documents of" in (
        rebuilt.stderr
    )
    assert "1 calls written to the transcript store" not in rebuilt.stderr  # all 5 are
    assert "5 calls written to the transcript store" in rebuilt.stderr
    assert rolled.returncode == 0, rolled.stderr
    assert current_index(es, settings.calls_alias) == versioned_index_name(settings.calls_alias)


def test_derived_fields_are_not_read_back() -> None:
    # Guards the assumption reindex from documents relies on: derived fields are recomputed.
    assert set(DERIVED_FIELDS) <= set(call_document(CALLS[0]))


def _sources(es: Elasticsearch, index: str) -> dict[str, Any]:
    es.indices.refresh(index=index)
    return {hit["_id"]: hit["_source"] for hit in helpers.scan(es, index=index)}


@pytest.mark.parametrize("source", [Source.STORE, Source.INDEX])
def test_worker_processes_rebuild_what_the_reindex_process_builds(
    es: Elasticsearch, settings: Settings, source: Source
) -> None:
    """With batches of 2 the 5 calls are 3 batches: built by 2 worker processes, the new
    version holds the same documents as one built in the reindex's own process."""
    small = settings.model_copy(update={"bulk_chunk_size": 2})
    load(es, small, CALLS)
    built = {}
    for workers in (1, 2):
        result = reindex(
            es,
            small.model_copy(update={"load_workers": workers}),
            source=source,
            tag=current_tagger(es, small),
        )
        assert result.documents == len(CALLS)
        built[workers] = _sources(es, result.target)

    assert built[2] == built[1]
    assert sorted(built[2]) == [call.call_id for call in CALLS]


def test_a_call_breaking_the_contract_fails_a_build_in_worker_processes(
    es: Elasticsearch, settings: Settings
) -> None:
    broken = call_document(CALLS[0])
    broken["call_id"] = "broken"
    broken["utterances"][0]["role"] = "boss"
    old = make_old_index(es, settings, [call_document(call) for call in CALLS[1:]] + [broken])
    in_workers = settings.model_copy(update={"bulk_chunk_size": 2, "load_workers": 2})

    with pytest.raises(ReindexError, match=r"call broken in .* does not match the transcript"):
        reindex(es, in_workers, tag=current_tagger(es, settings))

    assert_untouched(es, settings, old)
