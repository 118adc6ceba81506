"""Speech packing: a channel's speech regions cut out, joined, and decoded in full windows.

Whisper reads audio in 30 s windows and costs the same per window whatever it holds. Windows
laid over wall-clock time (WhisperX's merged VAD chunks) carry every silence of the channel:
on a stereo call each channel is silent while the other party talks, so about half of every
window is silence. Here each speech region, widened by a margin (``pad_s``) that keeps word
onsets the VAD clipped and a little context, becomes a *span*; the spans are joined end to
end into one packed signal, which is cut into windows of at most ``window_s`` at span
boundaries only (never inside speech). Times Whisper reports in the packed signal are mapped
back to the recording through the spans: a word belongs to the span holding its midpoint, and
its start and end are clamped into that span, so mapped times never go backwards.

The margin is context for the recogniser, not speech: Whisper's word timing puts the first word
of a window (and of a span after a cut) at the very start of what it was given, so a word
placed in a span's margin (or in a pause between two regions of one span) is moved to where
the sound begins before the region that follows (``onset``).

This is what faster-whisper's own VAD mode does (``collect_chunks`` with
``SpeechTimestampsMap``), with WhisperX's pyannote regions and a margin around each region.

Several channels — of one recording or of several short ones — share windows the same way
(``combine``): their spans are laid end to end in one packed signal, each span remembering its
*source* (which channel of which recording), and windows are cut at span boundaries as for
one channel. A short call then costs its speech, not a whole window of its own.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from indexer.asr.audio import SAMPLE_RATE, Samples


@dataclass(frozen=True)
class Span:
    """A stretch of the recording kept for decoding, and where it sits in the packed signal."""

    start: float  # seconds in the recording
    end: float
    packed_start: float  # seconds in the packed signal
    # The VAD's speech regions inside the span (the rest is margin); empty: all of it is speech.
    speech: tuple[tuple[float, float], ...] = ()
    source: int = 0  # whose recording (``combine``): the index of its channel among the sources

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Packing:
    spans: tuple[Span, ...]
    windows: tuple[tuple[float, float], ...]  # [start, end) in packed seconds, each ≤ window_s

    def to_recording(self, packed_s: float, span: int | None = None) -> float:
        """A packed-signal time as recording time (in ``span`` when given)."""
        index = self.span_at(packed_s) if span is None else span
        chosen = self.spans[index]
        offset = min(max(packed_s - chosen.packed_start, 0.0), chosen.length)
        return chosen.start + offset

    def span_at(self, packed_s: float) -> int:
        starts = [s.packed_start for s in self.spans]
        return max(0, min(bisect.bisect_right(starts, packed_s) - 1, len(self.spans) - 1))

    def interval(self, start: float, end: float) -> tuple[float, float]:
        """A packed [start, end] (a word) in recording time, both ends in its midpoint's span."""
        index = self.span_at((start + end) / 2)
        return self.to_recording(start, index), self.to_recording(end, index)

    def word_interval(self, samples: Samples, start: float, end: float) -> tuple[float, float]:
        """``interval``, with a start that fell in non-speech (a margin, or the pause between
        two regions of one span) moved to where the sound begins before the next region (never
        past that region's start, nor past the word's end)."""
        return self._word_interval(self.span_at((start + end) / 2), samples, start, end)

    def place_word(
        self, sources: Sequence[Samples], start: float, end: float
    ) -> tuple[int, float, float]:
        """A packed [start, end] (a word) of a ``combine``d packing: the source it belongs to
        (its midpoint's span's) and its ``word_interval`` in that source's recording."""
        index = self.span_at((start + end) / 2)
        source = self.spans[index].source
        return (source, *self._word_interval(index, sources[source], start, end))

    def _word_interval(
        self, index: int, samples: Samples, start: float, end: float
    ) -> tuple[float, float]:
        first, last = self.to_recording(start, index), self.to_recording(end, index)
        previous_end = self.spans[index].start
        for region_start, region_end in self.spans[index].speech:
            if first < region_start:
                earliest = max(first, previous_end)
                first = min(onset(samples, earliest, region_start), last)
                break
            if first < region_end:
                break  # inside speech: the recogniser's time stands
            previous_end = region_end
        return first, last


