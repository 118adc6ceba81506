"""The transliteration figures of docs/query-language.md hold on the real Elasticsearch, through
the API: every word of the fixed list (``bench/transliteration.py``) said in a call of its own,
every word searched with ``mode=variants``; the Latin–Cyrillic pairs that meet are exactly the
ones the measurement counts, so the recall, precision, misses and false friends are the same."""

from __future__ import annotations

from collections.abc import Callable

from builders import make_call, search
from fastapi.testclient import TestClient

from bench.transliteration import BRANDS, COGNATES, ORDINARY_CYRILLIC, ORDINARY_LATIN, measure


def test_the_fixed_list_meets_across_scripts_as_measured(
    api: TestClient, index_calls: Callable[..., None]
) -> None:
    latin = sorted(set(BRANDS) | set(COGNATES) | set(ORDINARY_LATIN))
    cyrillic = sorted(
        {s for spellings in BRANDS.values() for s in spellings} | set(ORDINARY_CYRILLIC)
    )
    said_in: dict[str, str] = {}  # call id → the one word it says
    calls = []
    for number, word in enumerate([*latin, *cyrillic]):
        call_id = f"w{number:03d}"
        said_in[call_id] = word
        language = "en" if word in latin else "ru"
        calls.append(make_call(call_id, [("client", word)], language=language))
    index_calls(*calls)

    met: set[tuple[str, str]] = set()  # (Latin, Cyrillic), whichever of the two was typed
    for typed in [*latin, *cyrillic]:
        body = search(api, f'"{typed}"', mode="variants", size=100)
        assert body["total"] == len(body["calls"]) < 100, typed
        found = {said_in[call["call_id"]] for call in body["calls"]}
        assert typed in found, f"{typed!r} does not find the call that says it"
        if typed in latin:
            met |= {(typed, word) for word in found if word in cyrillic}
        else:
            met |= {(word, typed) for word in found if word in latin}

    figures = measure()
    truth = {(lat, cyr) for lat, spellings in {**BRANDS, **COGNATES}.items() for cyr in spellings}
    assert sorted(truth - met) == figures.missed
    assert sorted(met - truth) == figures.false_friends
    assert len(met & truth) == figures.found
    assert len(met) == figures.matched
    # As docs/query-language.md names them.
    assert figures.missed == [("gmail", "джимейл"), ("integration", "интеграция"),
                              ("notion", "ноушн")]  # fmt: skip
    assert figures.false_friends == [("trial", "трелло")]
