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

This is what faster-whisper's own VAD mode does (``collect_chunks`` with
``SpeechTimestampsMap``), with WhisperX's pyannote regions and a margin around each region.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.asr.audio import SAMPLE_RATE, Samples


@dataclass(frozen=True)
class Span:
    """A stretch of the recording kept for decoding, and where it sits in the packed signal."""

    start: float  # seconds in the recording
    end: float
    packed_start: float  # seconds in the packed signal

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


def plan(
    regions: Sequence[tuple[float, float]], duration_s: float, pad_s: float, window_s: float
) -> Packing:
    """Spans and windows for speech ``regions`` (sorted, in seconds) of a recording.

    Worked in whole samples, so that span lengths add up exactly in the packed signal.
    """
    pad, window, total = _n(pad_s), _n(window_s), _n(duration_s)
    spans: list[tuple[int, int]] = []
    for region_start, region_end in regions:
        start = max(0, _n(region_start) - pad)
        end = min(total, _n(region_end) + pad)
        if spans and start <= spans[-1][1]:
            previous_start, previous_end = spans[-1]
            if max(end, previous_end) - previous_start <= window:
                spans[-1] = (previous_start, max(end, previous_end))  # overlapping: one span
                continue
            start = previous_end  # would outgrow a window: touch, but do not overlap
        spans.extend(_split(start, end, window))
    placed: list[Span] = []
    windows: list[tuple[float, float]] = []
    cursor = window_start = 0
    for start, end in spans:
        if end <= start:
            continue
        if cursor + (end - start) - window_start > window:
            windows.append((window_start / SAMPLE_RATE, cursor / SAMPLE_RATE))
            window_start = cursor
        placed.append(Span(start / SAMPLE_RATE, end / SAMPLE_RATE, cursor / SAMPLE_RATE))
        cursor += end - start
    if cursor > window_start:
        windows.append((window_start / SAMPLE_RATE, cursor / SAMPLE_RATE))
    return Packing(tuple(placed), tuple(windows))


def packed_audio(samples: Samples, packing: Packing) -> Samples:
    """The spans' samples joined end to end (what ``packing.windows`` index into)."""
    parts = [
        samples[round(s.start * SAMPLE_RATE) : round(s.start * SAMPLE_RATE) + _n(s.length)]
        for s in packing.spans
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


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
