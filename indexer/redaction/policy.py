"""What redaction does to a call: find its personal data and mask it in the transcript.

``EARSHOT_REDACTION`` (``indexer.settings``) chooses the policy:

* ``off``: calls are stored, indexed and served as transcribed;
* ``mask``: every detected span of words becomes one word, its class token (``[card]``), with
  the span's first start and last end; the utterance text says the token where the words were.
  The client's phone in the call's metadata becomes ``[phone]``. The transcript store and the
  index keep only this copy; the original is kept only when the operator names a directory
  for it (``EARSHOT_REDACTION_ORIGINALS_DIR``);
* ``bleep``: as ``mask``, and the recording is copied with the spans silenced on every channel
  (``indexer.redaction.audio``); the copy is what the call's ``audio.uri`` names and what the
  API serves.

Masking is idempotent: a masked call has nothing left to detect, and the words of its class
tokens carry the seconds a bleep needs, so a masked call can be bleeped later (reindex).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from indexer.index.documents import locate_words
from indexer.index.store import TranscriptStore
from indexer.redaction.audio import bleep_file, local_path
from indexer.redaction.classes import CLASS_TOKEN_RE, PiiClass
from indexer.redaction.detect import NUMBER_CLASSES, Detection, detect_words
from indexer.settings import Settings
from indexer.transcript import Call, Utterance, Word

_TRAILING_PUNCTUATION = re.compile(r"[^\w\]]*$")


class Policy(StrEnum):
    OFF = "off"
    MASK = "mask"
    BLEEP = "bleep"


@dataclass(frozen=True, slots=True)
class Span:
    """Words ``first``..``last`` (inclusive) of utterance ``utterance`` are of class ``pii``;
    they are said from ``start`` to ``end`` seconds."""

    pii: PiiClass
    utterance: int
    first: int
    last: int
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Redacted:
    call: Call
    spans: tuple[Span, ...]  # what was masked now (empty for a call masked before)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for span in self.spans:
            found[span.pii.value] += 1
        return dict(sorted(found.items()))


def find_spans(call: Call) -> list[Span]:
    """Personal data in the call: each speaker's words in call order are one stream, so a
    number read over two utterances is one detection (cut into one span per utterance); and
    digits one speaker's words hold while another speaker's number is said are that number
    (the client's card echoed on the manager's line, as Whisper heard it there)."""
    streams: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for u_index, utterance in enumerate(call.utterances):
        streams[utterance.speaker] += [
            (u_index, w_index) for w_index in range(len(utterance.words))
        ]
    spoken = {
        speaker: [call.utterances[u].words[w] for u, w in refs] for speaker, refs in streams.items()
    }
    found = {speaker: _detect(words) for speaker, words in spoken.items()}
    numbers = {
        speaker: [
            (d.pii, words[d.first].start, words[d.last].end)
            for d in found[speaker]
            if d.pii in NUMBER_CLASSES
        ]
        for speaker, words in spoken.items()
    }
    spans: list[Span] = []
    for speaker, refs in streams.items():
        elsewhere = [said for other, saids in numbers.items() if other != speaker for said in saids]
        detections = _detect(spoken[speaker], elsewhere) if elsewhere else found[speaker]
        for detection in detections:
            covered = refs[detection.first : detection.last + 1]
            for u_index in sorted({u for u, _ in covered}):
                indices = [w for u, w in covered if u == u_index]
                utterance_words = call.utterances[u_index].words
                spans.append(
                    Span(
                        detection.pii,
                        u_index,
                        indices[0],
                        indices[-1],
                        utterance_words[indices[0]].start,
                        utterance_words[indices[-1]].end,
                    )
                )
    return sorted(spans, key=lambda span: (span.utterance, span.first))


def _detect(
    words: list[Word], said_elsewhere: Sequence[tuple[PiiClass, float, float]] = ()
) -> list[Detection]:
    return detect_words(
        [word.text for word in words],
        [word.start for word in words],
        [word.end for word in words],
        said_elsewhere,
    )


def _mask_utterance(utterance: Utterance, spans: list[Span]) -> Utterance:
    words = list(utterance.words)
    located = locate_words(utterance.text, words)
    text = utterance.text
    exact_text = all(located[i] is not None for span in spans for i in (span.first, span.last))
    # Right to left, so earlier indices and character offsets stay valid.
    for span in sorted(spans, key=lambda s: s.first, reverse=True):
        last_text = words[span.last].text
        trailing = _TRAILING_PUNCTUATION.search(last_text)
        token = span.pii.token + (trailing.group() if trailing else "")
        words[span.first : span.last + 1] = [Word(text=token, start=span.start, end=span.end)]
        if exact_text:
            begin, end = located[span.first], located[span.last]
            assert begin is not None
            assert end is not None
            text = text[: begin[0]] + token + text[end[1] :]
    if not exact_text:
        # The text does not hold the words as recognised: rebuilt from the masked words so
        # that nothing of the span survives in it.
        text = " ".join(word.text for word in words)
    return utterance.model_copy(update={"words": words, "text": text})


def mask_call(call: Call, spans: list[Span]) -> Call:
    """The call with each span replaced by its class token (and the client's phone masked)."""
    by_utterance: dict[int, list[Span]] = defaultdict(list)
    for span in spans:
        by_utterance[span.utterance].append(span)
    utterances = [
        _mask_utterance(utterance, by_utterance[index]) if index in by_utterance else utterance
        for index, utterance in enumerate(call.utterances)
    ]
    update: dict[str, object] = {"utterances": utterances}
    if call.client.phone and not CLASS_TOKEN_RE.fullmatch(call.client.phone):
        update["client"] = call.client.model_copy(update={"phone": PiiClass.PHONE.token})
    return call.model_copy(update=update)


def redact_call(call: Call, policy: Policy) -> Redacted:
    """The call as ``policy`` keeps it (the recording aside: see ``indexer.redaction.audio``)."""
    if policy is Policy.OFF:
        return Redacted(call, ())
    spans = find_spans(call)
    return Redacted(mask_call(call, spans), tuple(spans))


def masked_times(call: Call) -> list[tuple[float, float]]:
    """The seconds of every class token in a masked call: what a bleep silences."""
    return [
        (word.start, word.end)
        for utterance in call.utterances
        for word in utterance.words
        if CLASS_TOKEN_RE.match(word.text)
    ]


def bleeped_path(settings: Settings, call: Call) -> Path:
    """Where the bleeped copy of the call's recording lives."""
    assert settings.redaction_audio_dir is not None
    suffix = local_path(call.audio.uri).suffix or ".wav"
    return settings.redaction_audio_dir / f"{call.call_id}{suffix}"


def is_bleeped(settings: Settings, call: Call) -> bool:
    return settings.redaction_audio_dir is not None and local_path(call.audio.uri) == bleeped_path(
        settings, call
    )


def apply_policy(call: Call, settings: Settings) -> Redacted:
    """The call as the configured policy keeps it; with ``bleep`` the bleeped recording is
    written first and the call names it. Raises AudioError when the recording cannot be
    bleeped: such a call must not be kept, as its recording would give the digits away."""
    policy = Policy(settings.redaction)
    redacted = redact_call(call, policy)
    if policy is not Policy.BLEEP:
        return redacted
    target = bleeped_path(settings, call)
    if not redacted.spans and is_bleeped(settings, call) and target.is_file():
        return redacted  # bleeped before, and nothing new to silence (a reindex)
    source = local_path(call.audio.uri)
    if not source.is_absolute() and settings.audio_root is not None:
        source = settings.audio_root / source
    bleep_file(
        source, target, masked_times(redacted.call), padding_s=settings.redaction_bleep_padding_s
    )
    audio = redacted.call.audio.model_copy(update={"uri": str(target)})
    return Redacted(redacted.call.model_copy(update={"audio": audio}), redacted.spans)


def remove_copies(settings: Settings, call_id: str) -> int:
    """Delete what redaction keeps of a call beside the store (consent withdrawn): its
    original transcript and its bleeped recording. Returns how many files went."""
    removed = 0
    originals = TranscriptStore.originals(settings)
    if originals is not None and originals.remove(call_id):
        removed += 1
    audio_dir = settings.redaction_audio_dir
    if audio_dir is not None and audio_dir.is_dir():
        # By stem, never a glob: "ru.1.wav" belongs to call "ru.1", not to call "ru".
        for path in audio_dir.iterdir():
            if path.stem == call_id and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    return removed
