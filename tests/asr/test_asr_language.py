"""Language detection on the real model: a recording whose speech fits one window has its
language detected on that window, and that encoder pass also decodes it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from asr_helpers import normalise

from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import BatchSummary, Transcriber, run_batch
from indexer.asr.schema import RecognizedSegment

pytestmark = pytest.mark.asr


def _words(segments: list[RecognizedSegment]) -> list[tuple[str, float | None, float | None]]:
    return [(w.text, w.start, w.end) for s in segments for w in s.words]


def test_the_detection_window_is_decoded_from_its_own_encoder_pass(
    transcriber: Transcriber, real_audio: Path
) -> None:
    engine = transcriber.engine
    samples = decode(probe(real_audio / "short_ru.wav"), 60).channels[0]
    sources = [(samples, engine.speech_regions(samples))]
    detected = engine.detect_language_in(sources, shared=False)
    assert detected is not None
    assert detected[0] == "ru"
    reused = engine.encodings_reused
    held = engine.recognize_words_of(sources, "ru", shared=False)
    assert engine.encodings_reused == reused + 1
    # Nothing is held any more: the same window is encoded afresh, and gives the same words.
    fresh = engine.recognize_words_of(sources, "ru", shared=False)
    assert engine.encodings_reused == reused + 1
    assert _words(held[0]) == _words(fresh[0])
    assert normalise(" ".join(w for w, *_ in _words(held[0]))).endswith("сети это хорошо")


def test_a_short_recording_without_a_language_costs_one_encoder_pass(
    transcriber: Transcriber, real_audio: Path
) -> None:
    engine = transcriber.engine
    audio = probe(real_audio / "numbers_en.wav")  # mono, 12 s, no metadata
    windows, reused = engine.windows_decoded, engine.encodings_reused
    frames = engine.frames_encoded
    call = transcriber.transcribe(decode(audio, 60), MetadataSource().lookup(audio))
    assert call.language == "en"
    assert (engine.windows_decoded - windows, engine.encodings_reused - reused) == (1, 1)
    # Its one pass is of the fitted window (asr_fit_floor_s), held and decoded: under 30 s.
    assert 0 < engine.frames_encoded - frames < 3000
    assert "caracas" in normalise(" ".join(u.text for u in call.utterances))


def test_speech_that_needs_more_than_one_window_is_detected_as_before(
    transcriber: Transcriber, real_audio: Path
) -> None:
    # A stereo call whose channels are decoded apart (asr_group_s 0) needs a window per
    # channel: no single window holds its speech, so nothing is held for it. With its channels
    # in one window (how a decoding group packs them) that window is the detection window.
    engine = transcriber.engine
    assert transcriber.settings.asr_group_s == 0
    channels = decode(probe(real_audio / "stereo_two_speakers_en.wav"), 60).channels
    sources = [(samples, engine.speech_regions(samples)) for samples in channels]
    assert engine.detect_language_in(sources, shared=False) is None
    detected = engine.detect_language_in(sources, shared=True)
    assert detected is not None
    assert detected[0] == "en"
    reused = engine.encodings_reused
    both = engine.recognize_words_of(sources, "en", shared=True)
    assert engine.encodings_reused == reused + 1
    assert normalise(" ".join(w for w, *_ in _words(both[1]))) == normalise(
        "The horizon seems extremely distant."
    )


def _batch(transcriber: Transcriber, files: list[Path], out: Path, group_s: float) -> BatchSummary:
    """``run_batch`` with the same models, the batch and the transcriber under one asr_group_s."""
    shaped = copy.copy(transcriber)
    shaped.settings = transcriber.settings.model_copy(update={"asr_group_s": group_s})
    return run_batch(files, out, shaped.settings, lambda: shaped, progress=False)


def test_in_a_group_a_recording_without_a_language_keeps_its_own_window(
    transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    # Two short Russian recordings with no metadata, decoded as a group (asr_group_s 300):
    # each is decoded in the window its language was detected on, from that encoder pass, so
    # nothing is shared or redone, and the words are those of each decoded alone (the two
    # windows are decoded in one batch, so their times are rounded in a longer signal).
    files = [real_audio / "short_ru.wav", real_audio / "numbers_ru.wav"]
    engine = transcriber.engine
    words: dict[float, dict[str, list[tuple[str, float, float]]]] = {}
    for group_s in (0.0, 300.0):
        counts = (engine.windows_decoded, engine.encodings_reused, engine.sources_redone)
        summary = _batch(transcriber, files, tmp_path / f"{group_s:g}", group_s)
        assert summary.failures == []
        assert (
            engine.windows_decoded - counts[0],
            engine.encodings_reused - counts[1],
            engine.sources_redone - counts[2],
        ) == (2, 2, 0)
        assert {c.call.language for c in summary.calls} == {"ru"}
        words[group_s] = {
            c.call.call_id: [(w.text, w.start, w.end) for u in c.call.utterances for w in u.words]
            for c in summary.calls
        }
    assert words[300.0].keys() == words[0.0].keys()
    for call_id, alone in words[0.0].items():
        grouped = words[300.0][call_id]
        assert [w for w, *_ in grouped] == [w for w, *_ in alone], call_id
        # faster-whisper rounds word times to 10 ms in the packed signal, where the second
        # recording's window starts at an odd offset: its times may move by those 5 ms.
        assert all(abs(g[1] - a[1]) <= 0.01 for g, a in zip(grouped, alone, strict=True))
