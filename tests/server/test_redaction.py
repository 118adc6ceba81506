"""Redaction on the real Elasticsearch and the real API: with masking on, neither the stored
transcript, the index (what Kibana reads), GET /v1/calls/{id}, search hits nor the CSV export
holds the digits; class tokens are searchable, the numbers are not; reindex applies a policy
change to every call and no index is ever written under two policies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from builders import make_call
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.errors import RedactionPolicyError
from indexer.index.definitions import current_index, index_redaction
from indexer.index.loader import load_calls
from indexer.index.reindex import needs_reindex, reindex
from indexer.index.store import TranscriptStore
from indexer.settings import Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall

CARD = "4276 7975 4323 1948"
SPOKEN_CARD = (
    "четыре два семь шесть, семь девять девять ноль, семь пять один один, шесть три семь два"
)
# What must never come back with masking on: the digits, written or spoken, and the e-mail.
SECRETS = re.compile(
    r"4276|7975|4323|1948|916|555-0132|415|семь девять девять ноль|шесть три семь два|"
    r"petrov|собака|john\.smith"
)


def _calls() -> list[Call]:
    return [
        make_call(
            "ru-card",
            [
                ("manager", "Стоимость 15 000 рублей, диктуйте номер карты"),
                ("client", f"Карта {SPOKEN_CARD}."),
                ("client", "Мой телефон +7 916 123-45-67, почта petrov собака mail точка ru"),
            ],
            language="ru",
        ),
        make_call(
            "en-card",
            [
                ("manager", "Can I take the card number?"),
                ("client", f"Sure, it is {CARD}. Call me on 415-555-0132 or john.smith@acme.com"),
            ],
        ),
        make_call("en-plain", [("client", "The price is fine, send the contract please")]),
    ]


@pytest.fixture
def masked(settings: Settings) -> Settings:
    return settings.model_copy(update={"redaction": "mask"})


@pytest.fixture
def masked_api(masked: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(masked)) as client:
        yield client


def _on_disk(path: Path) -> str:
    """A stored transcript as the bytes on disk say it (the store keeps zstd-compressed JSON)."""
    return zstandard.ZstdDecompressor().decompress(path.read_bytes()).decode("utf-8")


def _load(es: Elasticsearch, settings: Settings, calls: list[Call]) -> None:
    summary = load_calls(
        es,
        settings,
        [SourcedCall("test", call) for call in calls],
        tag=current_tagger(es, settings),
    )
    assert summary.failures == []
    assert summary.loaded == len(calls)


def _found(api: TestClient, q: str) -> list[str]:
    response = api.get("/v1/search", params={"q": q})
    assert response.status_code == 200, response.text
    return sorted(call["call_id"] for call in response.json()["calls"])


def test_masking_leaves_no_digits_anywhere_and_tokens_are_searchable(
    es: Elasticsearch, masked: Settings, masked_api: TestClient
) -> None:
    _load(es, masked, _calls())
    store = TranscriptStore.of(masked)
    assert store is not None
    for call_id in ("ru-card", "en-card"):
        stored = _on_disk(store.path(call_id))
        assert not SECRETS.search(stored), stored
        assert "[card]" in stored
        source = es.get(index=masked.calls_alias, id=call_id)["_source"]  # what Kibana reads
        assert not SECRETS.search(json.dumps(source, ensure_ascii=False))
        detail = masked_api.get(f"/v1/calls/{call_id}")
        assert detail.status_code == 200
        assert not SECRETS.search(detail.text)
        assert detail.json()["client"]["phone"] == "[phone]"
    ru = masked_api.get("/v1/calls/ru-card").json()
    assert ru["utterances"][1]["text"] == "Карта [card]."
    assert ru["utterances"][2]["text"] == "Мой телефон [phone], почта [email]"

    # The class tokens are searchable, alone, by role and in phrases; never as the plain word.
    assert _found(masked_api, "[card]") == ["en-card", "ru-card"]
    assert _found(masked_api, "client:[phone]") == ["en-card", "ru-card"]
    assert _found(masked_api, "manager:[card]") == []
    assert _found(masked_api, '"телефон [phone]"') == ["ru-card"]
    assert _found(masked_api, "[email] AND NOT [passport]") == ["en-card", "ru-card"]
    assert _found(masked_api, "card") == ["en-card"]  # the manager's word, not the token
    # The numbers themselves find nothing; a price is no personal data and still found.
    for q in (CARD, "4276", "1948", '"семь девять девять ноль"', "415-555-0132", "petrov"):
        assert _found(masked_api, q) == [], q
    assert _found(masked_api, "15 000") == ["ru-card"]

    hits = masked_api.get("/v1/search", params={"q": "[card] OR [phone]"}).json()
    assert not SECRETS.search(json.dumps(hits, ensure_ascii=False))
    matched = {hit["matched"] for call in hits["calls"] for hit in call["hits"]}
    assert {"[card]", "[phone]"} <= matched
    export = masked_api.get("/v1/search.csv", params={"q": "[card]"})
    assert export.status_code == 200
    assert "[card]" in export.text
    assert not SECRETS.search(export.text)


def test_reindex_applies_a_policy_change_to_every_call(
    es: Elasticsearch, settings: Settings, masked: Settings, api: TestClient
) -> None:
    _load(es, settings, _calls())
    assert _found(api, "4276") == ["en-card"]  # off: as transcribed
    assert index_redaction(es, str(current_index(es, settings.calls_alias))) == "off"

    # The settings now say mask: writing into the unredacted index is refused, reindex is due.
    with pytest.raises(RedactionPolicyError, match="reindex"):
        load_calls(es, masked, [SourcedCall("test", _calls()[2])], tag=current_tagger(es, masked))
    assert needs_reindex(es, masked)
    result = reindex(es, masked, tag=current_tagger(es, masked))
    assert (result.redaction_before, result.redaction, result.redacted) == (
        "off",
        "mask",
        3,
    )  # every client phone too
    assert result.documents == 3
    target = str(current_index(es, settings.calls_alias))
    assert target == result.target
    assert index_redaction(es, target) == "mask"
    assert not needs_reindex(es, masked)

    store = TranscriptStore.of(masked)
    assert store is not None
    for call in store.calls():
        assert not SECRETS.search(call.model_dump_json()), call.call_id
    for hit in es.search(index=target, size=10)["hits"]["hits"]:
        assert not SECRETS.search(json.dumps(hit["_source"], ensure_ascii=False))
    with TestClient(create_app(masked)) as masked_api:
        assert _found(masked_api, "[card]") == ["en-card", "ru-card"]
        assert _found(masked_api, "4276") == []
        assert _found(masked_api, "contract") == ["en-plain"]
    # A load under the old policy is refused now: the index never mixes the two.
    with pytest.raises(RedactionPolicyError):
        load_calls(
            es, settings, [SourcedCall("test", _calls()[0])], tag=current_tagger(es, settings)
        )


def test_kept_originals_let_a_policy_be_lifted(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    originals_dir = tmp_path / "originals"
    masked = settings.model_copy(
        update={"redaction": "mask", "redaction_originals_dir": originals_dir}
    )
    _load(es, masked, _calls())
    kept = TranscriptStore.originals(masked)
    assert kept is not None
    assert kept.call_ids() == ["en-card", "en-plain", "ru-card"]
    assert CARD in _on_disk(kept.path("en-card"))

    lifted = settings.model_copy(update={"redaction_originals_dir": originals_dir})
    result = reindex(es, lifted, tag=current_tagger(es, lifted))
    assert (result.redaction_before, result.redaction, result.redacted) == ("mask", "off", 3)
    with TestClient(create_app(lifted)) as api:
        assert _found(api, "4276") == ["en-card"]
        assert _found(api, '"семь девять девять ноль"') == ["ru-card"]
        assert _found(api, "[card]") == []


def test_without_originals_lifting_the_policy_keeps_calls_masked(
    es: Elasticsearch, settings: Settings, masked: Settings
) -> None:
    _load(es, masked, _calls())
    result = reindex(es, settings, tag=current_tagger(es, settings))
    assert (result.redaction_before, result.redaction, result.redacted) == ("mask", "off", 0)
    with TestClient(create_app(settings)) as api:
        assert _found(api, "[card]") == ["en-card", "ru-card"]
        assert _found(api, "4276") == []


def test_reindex_accepts_probes_that_only_redaction_changed(
    es: Elasticsearch, settings: Settings, masked: Settings
) -> None:
    """The probes are the first two terms of the first calls' first utterances: here "4276
    7975", which the masked index rightly no longer finds."""
    calls = [make_call("a-card-first", [("client", f"{CARD} is the card")])]
    _load(es, settings, calls)
    result = reindex(es, masked, tag=current_tagger(es, masked))
    assert result.probes >= 1
    assert result.redacted == 1
    with TestClient(create_app(masked)) as api:
        assert _found(api, '"4276 7975"') == []
        assert _found(api, '"[card] is the card"') == ["a-card-first"]
