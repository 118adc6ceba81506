"""The real model on real and synthetic audio: roles, word times, text (CPU, a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jiwer
import pytest
from asr_helpers import build_tiny_aligner, call_words, normalise

from indexer.asr.audio import decode, probe
from indexer.asr.diarization import FixedTurns, read_rttm
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.settings import PROJECT_ROOT
from indexer.transcript import Call, Role, RolesEvidence

pytestmark = pytest.mark.asr

TOLERANCE_S = 0.3


def _transcribe(transcriber: Transcriber, path: Path) -> Call:
    audio = probe(path)
    return transcriber.transcribe(decode(audio, 3600), MetadataSource().lookup(audio))


# About one word of the synthetic calls (53 and 70 words): a run elsewhere may differ by that.
WER_DOC_TOLERANCE = 0.02


def _documented_wer(name: str) -> float:
    """The WER docs/asr.md's table gives for the synthetic call ``name``; the README's rounded
    figure must agree with it."""
    table = (PROJECT_ROOT / "docs" / "asr.md").read_text(encoding="utf-8")
    (row,) = [line for line in table.splitlines() if line.startswith(f"| synthetic call `{name}`")]
    wer = float(row.split("|")[4])
    language = "en" if name.startswith("en") else "ru"
    # Whitespace collapsed: the README wraps its lines anywhere.
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{wer:.2f} ({language})" in readme, (name, wer)
    return wer


def _turn_of(midpoint: float, turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    inside = [t for t in turns if t["start"] - TOLERANCE_S <= midpoint <= t["end"] + TOLERANCE_S]
    return min(inside, key=lambda t: abs((t["start"] + t["end"]) / 2 - midpoint), default=None)


@pytest.mark.parametrize("name", ["en_call", "ru_call"])
def test_stereo_call_roles_word_times_and_wer(
    name: str, synthetic_calls: dict[str, tuple[Call, Any]]
) -> None:
    call, truth = synthetic_calls[name]
    turns = truth["turns"]
    words = call_words(call)
    assert words, "no words recognised"

    in_turn = right_role = 0
    for word, role in words:
        midpoint = (word.start + word.end) / 2
        turn = _turn_of(midpoint, turns)
        in_turn += turn is not None
        nearest = turn or min(turns, key=lambda t: abs((t["start"] + t["end"]) / 2 - midpoint))
        right_role += nearest["role"] == role
    role_accuracy = right_role / len(words)
    in_turn_share = in_turn / len(words)

    reference = normalise(" ".join(t["text"] for t in turns))
    hypothesis = normalise(" ".join(u.text for u in call.utterances))
    wer = jiwer.wer(reference, hypothesis)
    print(
        f"\n[{name}] language={call.language} words={len(words)} WER={wer:.3f} "
        f"role accuracy={role_accuracy:.3f} "
        f"midpoints in turn (±{TOLERANCE_S} s)={in_turn_share:.3f}"
    )
    assert call.language == truth["language"]
    assert call.asr.diarization == "channels"
    assert role_accuracy == 1.0
    assert in_turn_share >= 0.95
    # Synthetic voices through Whisper base: a loose bound that still catches a broken pipeline.
    assert wer < 0.5
    # The figures docs/asr.md and the README print are these, within a word or so.
    documented = _documented_wer(name)
    assert abs(wer - documented) <= WER_DOC_TOLERANCE, (name, wer, documented)
    # Utterances follow turns, not 30 s VAD chunks: one per scripted turn (pauses may add some).
    assert len(turns) <= len(call.utterances) <= 2 * len(turns)
    assert [u.start for u in call.utterances] == sorted(u.start for u in call.utterances)
    first_roles = [u.role.value for u in call.utterances[:2]]
    assert first_roles == [turns[0]["role"], turns[1]["role"]]


def test_stereo_call_takes_metadata_from_sidecar(
    synthetic_calls: dict[str, tuple[Call, Any]], test_audio: Path
) -> None:
    call, _ = synthetic_calls["ru_call"]
    sidecar = json.loads((test_audio / "ru_call.meta.json").read_text(encoding="utf-8"))
    assert call.call_id == sidecar["call_id"]
    assert call.manager.id == sidecar["manager"]["id"]
    assert call.started_at.isoformat() == sidecar["started_at"]
    assert call.audio.channels == 2


def test_real_stereo_recording_left_and_right(transcriber: Transcriber, real_audio: Path) -> None:
    call = _transcribe(transcriber, real_audio / "stereo_two_speakers_en.wav")
    by_role = {
        role: normalise(" ".join(u.text for u in call.utterances if u.role is role))
        for role in (Role.MANAGER, Role.CLIENT)
    }
    assert by_role[Role.MANAGER] == normalise(
        "He began a confused complaint against the wizard, "
        "who had vanished behind the curtain on the left."
    )
    assert by_role[Role.CLIENT] == normalise("The horizon seems extremely distant.")
    assert {u.speaker for u in call.utterances if u.role is Role.MANAGER} == {"left"}
    assert call.language == "en"  # detected: the file has no metadata
    assert call.asr.aligned is False


def test_mono_without_diarization_is_unknown_with_warning(
    transcriber: Transcriber, real_audio: Path
) -> None:
    undiarized = Transcriber(transcriber.settings, transcriber.engine, diarizer=None)
    call = _transcribe(undiarized, real_audio / "short_ru.wav")
    assert call.language == "ru"
    assert normalise(" ".join(u.text for u in call.utterances)).endswith("сети это хорошо")
    assert {u.role for u in call.utterances} == {Role.UNKNOWN}
    assert call.asr.diarization == "none"
    assert call.asr.roles is RolesEvidence.UNASSIGNED
    assert any("diarization is off" in w for w in call.warnings)


def test_mono_with_diarization_turns_follows_the_turns(
    transcriber: Transcriber, real_audio: Path
) -> None:
    """Reference diarization (the recording's RTTM) through the real words → speakers code; no
    voiceprint for the call's manager, so roles stay unknown and the call says why."""
    turns = read_rttm(real_audio / "phone_call_2spk_en.rttm")
    diarized = Transcriber(transcriber.settings, transcriber.engine, diarizer=FixedTurns(turns))
    call = _transcribe(diarized, real_audio / "phone_call_2spk_en.wav")

    assert call.asr.diarization == "rttm"
    speakers = {u.speaker for u in call.utterances}
    assert speakers <= {t.speaker for t in turns}
    assert len(speakers) == 2
    assert {u.role for u in call.utterances} == {Role.UNKNOWN}
    assert call.asr.roles is RolesEvidence.UNASSIGNED
    assert [s.speaker for s in call.asr.speakers] == sorted(
        {t.speaker for t in turns},
        key=lambda s: -sum(t.end - t.start for t in turns if t.speaker == s),
    )
    assert sum(s.words for s in call.asr.speakers) == sum(len(u.words) for u in call.utterances)
    for utterance in call.utterances:
        for word in utterance.words:
            midpoint = (word.start + word.end) / 2
            covering = [t for t in turns if t.start - 1.0 <= midpoint <= t.end + 1.0]
            assert utterance.speaker in {t.speaker for t in covering}
    changes = sum(
        a.speaker != b.speaker for a, b in zip(call.utterances, call.utterances[1:], strict=False)
    )
    assert changes >= 3  # the call goes back and forth; utterances follow the turns


def test_alignment_model_is_used_when_configured(
    transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    """A locally built wav2vec2 CTC model for English: the WhisperX alignment path is taken,
    Russian (no model) falls back to Whisper word timestamps, and every word is timed."""
    from indexer.asr.alignment import Aligner

    build_tiny_aligner(tmp_path / "align" / "en")
    aligned = Transcriber(
        transcriber.settings, transcriber.engine, aligner=Aligner(tmp_path / "align", "cpu")
    )
    english = _transcribe(aligned, real_audio / "numbers_en.wav")
    whisper_only = _transcribe(transcriber, real_audio / "numbers_en.wav")
    russian = _transcribe(aligned, real_audio / "short_ru.wav")

    assert english.asr.aligned is True
    assert russian.asr.aligned is False
    for call in (english, russian):
        words = call_words(call)
        assert words
        times = [(w.start, w.end) for w, _ in words]
        assert all(0 <= s <= e <= call.duration_s + 0.5 for s, e in times)
        assert [s for s, _ in times] == sorted(s for s, _ in times)
    # The aligner's times are the ones kept (any sorted times would pass the checks above): they
    # differ from Whisper's own, and each word still lies inside its utterance.
    assert [(w.start, w.end) for w, _ in call_words(english)] != [
        (w.start, w.end) for w, _ in call_words(whisper_only)
    ]
    for utterance in english.utterances:
        for word in utterance.words:
            assert utterance.start <= word.start <= word.end <= utterance.end
    # Digits are outside the model's alphabet; they still come back timed.
    assert any(any(c.isdigit() for c in w.text) for w, _ in call_words(english))
