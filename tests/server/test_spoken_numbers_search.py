"""Numbers said in words are found by digits, at the seconds of the words said; Latin and
Cyrillic spellings meet in mode=variants (real Elasticsearch, through the API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from builders import GAP_S, TURN_GAP_S, WORD_S, make_call
from fastapi.testclient import TestClient

CALLS = [
    make_call("ru-price", [("client", "итого пятнадцать тысяч рублей в месяц")], language="ru"),
    make_call("ru-dative", [("manager", "к пятнадцати тысячам добавим доставку")], language="ru"),
    make_call("ru-digits", [("client", "это 15 000 рублей")], language="ru"),
    make_call("ru-small", [("client", "полторы тысячи рублей")], language="ru"),
    make_call("ru-phone", [("client", "четыре пять шесть")], language="ru"),
    make_call("en-price", [("client", "it is fifteen hundred dollars a month")]),
    make_call("en-other", [("client", "maybe fifteen thousand then")]),
    make_call("ru-brand", [("client", "мы работаем в сейлсфорс и битрикс")], language="ru"),
    make_call("en-brand", [("client", "we moved from Salesforce to HubSpot")]),
]


def _word_s(index: int) -> tuple[float, float]:
    """Seconds of the word ``index`` of a one-utterance builder call."""
    start = round(index * (WORD_S + GAP_S), 3)
    return start, round(start + WORD_S, 3)


@pytest.fixture
def loaded(index_calls: Callable[..., None]) -> None:
    index_calls(*CALLS)
    assert TURN_GAP_S > 0


def _search(api: TestClient, q: str, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _hits(body: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    return {
        call["call_id"]: [(hit["start"], hit["end"]) for hit in call["hits"]]
        for call in body["calls"]
    }


@pytest.mark.usefixtures("loaded")
def test_digits_find_numbers_said_in_words_at_their_seconds(api: TestClient) -> None:
    hits = _hits(_search(api, "15000"))
    assert set(hits) == {"ru-price", "ru-dative", "ru-digits", "en-other"}
    # "пятнадцать тысяч" are words 1 and 2: the hit runs from the first start to the last end.
    assert hits["ru-price"] == [(_word_s(1)[0], _word_s(2)[1])]
    assert hits["ru-dative"] == [(_word_s(1)[0], _word_s(2)[1])]
    assert hits["ru-digits"] == [(_word_s(1)[0], _word_s(2)[1])]
    assert hits["en-other"] == [(_word_s(1)[0], _word_s(2)[1])]
    assert set(_hits(_search(api, "1500"))) == {"ru-small", "en-price"}


@pytest.mark.usefixtures("loaded")
def test_a_number_in_a_phrase_and_near(api: TestClient) -> None:
    hits = _hits(_search(api, '"15 000 рублей"'))
    assert set(hits) == {"ru-price", "ru-digits"}
    assert hits["ru-price"] == [(_word_s(1)[0], _word_s(3)[1])]
    assert set(_hits(_search(api, '"1500 dollars"'))) == {"en-price"}
    assert set(_hits(_search(api, "15000 NEAR/0 рублей"))) == {"ru-price", "ru-digits"}
    assert set(_hits(_search(api, '"15000 рублей"', mode="forms"))) == {"ru-price", "ru-digits"}


@pytest.mark.usefixtures("loaded")
def test_different_numbers_and_digit_by_digit_do_not_match(api: TestClient) -> None:
    assert _search(api, "150000")["total"] == 0
    assert _search(api, "15")["total"] == 0
    assert _search(api, "456")["total"] == 0
    assert set(_hits(_search(api, "5"))) == {"ru-phone"}


@pytest.mark.usefixtures("loaded")
def test_variants_meet_across_scripts_and_exact_stays_exact(api: TestClient) -> None:
    assert set(_hits(_search(api, "salesforce"))) == {"en-brand"}
    variants = _hits(_search(api, "salesforce", mode="variants"))
    assert set(variants) == {"en-brand", "ru-brand"}
    assert variants["ru-brand"] == [_word_s(3)]
    assert set(_hits(_search(api, "сейлсфорс", mode="variants"))) == {"en-brand", "ru-brand"}
    assert set(_hits(_search(api, "bitrix", mode="variants"))) == {"ru-brand"}
    assert set(_hits(_search(api, "хабспот", mode="variants"))) == {"en-brand"}
    # Ordinary words of the calls meet nothing in the other script.
    assert _search(api, "работаем", mode="variants")["total"] == 1
    assert _search(api, "moved", mode="variants")["total"] == 1