def plan(
    regions: Sequence[tuple[float, float]], duration_s: float, pad_s: float, window_s: float
) -> Packing:
    """Spans and windows for speech ``regions`` (sorted, in seconds) of a recording.

    Worked in whole samples, so that span lengths add up exactly in the packed signal.
    """
    pad, window, total = _n(pad_s), _n(window_s), _n(duration_s)
    spans: list[tuple[int, int, list[tuple[int, int]]]] = []  # start, end, speech regions
    for region_start, region_end in regions:
        region = (_n(region_start), _n(region_end))
        start = max(0, region[0] - pad)
        end = min(total, region[1] + pad)
        if spans and start <= spans[-1][1]:
            previous_start, previous_end, speech = spans[-1]
            if max(end, previous_end) - previous_start <= window:
                # overlapping: one span
                spans[-1] = (previous_start, max(end, previous_end), [*speech, region])
                continue
            start = previous_end  # would outgrow a window: touch, but do not overlap
        spans.extend((a, b, [region]) for a, b in _split(start, end, window))
    placed = [
        Span(
            start / SAMPLE_RATE,
            end / SAMPLE_RATE,
            0.0,
            tuple(
                (max(a, start) / SAMPLE_RATE, min(b, end) / SAMPLE_RATE)
                for a, b in speech
                if min(b, end) > max(a, start)
            ),
        )
        for start, end, speech in spans
        if end > start
    ]
    return _laid_out(placed, window)


def combine(
    packings: Sequence[Packing],
    window_s: float,
    shared: bool = True,
    together: Sequence[int] | None = None,
) -> Packing:
    """Several sources' spans in one packed signal, windows cut at span boundaries only.

    Source ``i`` is ``packings[i]`` (each from ``plan``, on its own recording); its spans keep
    their order and recording times and say ``source = i``. A window never splits a span, so
    a word is in one source's speech, and every source's spans come before the next source's.
    ``together`` (one number per source): a window also ends where that number changes, so
    only consecutive sources with the same number share windows (the channels of a recording
    that is decoded apart from the others). ``shared`` False: every source in windows of its
    own (as ``plan`` cuts them, decoded in one batch); True and no ``together``: all share.
    """
    spans = [replace(s, source=i) for i, packing in enumerate(packings) for s in packing.spans]
    if together is None:
        together = [0] * len(packings) if shared else range(len(packings))
    return _laid_out(spans, _n(window_s), together)


def unheard_sources(
    packing: Packing, words: Sequence[tuple[float, float]], least_s: float, slack_s: float
) -> set[int]:
    """Sources of ``combine``d windows whose speech the recogniser left out.

    Whisper may end a window's text early when unrelated recordings share it (seen on the
    real recordings: a second call's words all missing). ``words`` are the recognised words'
    packed [start, end]; a source that shares a window with another and has at least
    ``least_s`` of the VAD's speech in it later than ``slack_s`` after its last word there
    (or none of its words at all) counts as unheard, to be recognised again on its own."""
    starts = [start for start, _ in packing.windows]

    def window_of(packed_s: float) -> int:
        return max(0, bisect.bisect_right(starts, packed_s) - 1)

    heard: dict[tuple[int, int], float] = {}  # (window, source) → end of its last word
    for start, end in words:
        middle = (start + end) / 2
        key = (window_of(middle), packing.spans[packing.span_at(middle)].source)
        heard[key] = max(heard.get(key, end), end)
    sharing: dict[int, set[int]] = {}
    for span in packing.spans:
        sharing.setdefault(window_of(span.packed_start), set()).add(span.source)
    missed: dict[tuple[int, int], float] = {}
    for span in packing.spans:
        window = window_of(span.packed_start)
        if len(sharing[window]) < 2:
            continue  # alone in its window: decoding it again would give the same
        key = (window, span.source)
        after = heard.get(key, -math.inf) + slack_s
        for start, end in span.speech or ((span.start, span.end),):
            packed_end = span.packed_start + end - span.start
            packed_start = span.packed_start + start - span.start
            missed[key] = missed.get(key, 0.0) + max(0.0, packed_end - max(packed_start, after))
    return {source for (_, source), seconds in missed.items() if seconds >= least_s}


