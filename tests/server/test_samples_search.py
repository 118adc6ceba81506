"""The demo a head of sales would run, on the sample calls in samples/calls."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.index.loader import load_paths
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import read_call_file

SAMPLES = PROJECT_ROOT / "samples" / "calls"


@pytest.fixture
def samples_api(es: Elasticsearch, settings: Settings, api: TestClient) -> TestClient:
    summary = load_paths(
        es, settings, [SAMPLES], show_progress=False, tag=current_tagger(es, settings)
    )
    assert summary.failures == []
    assert summary.loaded == len(list(SAMPLES.glob("*.json")))
    return api


def hits_by_call(api: TestClient, q: str, **params: Any) -> dict[str, list[dict[str, Any]]]:
    response = api.get("/v1/search", params={"q": q, "size": 50, **params})
    assert response.status_code == 200, response.text
    return {call["call_id"]: call["hits"] for call in response.json()["calls"]}


def test_split_phrase_is_not_found_and_the_real_one_is(samples_api: TestClient) -> None:
    assert set(hits_by_call(samples_api, '"send me the contract"')) == {"en-0006-insurance"}
    assert set(hits_by_call(samples_api, '"пришлите договор"')) == {"ru-0007-leasing"}


def test_who_said_it(samples_api: TestClient) -> None:
    assert set(hits_by_call(samples_api, '"too expensive"', role="client")) == {"en-0002-pricing"}
    assert set(hits_by_call(samples_api, '"too expensive"', role="manager")) == {
        "en-0004-salesforce-switch"
    }
    assert set(hits_by_call(samples_api, '"это дорого"', role="manager")) == {"ru-0004-insurance"}


def test_one_number_three_spellings(samples_api: TestClient) -> None:
    expected = {"ru-0001-crm-demo", "ru-0005-bitrix-migration", "en-0007-leasing"}
    for typed in ["15000", "15 000", "15,000", '"15 000"']:
        assert set(hits_by_call(samples_api, typed)) == expected, typed


def test_hit_seconds_are_the_matched_words_seconds(samples_api: TestClient) -> None:
    hits = hits_by_call(samples_api, '"это дорого"')["ru-0003-furniture"]
    call = read_call_file(SAMPLES / "ru-0003-furniture.json")

    assert len(hits) == 2
    for hit in hits:
        utterance = call.utterances[hit["utterance_index"]]
        starts = [w.start for w in utterance.words]
        ends = [w.end for w in utterance.words]
        first = starts.index(hit["start"])
        last = ends.index(hit["end"])
        assert [w.text.strip(",.?!").casefold() for w in utterance.words[first : last + 1]] == [
            "это",
            "дорого",
        ]
        (span,) = hit["spans"]
        assert hit["text"][span[0] : span[1]].casefold() == "это дорого"
