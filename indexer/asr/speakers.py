"""Words → diarized speakers, by time.

Diarization turns and recognised words come from different models, and their edges disagree by
a few hundred milliseconds; in a mono call a short reply ("угу", "да") can also sit inside the
other party's turn. The rule, per word (in time order):

1. **Majority**: the speaker whose turns cover more than half of the word's time has it.
2. **Ambiguous** (the word overlaps turns but no speaker covers the majority: it straddles a
   turn change, overlaps two turns, or is mostly in a gap): it stays with the speaker of the
   word before it when that speaker's turns overlap it at all — a turn is not cut by a word
   whose time is unclear — else it goes to the speaker who overlaps it most. Either way it is
   *marked*: counted in that speaker's ``ambiguous_words``, never silently reassigned.
3. **Between turns** (no overlap at all): the nearest turn within ``NEAREST_TURN_S`` of the
   word's midpoint, counted as ambiguous too; beyond that the word is unattributed (role
   ``unknown``).

A word is therefore never moved into another speaker's turn without a trace: either most of
it lies in that turn, or the call counts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.asr.schema import Attribution, SpeakerTurn
from indexer.transcript import Word

NEAREST_TURN_S = 1.0
MAJORITY = 0.5


def attribute_words(words: Sequence[Word], turns: Sequence[SpeakerTurn]) -> list[Attribution]:
    """Each word's speaker by the rule in the module docstring."""
    out: list[Attribution] = []
    previous: str | None = None
    for word in words:
        overlaps = _overlaps(word.start, word.end, turns)
        duration = word.end - word.start
        best = max(overlaps, key=lambda s: overlaps[s], default=None)
        # A millisecond of slack: an even split must not be decided by floating-point noise.
        if best is not None and (duration == 0 or overlaps[best] > MAJORITY * duration + 1e-3):
            chosen = Attribution(best, ambiguous=False)
        elif best is not None:
            keep = previous if previous in overlaps else best
            chosen = Attribution(keep, ambiguous=True)
        else:
            nearest = _nearest(word, turns)
            chosen = Attribution(nearest, ambiguous=nearest is not None)
        out.append(chosen)
        previous = chosen.speaker if chosen.speaker is not None else previous
    return out


def talk_by_speaker(turns: Sequence[SpeakerTurn]) -> dict[str, float]:
    """Seconds of turns per speaker, longest first."""
    talk: dict[str, float] = {}
    for turn in turns:
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + max(0.0, turn.end - turn.start)
    return dict(sorted(talk.items(), key=lambda item: -item[1]))


def _overlaps(start: float, end: float, turns: Sequence[SpeakerTurn]) -> dict[str, float]:
    covered: dict[str, float] = {}
    for turn in turns:
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > 0 or (start == end and turn.start <= start <= turn.end):
            covered[turn.speaker] = covered.get(turn.speaker, 0.0) + max(overlap, 0.0)
    return covered


def _nearest(word: Word, turns: Sequence[SpeakerTurn]) -> str | None:
    middle = (word.start + word.end) / 2
    nearest = min(turns, key=lambda t: _distance(middle, t), default=None)
    if nearest is not None and _distance(middle, nearest) <= NEAREST_TURN_S:
        return nearest.speaker
    return None


def _distance(moment: float, turn: SpeakerTurn) -> float:
    if turn.start <= moment <= turn.end:
        return 0.0
    return min(abs(moment - turn.start), abs(moment - turn.end))
