"""The values the ASR stages hand each other, in one place.

audio → (VAD) ``Chunk`` → (recogniser) ``RecognizedSegment`` of ``TimedWord`` → contract words
(``indexer.transcript.Word``); mono: (diarizer) ``Diarization`` of ``SpeakerTurn`` → (words →
speakers) ``Attribution`` → (speakers → roles) ``RoleDecision``, from ``SpokenText``; then
``SpeakerWord`` → utterances. Stage code lives in the modules named beside each type; the
contract the pipeline emits is ``indexer/transcript.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.transcript import Role, RolesEvidence, Word


@dataclass(frozen=True)
class Chunk:
    """A speech region as the VAD found it (≤ ``chunk_s``), in seconds of the recording
    (``engine.Engine.speech_regions``)."""

    start: float
    end: float


@dataclass(frozen=True)
class TimedWord:
    """A recognised word as an engine reports it; times are None when it could not time it
    (``engine``, ``alignment``; made contract words by ``words.fill_untimed``)."""

    text: str
    start: float | None
    end: float | None
    score: float | None = None

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True)
class RecognizedSegment:
    """A stretch of recognised speech (``engine.Engine.recognize_words`` / ``recognize_text``,
    ``alignment.Aligner.align``)."""

    start: float
    end: float
    text: str
    words: tuple[TimedWord, ...] = ()  # empty when the engine gave text only


@dataclass(frozen=True)
class SpeakerTurn:
    """One stretch of one speaker, as diarization reports it (``diarization``)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Diarization:
    """Who spoke when, as one diarizer run found it (``diarization.Diarizer``)."""

    turns: list[SpeakerTurn]
    speakers_estimated: bool = True  # False: the count was given (metadata)
    notes: list[str] = field(default_factory=list)  # what the transcript should warn about


@dataclass(frozen=True)
class Attribution:
    """The speaker a word was given (``speakers.attribute_words``)."""

    speaker: str | None  # None: no turn near enough
    ambiguous: bool  # no speaker's turns covered the majority of the word


@dataclass(frozen=True)
class SpokenText:
    """What a speaker said when: the evidence the phrase rule looks at (``roles``)."""

    speaker: str
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class RoleDecision:
    """The roles of a mono call's speakers and what decided them (``roles.decide_roles``)."""

    roles: dict[str, Role]
    evidence: RolesEvidence
    confidence: float | None
    reason: str | None = None  # why nothing decided, for the transcript's warnings


@dataclass(frozen=True)
class SpeakerWord:
    """A contract word with its speaker and role, on the way to utterances
    (``segmentation.split_utterances``)."""

    word: Word
    speaker: str
    role: Role
