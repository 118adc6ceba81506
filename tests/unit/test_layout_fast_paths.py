"""The build side's fast paths of the term layout (indexer/search/layout.py) and the caches
behind them, held to the plain computation they replaced, restated here as the oracle, on the
sample calls and generated corpus calls (each call laid out twice, so the second layout is made
from warm caches), and on positions outside the first four hours or past the call's end."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.corpus import CorpusGenerator
from indexer.search.layout import (
    MAX_SECOND,
    CallLayout,
    TermLayout,
    second_token,
    term_layout,
)
from indexer.search.morphology import indexed_lemmas, lemmas
from indexer.search.transliteration import indexed_key
from indexer.settings import PROJECT_ROOT
from indexer.transcript import Call, read_call_file

SAMPLES = sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))


def sample_and_corpus_calls() -> list[Call]:
    generator = CorpusGenerator()
    generated = [Call.model_validate(generator.call(index)[0]) for index in range(12)]
    return [read_call_file(path) for path in SAMPLES] + generated


def plain_second_token(seconds: float) -> str:
    return f"{min(max(math.floor(seconds), 0), MAX_SECOND):05d}"


def plain_lemmas(term: str) -> tuple[str, str]:
    found = lemmas.__wrapped__(term)  # not the cache either
    return found[0], found[1] if len(found) > 1 else found[0]


def assert_plain(layout: TermLayout, words: list[dict[str, Any]], duration_s: float) -> None:
    """Every per-position list of the layout against a loop over its terms."""
    texts = [term.text for term in layout.terms]
    starts = [plain_second_token(words[t.first_word]["start"]) for t in layout.terms]
    to_ends = [plain_second_token(duration_s - words[t.last_word]["end"]) for t in layout.terms]
    assert layout.texts == texts
    assert layout.lemma == [plain_lemmas(text)[0] for text in texts]
    assert layout.lemma_alt == [plain_lemmas(text)[1] for text in texts]
    assert layout.translit == [indexed_key.__wrapped__(text) for text in texts]
    assert layout.start_s == starts
    assert layout.to_end_s == to_ends
    assert layout.start_tens == [token[:-1] for token in starts]
    assert layout.to_end_tens == [token[:-1] for token in to_ends]
    assert layout.term_positions == {
        text: [i for i, other in enumerate(texts) if other == text] for text in texts
    }


def test_the_layout_of_real_calls_is_the_plain_computation() -> None:
    said: set[str] = set()
    calls = sample_and_corpus_calls()
    for _laid_out_before in (False, True):  # the second time from the warm caches
        for call in calls:
            layouts = CallLayout(term_layout(u.words, call.duration_s) for u in call.utterances)
            for utterance, layout in zip(call.utterances, layouts, strict=True):
                words = [{"text": w.text, "start": w.start, "end": w.end} for w in utterance.words]
                assert_plain(layout, words, call.duration_s)
                said.update(layout.texts)
            assert layouts.terms == {text for layout in layouts for text in layout.texts}
    assert len(said) > 1000  # the calls say enough distinct terms to exercise the caches


def test_a_term_has_its_lemma_pair_from_the_cache_as_without_it() -> None:
    for text in ["стали", "дорого", "contracts", "15000", "[card]", "o'neil", "ёлка"]:
        assert indexed_lemmas(text) == plain_lemmas(text)
        assert indexed_lemmas(text) == indexed_lemmas.__wrapped__(text)


@pytest.mark.parametrize(
    ("start", "end", "duration_s"),
    [
        (14_399.7, 14_399.9, 14_500.0),  # the last second of the lookup table
        (14_400.0, 14_401.5, 14_500.0),  # past it: formatted
        (30.0, 95.0, 90.0),  # ends after the call: a negative distance to the end
        (200_000.0, 200_001.0, 200_002.0),  # past MAX_SECOND: clamped
        (0.0, 0.4, 0.4),
    ],
)
def test_positions_outside_the_lookup_take_the_plain_path(
    start: float, end: float, duration_s: float
) -> None:
    words = [
        {"text": "за", "start": 1.0, "end": 1.2},
        {"text": "15", "start": start, "end": start},
        {"text": "000", "start": start, "end": end},
        {"text": "рублей", "start": end, "end": end},
    ]
    layout = term_layout(words, duration_s)

    assert_plain(layout, words, duration_s)
    assert [term.text for term in layout.terms] == ["за", "15000", "рублей"]
    assert layout.start_s[1] == second_token(start)
