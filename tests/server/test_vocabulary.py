"""The company vocabulary on the real Elasticsearch: stored and edited through the API and the
CLI, a term matches each of its spellings and no other word, trackers and their statistics use
it, and a change re-tags past calls."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from builders import make_call, wait_for_job
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.settings import PROJECT_ROOT, Settings

BITRIX = {
    "canonical": "Битрикс24",
    "spellings": ["Bitrix24", "битрикс 24", "Bitrix 24"],
    "language": "ru",
}
CALLS = [
    make_call("c-canonical", [("client", "у нас Битрикс24 стоит")], language="ru"),
    make_call("c-latin", [("client", "we use Bitrix24 today")]),
    make_call("c-two-words", [("client", "сейчас битрикс 24 облачный")], language="ru"),
    make_call("c-latin-two", [("manager", "the Bitrix 24 cloud")]),
    # Not spellings of the term: a shorter word, another number, another brand.
    make_call("c-other", [("client", "у нас битрикс и amoCRM, 24 менеджера")], language="ru"),
    make_call("c-unrelated", [("client", "цена вопроса 24 тысячи")], language="ru"),
]
SPELLED = {"c-canonical", "c-latin", "c-two-words", "c-latin-two"}


def _ids(api: TestClient, q: str, **params: Any) -> set[str]:
    response = api.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return {call["call_id"] for call in response.json()["calls"]}


def _tags(es: Elasticsearch, settings: Settings) -> dict[str, list[str]]:
    es.indices.refresh(index=settings.calls_alias)
    found = es.search(index=settings.calls_alias, size=100, source=["call_id", "trackers"])
    return {hit["_source"]["call_id"]: hit["_source"]["trackers"] for hit in found["hits"]["hits"]}


def test_terms_are_stored_versioned_and_edited(api: TestClient) -> None:
    empty = api.get("/v1/vocabulary").json()
    assert empty["terms"] == []
    created = api.post("/v1/vocabulary", json=BITRIX)
    assert created.status_code == 201, created.text
    term = created.json()
    assert term["revision"] == 1
    assert term["id"] == "24"  # made from the Latin letters and digits of the canonical form
    listed = api.get("/v1/vocabulary").json()
    assert [t["id"] for t in listed["terms"]] == [term["id"]]
    assert listed["version"] != empty["version"]
    assert api.post("/v1/vocabulary", json={**BITRIX, "id": term["id"]}).status_code == 409
    changed = api.put(f"/v1/vocabulary/{term['id']}", json={**BITRIX, "spellings": ["bitrix"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["revision"] == 2
    assert api.get("/v1/vocabulary").json()["version"] not in (listed["version"], empty["version"])
    bad = api.post("/v1/vocabulary", json={"canonical": "!!!", "spellings": []})
    assert bad.status_code == 422 or bad.status_code == 400
    assert api.delete(f"/v1/vocabulary/{term['id']}").status_code == 204
    assert api.get(f"/v1/vocabulary/{term['id']}").status_code == 404
    assert api.delete(f"/v1/vocabulary/{term['id']}").status_code == 404


def test_a_term_matches_each_of_its_spellings_and_no_other_word(
    api: TestClient, index_calls: Callable[..., None]
) -> None:
    index_calls(*CALLS)
    # Without the vocabulary each spelling finds only itself.
    assert _ids(api, "Битрикс24") == {"c-canonical"}
    assert api.post("/v1/vocabulary", json=BITRIX).status_code == 201
    for typed in ["Битрикс24", "bitrix24", '"битрикс 24"', '"Bitrix 24"']:
        assert _ids(api, typed) == SPELLED, typed
        assert _ids(api, typed, mode="forms") == SPELLED, typed
    # A phrase around a spelling, and a NEAR, expand too; the hit covers the words said.
    assert _ids(api, '"Битрикс24 стоит"') == {"c-canonical"}
    assert _ids(api, '"битрикс24 облачный"') == {"c-two-words"}
    assert _ids(api, "bitrix24 NEAR/1 cloud") == {"c-latin-two"}
    assert _ids(api, "NOT bitrix24") == {"c-other", "c-unrelated"}
    hits = api.get("/v1/search", params={"q": "bitrix24"}).json()["calls"]
    two_words = next(c for c in hits if c["call_id"] == "c-two-words")["hits"][0]
    # "битрикс" and "24" are words 1 and 2 (builders: 0.4 s words, 0.1 s apart).
    assert (two_words["start"], two_words["end"]) == (0.5, 1.4)
    # The words alone are not the term.
    assert _ids(api, "битрикс") == {"c-other", "c-two-words"}
    assert _ids(api, "24") == {"c-two-words", "c-latin-two", "c-other", "c-unrelated"}


def test_trackers_and_stats_use_the_vocabulary_and_follow_its_changes(
    api: TestClient, es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    index_calls(*CALLS)
    tracker = api.post("/v1/trackers", json={"name": "CRM", "phrases": ["Битрикс24"]})
    assert tracker.status_code == 202, tracker.text
    assert wait_for_job(api, tracker.headers["Location"])["state"] == "done"
    tracker_id = tracker.json()["tracker"]["id"]
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {"c-canonical"}

    term = api.post("/v1/vocabulary", json=BITRIX).json()
    # The write answered after the past calls were re-tagged.
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == SPELLED
    stats = api.get(f"/v1/trackers/{tracker_id}/stats", params={"group_by": "manager"}).json()
    assert stats["total"]["calls_mentioning"] == len(SPELLED)
    assert stats["total"]["mentions"] == len(SPELLED)

    # A call loaded later is tagged by the loader with the vocabulary in force.
    index_calls(make_call("c-late", [("client", "we moved to Bitrix 24")]))
    assert tracker_id in _tags(es, settings)["c-late"]

    narrowed = {**BITRIX, "spellings": ["Bitrix24"]}
    assert api.put(f"/v1/vocabulary/{term['id']}", json=narrowed).status_code == 200
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {
        "c-canonical",
        "c-latin",
    }
    assert api.delete(f"/v1/vocabulary/{term['id']}").status_code == 204
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {"c-canonical"}


def test_cli_adds_lists_and_deletes_terms(settings: Settings, api: TestClient) -> None:
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "indexer", "vocab", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    added = run("add", "HubSpot", "-s", "хабспот", "-s", "хаб спот", "--id", "hubspot")
    assert added.returncode == 0, added.stderr
    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["hubspot\tany\tHubSpot\tхабспот, хаб спот"]
    assert api.get("/v1/vocabulary/hubspot").json()["spellings"] == ["хабспот", "хаб спот"]
    assert run("add", "HubSpot", "--id", "hubspot").returncode == 1  # the id is taken
    assert run("add", "...").returncode == 1  # nothing searchable
    assert run("delete", "hubspot").returncode == 0
    missing = run("delete", "hubspot")
    assert missing.returncode == 1
    assert "no vocabulary term with id 'hubspot'" in missing.stderr
