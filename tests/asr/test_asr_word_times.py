"""Word starts against true word boundaries (festival's own, see scripts/make-test-audio)."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from asr_helpers import normalise

from indexer.transcript import Call

pytestmark = pytest.mark.asr

# The first word of a turn used to start at its VAD region's padded start: 0.28-0.39 s early on
# ru_call (scripts/bench-word-times, docs/asr.md). Now measured: median 0.007 s, all within 0.1 s.
TURN_FIRST_MAX_ERROR_S = 0.2
TURN_FIRST_MEDIAN_ERROR_S = 0.1


def turn_first_errors(call: Call, truth: dict[str, Any]) -> list[float]:
    """Recognised − true start of each turn's first word, where it was heard as that word."""
    errors = []
    for turn in truth["turns"]:
        first = turn["words"][0]
        heard = [
            w
            for u in call.utterances
            if u.role.value == turn["role"]
            for w in u.words
            if turn["start"] - 1.0 <= w.start <= turn["end"]
        ]
        if heard and normalise(heard[0].text) == normalise(first["text"]):
            errors.append(heard[0].start - first["start"])
    return errors


def test_the_first_word_of_a_turn_starts_at_the_word(
    synthetic_calls: dict[str, tuple[Call, Any]],
) -> None:
    call, truth = synthetic_calls["ru_call"]
    errors = turn_first_errors(call, truth)
    print(f"\n[ru_call] turn-first start errors: {[round(e, 3) for e in errors]}")
    assert len(errors) >= len(truth["turns"]) - 2, "too few turn-first words recognised"
    assert max(abs(e) for e in errors) <= TURN_FIRST_MAX_ERROR_S
    assert statistics.median(abs(e) for e in errors) <= TURN_FIRST_MEDIAN_ERROR_S
