"""Recognizer tokens joined back into written words (indexer.asr.tokens)."""

from __future__ import annotations

import pytest

from indexer.asr.schema import TimedWord
from indexer.asr.tokens import merge_tokens


def _texts(words: list[TimedWord]) -> list[str]:
    return [w.text.strip() for w in words]


def test_decimals_and_abbreviations_become_one_word_with_outer_times() -> None:
    # The tokens faster-whisper gives for "at 6.20 a.m." in numbers_en.wav.
    raw = [
        TimedWord(" at", 1.84, 2.14, 0.9),
        TimedWord(" 6", 2.14, 2.32, 0.8),
        TimedWord(".20", 2.32, 2.8, 0.6),
        TimedWord(" a", 2.8, 2.98, 0.7),
        TimedWord(".m.", 2.98, 3.26, 0.95),
    ]
    merged = merge_tokens(raw)
    assert _texts(merged) == ["at", "6.20", "a.m."]
    assert (merged[1].start, merged[1].end, merged[1].score) == (2.14, 2.8, 0.6)
    assert (merged[2].start, merged[2].end) == (2.8, 3.26)
    assert merged[0] is raw[0]


@pytest.mark.parametrize(
    ("pieces", "written"),
    [
        ([" т", ".е."], "т.е."),
        ([" ivan", "@mail", ".ru"], "ivan@mail.ru"),
        ([" 15", ",000"], "15,000"),
        ([" $", "15"], "$15"),
        ([" 20", "%"], "20%"),
        ([" 10", ":30"], "10:30"),
        ([" e", "-mail"], "e-mail"),
    ],
)
def test_glued_pieces_are_joined(pieces: list[str], written: str) -> None:
    raw = [TimedWord(" said", 0.0, 0.5)] + [
        TimedWord(p, 1.0 + k, 1.5 + k) for k, p in enumerate(pieces)
    ]
    assert _texts(merge_tokens(raw)) == ["said", written]


def test_words_that_begin_with_a_space_stay_apart() -> None:
    raw = [TimedWord(" 15", 0.0, 0.4), TimedWord(" 000", 0.4, 0.8), TimedWord(" рублей.", 0.8, 1.2)]
    assert merge_tokens(raw) == raw
    # Tokens of a language without spaces are not glued by a joining character: left alone.
    cjk = [TimedWord("東京", 0.0, 0.4), TimedWord("都", 0.4, 0.6)]
    assert merge_tokens(cjk) == cjk


def test_untimed_pieces_take_the_times_of_the_timed_ones() -> None:
    merged = merge_tokens([TimedWord(" 6", None, None), TimedWord(".20", 2.3, 2.8)])
    assert (merged[0].text, merged[0].start, merged[0].end) == (" 6.20", 2.3, 2.8)
    untimed = merge_tokens([TimedWord(" 6", None, None), TimedWord(".20", None, None)])
    assert (untimed[0].start, untimed[0].end, untimed[0].timed) == (None, None, False)
