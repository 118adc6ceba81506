"""Utterances: words grouped into what one party said between pauses.

Whisper's VAD chunks run up to 30 s and span several turns; search results and the player
need turns. A new utterance starts where the speaker changes or where the silence between
two words exceeds ``max_pause_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from indexer.asr.schema import SpeakerWord
from indexer.transcript import Utterance


def split_utterances(words: Sequence[SpeakerWord], max_pause_s: float) -> list[Utterance]:
    """Consecutive words (in time order) → utterances, split at speaker changes and pauses."""
    utterances: list[Utterance] = []
    group: list[SpeakerWord] = []
    for item in words:
        if group and (
            item.speaker != group[-1].speaker or item.word.start - group[-1].word.end > max_pause_s
        ):
            utterances.append(_utterance(group))
            group = []
        group.append(item)
    if group:
        utterances.append(_utterance(group))
    return utterances


def merge_in_time_order(tracks: Iterable[Sequence[Utterance]]) -> list[Utterance]:
    """Utterances of separately transcribed channels, interleaved by start time.

    Stable on ties so that simultaneous starts keep channel order (left before right).
    """
    return sorted((u for track in tracks for u in track), key=lambda u: u.start)


def _utterance(group: Sequence[SpeakerWord]) -> Utterance:
    words = [item.word for item in group]
    return Utterance(
        speaker=group[0].speaker,
        role=group[0].role,
        start=words[0].start,
        end=max(w.end for w in words),
        text=" ".join(w.text for w in words),
        words=words,
    )
