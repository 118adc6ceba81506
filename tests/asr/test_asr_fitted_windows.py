"""Fitted windows on the real model: a window shorter than 30 s is encoded over its speech
and a margin (``asr_fit_floor_s``), and hears what the full 30 s window hears."""

from __future__ import annotations

from pathlib import Path

import pytest
from asr_helpers import normalise

from indexer.asr import packing
from indexer.asr.audio import SAMPLE_RATE, decode, probe
from indexer.asr.engine import FIT_MARGIN_FRAMES, SPEECH_PAD_S, WINDOW_FRAMES
from indexer.asr.pipeline import Transcriber
from indexer.settings import Settings

pytestmark = pytest.mark.asr


def test_a_short_window_is_encoded_over_its_speech_and_hears_the_same_words(
    transcriber: Transcriber, real_audio: Path
) -> None:
    engine = transcriber.engine
    assert engine.fit_floor_s == Settings().asr_fit_floor_s == 10.0  # on by default
    samples = decode(probe(real_audio / "jfk.flac"), 60).channels[0]  # 11 s, one window
    regions = engine.speech_regions(samples)
    # The one window its speech is packed into (silences between regions shortened).
    plan = packing.plan(
        [(r.start, r.end) for r in regions], len(samples) / SAMPLE_RATE, SPEECH_PAD_S, 30.0
    )
    ((start, end),) = plan.windows
    frames: dict[float, int] = {}
    texts: dict[float, str] = {}
    try:
        for floor_s in (0.0, 10.0):
            engine.fit_floor_s = floor_s
            before = engine.frames_encoded
            segments = engine.recognize_words_of([(samples, regions)], "en")[0]
            frames[floor_s] = engine.frames_encoded - before
            texts[floor_s] = normalise(" ".join(w.text for s in segments for w in s.words))
    finally:
        engine.fit_floor_s = transcriber.settings.asr_fit_floor_s
    assert frames[0.0] == WINDOW_FRAMES
    # Its speech and the margin, to a frame or two (feature framing, an even count).
    assert abs(frames[10.0] - ((end - start) * 100 + FIT_MARGIN_FRAMES)) <= 2, frames
    assert (
        texts[10.0]
        == texts[0.0]
        == normalise(
            "And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country."
        )
    )


def test_a_held_window_decodes_beside_a_fresh_window_with_less_speech(
    transcriber: Transcriber, real_audio: Path
) -> None:
    # jfk's one window is held from its language detection; the first 3 s of it, decoded in
    # the same batch in a window of its own, has less speech, so a fitted encoding of its own
    # would be shorter than the held one: every row of a batch must be fitted to the batch.
    engine = transcriber.engine
    samples = decode(probe(real_audio / "jfk.flac"), 60).channels[0]
    regions = engine.speech_regions(samples)
    head = samples[: 3 * SAMPLE_RATE]
    head_regions = engine.speech_regions(head)
    assert engine.detect_language_in([(samples, regions)], shared=True) is not None
    reused = engine.encodings_reused
    whole, start = engine.recognize_words_of(
        [(samples, regions), (head, head_regions)], "en", together=[0, 1]
    )
    assert engine.encodings_reused == reused + 1  # jfk's window came from the held encoding
    assert normalise(" ".join(w.text for s in whole for w in s.words)) == normalise(
        "And so my fellow Americans, ask not what your country can do for you, "
        "ask what you can do for your country."
    )
    assert normalise(" ".join(w.text for s in start for w in s.words)).startswith("and so my")
