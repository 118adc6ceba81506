"""Word timings: every word leaves the transcriber with a start and an end.

The wav2vec2 aligner only times words made of characters in its vocabulary, so numbers
("2025"), symbols ("%") and some punctuation-only tokens come back untimed. Search jumps to a
word's start, so those words get times interpolated from their timed neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.asr.schema import TimedWord
from indexer.transcript import Word


def fill_untimed(words: Sequence[TimedWord], span_start: float, span_end: float) -> list[Word]:
    """Contract words, in order, with untimed ones placed between their timed neighbours.

    A run of untimed words shares the gap between the previous timed word's end (or
    ``span_start``) and the next timed word's start (or ``span_end``) in proportion to its
    characters, as speech time roughly follows length. Timed words keep their times, clamped
    so that times never go backwards. Empty words are dropped.
    """
    kept = [w for w in words if w.text.strip()]
    out: list[Word] = []
    cursor = max(0.0, span_start)
    i = 0
    while i < len(kept):
        word = kept[i]
        if word.start is not None and word.end is not None:
            start = max(cursor, word.start)
            end = max(start, word.end)
            out.append(_word(word, start, end))
            cursor = end
            i += 1
            continue
        run_end = i
        while run_end < len(kept) and not kept[run_end].timed:
            run_end += 1
        following = kept[run_end].start if run_end < len(kept) else None
        limit = max(cursor, following if following is not None else span_end)
        run = kept[i:run_end]
        weights = [len(w.text.strip()) for w in run]
        total = sum(weights)
        position = cursor
        for untimed, weight in zip(run, weights, strict=True):
            step = (limit - cursor) * weight / total
            out.append(_word(untimed, position, position + step))
            position += step
        cursor = limit
        i = run_end
    return out


def _word(word: TimedWord, start: float, end: float) -> Word:
    score = None if word.score is None else min(1.0, max(0.0, float(word.score)))
    return Word(text=word.text.strip(), start=round(start, 3), end=round(end, 3), score=score)
