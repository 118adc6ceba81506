"""ASR fixtures: the generated test calls, the real recordings, one model for the session."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import Call

TEST_AUDIO = PROJECT_ROOT / ".cache" / "test-audio"


@pytest.fixture(scope="session")
def test_audio() -> Path:
    """The synthetic calls; scripts/make-test-audio is a no-op when they are up to date."""
    subprocess.run([str(PROJECT_ROOT / "scripts" / "make-test-audio"), str(TEST_AUDIO)], check=True)
    return TEST_AUDIO


@pytest.fixture(scope="session")
def real_audio(shared_dir: Path) -> Path:
    return shared_dir / "real-audio"


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    """The real Whisper model (and whatever alignment/diarization models the environment
    configures), loaded once for every ASR test."""
    return Transcriber.from_settings(Settings())


@pytest.fixture(scope="session")
def synthetic_calls(test_audio: Path, transcriber: Transcriber) -> dict[str, tuple[Call, Any]]:
    """Each synthetic call transcribed once, with its script (turns and true times)."""
    calls = {}
    for name in ("en_call", "ru_call"):
        truth = json.loads((test_audio / f"{name}.truth.json").read_text(encoding="utf-8"))
        audio = probe(test_audio / truth["audio"])
        decoded = decode(audio, transcriber.settings.asr_max_audio_s)
        calls[name] = (transcriber.transcribe(decoded, MetadataSource().lookup(audio)), truth)
    return calls
