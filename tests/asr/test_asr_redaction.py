"""From a recording to a bleeped recording, every part real: a stereo call voiced by espeak-ng
(the client reads out a card number; an echo of it leaks into the manager's channel),
transcribed by the real Whisper model, loaded under EARSHOT_REDACTION=bleep into the real
Elasticsearch, served by the real API. The card must be masked in the transcript and silent in
the served recording on both channels; the rest of the recording must be untouched."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.index.loader import load_calls
from indexer.index.store import TranscriptStore
from indexer.redaction.policy import masked_times
from indexer.settings import Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import SourcedCall

RATE = 16000
MANAGER = "Can I take the card number for the prepayment?"
CLIENT = "My card number is four two seven six, seven nine seven five, four three two three, one nine four eight."  # noqa: E501


def _voice(text: str, work: Path) -> np.ndarray:
    raw = work / "voice.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    resampled = work / "voice16.wav"
    subprocess.run(
        ["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(resampled)], check=True
    )
    samples, _ = sf.read(str(resampled), dtype="int16")
    return np.asarray(samples)


def _strings(value: object) -> Iterator[str]:
    """Every string in a dumped call. Its numbers stay out: a word's score 0.98194855 holds the
    card's last group, 1948, without anything having leaked."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.fixture
def card_call(tmp_path: Path) -> Path:
    root = tmp_path / "calls"
    root.mkdir()
    manager, client = _voice(MANAGER, tmp_path), _voice(CLIENT, tmp_path)
    gap = int(0.8 * RATE)
    total = len(manager) + gap + len(client) + gap
    left = np.zeros(total, dtype=np.int16)
    right = np.zeros(total, dtype=np.int16)
    left[: len(manager)] = manager
    start = len(manager) + gap
    right[start : start + len(client)] = client
    delay = int(0.06 * RATE)  # the client's voice echoed, quieter, on the manager's line
    left[start + delay : start + delay + len(client)] += (client * 0.2).astype(np.int16)
    path = root / "asr-card.wav"
    sf.write(str(path), np.stack([left, right], axis=1), RATE, subtype="PCM_16")
    meta = {
        "call_id": "asr-card",
        "started_at": "2026-03-02T10:00:00+00:00",
        "direction": "inbound",
        "language": "en",
        "channels": ["manager", "client"],
        "manager": {"id": "m-1"},
        "client": {"id": "c-1"},
    }
    path.with_name("asr-card.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


def test_a_card_read_out_is_masked_and_bleeped_on_both_channels(
    es: Elasticsearch,
    settings: Settings,
    transcriber: Transcriber,
    card_call: Path,
    tmp_path: Path,
) -> None:
    audio = probe(card_call)
    call = transcriber.transcribe(
        decode(audio, transcriber.settings.asr_max_audio_s), MetadataSource().lookup(audio)
    )
    heard = " ".join(u.text for u in call.utterances)
    assert re.search(r"4276|four two seven six", heard, re.IGNORECASE), heard

    bleeping = settings.model_copy(
        update={
            "redaction": "bleep",
            "audio_root": card_call.parent,
            "redaction_audio_dir": tmp_path / "bleeped",
        }
    )
    summary = load_calls(
        es, bleeping, [SourcedCall(str(card_call), call)], tag=current_tagger(es, bleeping)
    )
    assert summary.failures == []
    store = TranscriptStore.of(bleeping)
    assert store is not None
    stored = store.get("asr-card")
    assert stored is not None
    text = " ".join(_strings(stored.model_dump(mode="json")))
    assert "[card]" in text
    assert not re.search(r"4276|7975|4323|1948|four two seven six|one nine four eight", text)

    with TestClient(create_app(bleeping)) as api:
        assert [c["call_id"] for c in api.get("/v1/search?q=client:[card]").json()["calls"]] == [
            "asr-card"
        ]
        response = api.get("/v1/calls/asr-card/audio")
    assert response.status_code == 200
    served = tmp_path / "served.wav"
    served.write_bytes(response.content)
    original, _ = sf.read(str(card_call), dtype="int16", always_2d=True)
    bleeped, _ = sf.read(str(served), dtype="int16", always_2d=True)
    padding = bleeping.redaction_bleep_padding_s
    inside = np.zeros(len(original), dtype=bool)
    for start, end in masked_times(stored):
        # Rounded as the bleep rounds: 2.3 s * 8000 is 18400.000000000004.
        begin = max(0, int(np.floor(round((start - padding) * RATE, 6))))
        inside[begin : int(np.ceil(round((end + padding) * RATE, 6)))] = True
    assert inside.any()
    for channel in (0, 1):  # the client's digits and their echo on the manager's line
        assert np.sqrt(np.mean(original[inside, channel].astype(float) ** 2)) > 50
        assert not bleeped[inside, channel].any()
    assert np.array_equal(bleeped[~inside], original[~inside])
    # The manager's question is still there to hear.
    assert np.sqrt(np.mean(bleeped[: int(1.5 * RATE), 0].astype(float) ** 2)) > 100
