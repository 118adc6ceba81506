"""The demo's recordings (scripts/make-demo-audio) say each word at the second its transcript
says: the real pipeline, run on one, hears the words there and on the right party's channel."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.settings import PROJECT_ROOT
from indexer.transcript import read_call_file

pytestmark = pytest.mark.asr

CALL_ID = "en-0006-insurance"


def _word(text: str) -> str:
    return re.sub(r"[^\w]", "", text.lower())


def test_a_voiced_sample_call_says_its_words_at_their_seconds(
    transcriber: Transcriber, tmp_path: Path
) -> None:
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "make-demo-audio"),
            "--out",
            str(tmp_path),
            CALL_ID,
        ],
        check=True,
    )
    script = read_call_file(PROJECT_ROOT / "samples" / "calls" / f"{CALL_ID}.json")
    audio = probe(tmp_path / f"{CALL_ID}.wav")
    assert (audio.channels, audio.sample_rate) == (2, 8000)
    heard = transcriber.transcribe(
        decode(audio, transcriber.settings.asr_max_audio_s), MetadataSource().lookup(audio)
    )
    heard_words = [
        (_word(word.text), word.start, utterance.role)
        for utterance in heard.utterances
        for word in utterance.words
    ]
    offsets = []
    roles_agree = 0
    said = [(_word(w.text), w.start, u.role) for u in script.utterances for w in u.words]
    for text, start, role in said:
        near = [(abs(s - start), r) for t, s, r in heard_words if t == text and abs(s - start) < 3]
        if near:
            offset, heard_role = min(near)
            offsets.append(offset)
            roles_agree += heard_role == role
    # Whisper base misses or misspells some synthetic words; most are heard, where they were said.
    assert len(offsets) >= 0.7 * len(said), (len(offsets), len(said))
    assert statistics.median(offsets) < 0.4, statistics.median(offsets)
    assert sorted(offsets)[int(0.9 * len(offsets))] < 0.8
    assert roles_agree >= 0.95 * len(offsets)  # on its party's channel
