"""Each promise the README makes that no other test checked, checked against the real
Elasticsearch: its headline example answer, the transcript store written before indexing (a
store failure means "not loaded"), a call loaded during a reindex copy failing the check instead
of being lost, ``scripts/run`` rebuilding a lost index from the store, CSV escaping of
``= + - @``, ``date_to`` covering the whole UTC day."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders import load_through_loader, make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from faults import FaultProxy

from indexer.elastic import connect
from indexer.errors import ReindexError
from indexer.index.definitions import current_index
from indexer.index.loader import load_calls, load_paths
from indexer.index.reindex import reindex
from indexer.index.store import TranscriptStore
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
SAMPLES = PROJECT_ROOT / "samples" / "calls"


def _no_tags(call: Call) -> list[str]:
    return []


def _ids(es: Elasticsearch, index: str) -> set[str]:
    es.indices.refresh(index=index)
    answer = es.search(index=index, size=1000, source=False)
    return {hit["_id"] for hit in answer["hits"]["hits"]}


def test_the_readme_headline_example_answers_what_the_readme_shows(
    es: Elasticsearch, settings: Settings, api: TestClient
) -> None:
    summary = load_paths(
        es, settings, [SAMPLES], show_progress=False, tag=current_tagger(es, settings)
    )
    assert summary.failures == []
    command = re.search(r"--data-urlencode 'q=(.+)'", README)
    assert command is not None
    shown = json.loads(README.split("```json", 1)[1].split("```", 1)[0])

    response = api.get("/v1/search", params={"q": command.group(1)})

    assert command.group(1) == 'client:"пришлите договор" AND NOT manager:скидк*'
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == shown["total"] == 1
    (call,) = body["calls"]
    (expected,) = shown["calls"]
    assert {k: v for k, v in call.items() if k != "hits"} == {
        k: v for k, v in expected.items() if k != "hits"
    }
    # The README shows the first hit and cuts the second "for brevity".
    assert len(call["hits"]) == 2
    assert call["hits"][0] == expected["hits"][0]


def test_the_store_is_written_before_the_call_is_indexed(
    es: Elasticsearch, settings: Settings
) -> None:
    proxy = FaultProxy(settings.es_url).start()
    try:
        through = settings.model_copy(update={"es_url": proxy.url})
        proxy.arm("stall", "/_bulk", times=1, stall_s=2.0)
        call = make_call("stored-first", [("client", "цена")])
        store = TranscriptStore.of(settings)
        assert store is not None
        seen_while_sending: list[tuple[bool, bool]] = []

        def watch() -> None:
            while not proxy.fired:
                pass
            index = current_index(es, settings.calls_alias)
            assert index is not None
            seen_while_sending.append(
                (store.contains(call.call_id), call.call_id in _ids(es, index))
            )

        watcher = threading.Thread(target=watch)
        watcher.start()
        client = connect(through)
        summary = load_calls(client, through, [SourcedCall("t", call)], tag=_no_tags)
        client.close()
        watcher.join(timeout=30)
    finally:
        proxy.stop()
    assert summary.loaded == 1
    # While the bulk request was on its way: in the store, not yet in the index.
    assert seen_while_sending == [(True, False)]


def test_a_call_the_store_cannot_take_is_not_loaded(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    load_through_loader(es, settings, [make_call("fine", [("client", "цена")])])
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the store's directory should be")
    broken = settings.model_copy(update={"store_dir": blocked})

    summary = load_calls(
        es,
        broken,
        [SourcedCall("t.json", make_call("unstored", [("client", "цена")]))],
        tag=_no_tags,
    )

    assert summary.loaded == 0
    (failure,) = summary.failures
    assert "call unstored not written to the store" in failure
    assert failure.endswith("not loaded")
    assert _ids(es, settings.calls_alias) == {"fine"}


def test_a_call_loaded_during_the_reindex_copy_fails_the_check_and_is_kept(
    es: Elasticsearch, settings: Settings
) -> None:
    load_through_loader(
        es, settings, [make_call(f"b-{n}", [("client", f"цена {n}")]) for n in range(5)]
    )
    before = current_index(es, settings.calls_alias)
    late = make_call("a-late", [("client", "поздно")])
    loaded_during: list[int] = []

    def tag_and_load_one_meanwhile(call: Call) -> list[str]:
        if not loaded_during:
            summary = load_calls(es, settings, [SourcedCall("late", late)], tag=_no_tags)
            loaded_during.append(summary.loaded)
        return []

    with pytest.raises(ReindexError, match="a-late"):
        reindex(es, settings, tag=tag_and_load_one_meanwhile)

    assert loaded_during == [1]
    assert current_index(es, settings.calls_alias) == before  # the alias did not move
    assert "a-late" in _ids(es, settings.calls_alias)  # nor was the late call lost
    assert [name for name in es.indices.get(index=f"{settings.calls_alias}-*")] == [before]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_scripts_run_rebuilds_an_index_that_is_gone_from_the_store(
    es: Elasticsearch, settings: Settings
) -> None:
    run = (PROJECT_ROOT / "scripts" / "run").read_text()
    assert "python -m indexer reindex --if-needed\n" in run  # what scripts/run runs first
    calls = [make_call(f"kept-{n}", [("client", "цена")]) for n in range(3)]
    load_through_loader(es, settings, calls)
    unchanged = _cli(settings, "reindex", "--if-needed")
    assert unchanged.returncode == 0, unchanged.stderr
    index = current_index(es, settings.calls_alias)
    assert index is not None
    es.indices.delete(index=index)  # the index is lost; the store is not
    assert current_index(es, settings.calls_alias) is None

    rebuilt = _cli(settings, "reindex", "--if-needed")

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert current_index(es, settings.calls_alias) is not None
    assert _ids(es, settings.calls_alias) == {c.call_id for c in calls}


def _csv_rows(api: TestClient, params: dict[str, Any]) -> list[list[str]]:
    response = api.get("/v1/search.csv", params=params)
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))[1:]


@pytest.mark.parametrize("lead", ["=", "+", "-", "@"])
def test_csv_cells_that_start_like_a_formula_are_text(
    api: TestClient, index_calls: Callable[..., None], lead: str
) -> None:
    text = f"{lead}7 903 цена"
    index_calls(make_call("formula", [("client", text)]))

    (row,) = _csv_rows(api, {"q": "цена"})

    assert row[10] == f"'{text}"


@pytest.fixture
def day_edges(index_calls: Callable[..., None]) -> None:
    def at(hour: int, minute: int, second: int, day: int = 5) -> datetime:
        return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)

    index_calls(
        make_call("first-second", [("client", "цена")], started_at=at(0, 0, 0)),
        make_call("last-minute", [("client", "цена")], started_at=at(23, 59, 59)),
        make_call("next-day", [("client", "цена")], started_at=at(0, 0, 0, day=6)),
        make_call("day-before", [("client", "цена")], started_at=at(23, 59, 59, day=4)),
    )


@pytest.mark.usefixtures("day_edges")
def test_a_date_covers_the_whole_utc_day(api: TestClient) -> None:
    def found(**params: str) -> set[str]:
        response = api.get("/v1/search", params={"q": "цена", **params})
        assert response.status_code == 200, response.text
        return {call["call_id"] for call in response.json()["calls"]}

    assert found(date_from="2026-03-05", date_to="2026-03-05") == {"first-second", "last-minute"}
    assert found(date_to="2026-03-05") == {"day-before", "first-second", "last-minute"}
    assert found(date_from="2026-03-06") == {"next-day"}