def _laid_out(spans: Sequence[Span], window: int, together: Sequence[int] | None = None) -> Packing:
    """``spans`` end to end from packed time 0, and windows of at most ``window`` samples cut
    at span boundaries (a span longer than a window is one window of its own); with
    ``together`` (a number per source), also where the number of the span's source changes."""
    placed: list[Span] = []
    windows: list[tuple[float, float]] = []
    cursor = window_start = 0
    for n, span in enumerate(spans):
        length = _n(span.length)
        full = cursor + length - window_start > window
        other = (
            together is not None
            and n > 0
            and together[spans[n - 1].source] != together[span.source]
        )
        if (full or other) and cursor > window_start:
            windows.append((window_start / SAMPLE_RATE, cursor / SAMPLE_RATE))
            window_start = cursor
        placed.append(replace(span, packed_start=cursor / SAMPLE_RATE))
        cursor += length
    if cursor > window_start:
        windows.append((window_start / SAMPLE_RATE, cursor / SAMPLE_RATE))
    return Packing(tuple(placed), tuple(windows))


def packed_audio(samples: Samples | Sequence[Samples], packing: Packing) -> Samples:
    """The spans' samples joined end to end (what ``packing.windows`` index into): of one
    recording, or of each span's source among ``samples`` for a ``combine``d packing."""
    sources = [samples] if isinstance(samples, np.ndarray) else samples
    parts = [
        sources[s.source][
            round(s.start * SAMPLE_RATE) : round(s.start * SAMPLE_RATE) + _n(s.length)
        ]
        for s in packing.spans
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


# Frames of ONSET_FRAME_S; a frame this far (in RMS) below the loudest of the speech that
# follows counts as silence: -26 dB sits under a voiced onset and over line noise.
ONSET_FRAME_S = 0.01
ONSET_RELATIVE_LEVEL = 0.05
ONSET_REFERENCE_S = 0.5  # how much of the speech after the VAD's start sets "loud"


def onset(samples: Samples, earliest: float, speech_start: float) -> float:
    """Where sound begins in [earliest, speech_start]: the first frame whose RMS reaches
    ``ONSET_RELATIVE_LEVEL`` of the loudest frame in the ``ONSET_REFERENCE_S`` after
    ``speech_start``; ``speech_start`` itself when no frame before it is that loud."""
    frame = _n(ONSET_FRAME_S)
    lo, hi = _n(earliest), _n(speech_start)
    reference = samples[hi : hi + _n(ONSET_REFERENCE_S)]
    if hi <= lo or len(reference) < frame:
        return speech_start
    loud = float(np.max(_frame_rms(reference, frame)))
    levels = _frame_rms(samples[lo:hi], frame)
    above = np.flatnonzero(levels >= ONSET_RELATIVE_LEVEL * loud)
    return (lo + int(above[0]) * frame) / SAMPLE_RATE if len(above) else speech_start


def _frame_rms(samples: Samples, frame: int) -> np.ndarray:
    count = len(samples) // frame
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    frames = np.asarray(samples[: count * frame], dtype=np.float64).reshape(count, frame)
    return np.asarray(np.sqrt(np.mean(frames * frames, axis=1)))


def _n(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def _split(start: int, end: int, window: int) -> list[tuple[int, int]]:
    """A span longer than a window (only when a VAD region is), cut into window-sized parts."""
    parts = []
    while end - start > window:
        parts.append((start, start + window))
        start += window
    parts.append((start, end))
    return parts
