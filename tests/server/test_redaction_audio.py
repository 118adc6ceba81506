"""Bleeping on a real recording, through the real loader, Elasticsearch and API: the served
recording is silent at the redacted words on both channels (the client's side and the echo on
the manager's) and sample for sample the original elsewhere; measured with numpy and sox.

The recording is real speech (../shared/real-audio/numbers_ru.wav) made into a telephony-style
stereo file: the speaker on one channel, an attenuated, delayed echo on the other. The
transcript's words are placed on that speech by hand; what is measured is the audio."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.index.loader import load_calls
from indexer.index.reindex import reindex
from indexer.index.store import TranscriptStore
from indexer.settings import Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall

NUMBER = ["восемь", "девятьсот", "шестнадцать", "сто", "двадцать", "три", "сорок", "пять"]
PADDING_S = 0.2


def _stereo_call(source: Path, target: Path) -> np.ndarray:
    speech, rate = sf.read(str(source), dtype="int16")
    delay = int(0.08 * rate)
    echo = np.zeros_like(speech)
    echo[delay:] = (speech[:-delay] * 0.3).astype(np.int16)
    data = np.stack([echo, speech], axis=1)  # manager (echo only), client
    sf.write(str(target), data, rate, subtype="PCM_16")
    return data


def _call(call_id: str, uri: Path) -> Call:
    words: list[dict[str, Any]] = [
        {"text": "мой", "start": 0.0, "end": 0.3},
        {"text": "телефон", "start": 0.3, "end": 0.6},
    ]
    clock = 0.7
    for word in NUMBER:
        words.append({"text": word, "start": round(clock, 2), "end": round(clock + 0.45, 2)})
        clock += 0.5
    words.append({"text": "записали?", "start": 5.4, "end": 6.3})
    return Call.model_validate(
        {
            "call_id": call_id,
            "started_at": datetime(2026, 3, 2, 10, 0, tzinfo=UTC).isoformat(),
            "duration_s": 6.72,
            "language": "ru",
            "direction": "inbound",
            "manager": {"id": "m-1"},
            "client": {"id": "c-1"},
            "audio": {"uri": uri.as_uri(), "channels": 2, "sample_rate": 16000},
            "asr": {"engine": "test", "model": "none", "aligned": False, "diarization": "manual"},
            "utterances": [
                {
                    "speaker": "SPEAKER_01",
                    "role": "client",
                    "start": 0.0,
                    "end": 6.3,
                    "text": " ".join(w["text"] for w in words),
                    "words": words,
                }
            ],
        }
    )


@pytest.fixture
def recording(shared_dir: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    root = tmp_path / "calls"
    root.mkdir()
    path = root / "ru-phone.wav"
    return path, _stereo_call(shared_dir / "real-audio" / "numbers_ru.wav", path)


@pytest.fixture
def bleeping(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "redaction": "bleep",
            "audio_root": tmp_path / "calls",
            "redaction_audio_dir": tmp_path / "bleeped",
            "redaction_bleep_padding_s": PADDING_S,
        }
    )


@pytest.fixture
def bleep_api(bleeping: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(bleeping)) as client:
        yield client


def _rms_sox(path: Path, channel: int, start: float, end: float) -> float:
    """RMS amplitude (full scale 1) of one channel between two seconds, as sox measures it."""
    result = subprocess.run(
        ["sox", str(path), "-n", "remix", str(channel), "trim", str(start), f"={end}", "stat"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("RMS     amp"))
    return float(line.split(":")[1])


def _check_bleeped(served: Path, original: np.ndarray, rate: int) -> None:
    bleeped, served_rate = sf.read(str(served), dtype="int16", always_2d=True)
    assert served_rate == rate
    assert bleeped.shape == original.shape
    begin = round((0.7 - PADDING_S) * rate)
    end = round((0.7 + 0.5 * (len(NUMBER) - 1) + 0.45 + PADDING_S) * rate)
    inside = np.zeros(len(original), dtype=bool)
    inside[begin:end] = True
    for channel in (0, 1):
        said = original[inside, channel].astype(float)
        assert np.sqrt(np.mean(said**2)) > 100  # there was speech (or its echo) to hide
        assert not bleeped[inside, channel].any()
    assert np.array_equal(bleeped[~inside], original[~inside])
    # The same, measured by sox: nothing left in the span on either channel, speech outside.
    for channel in (1, 2):
        assert _rms_sox(served, channel, begin / rate, end / rate) == 0.0
        assert _rms_sox(served, channel, 5.45, 6.3) > 0.001


def test_the_api_serves_the_bleeped_recording(
    es: Elasticsearch,
    bleeping: Settings,
    bleep_api: TestClient,
    recording: tuple[Path, np.ndarray],
    tmp_path: Path,
) -> None:
    path, original = recording
    before = path.read_bytes()
    summary = load_calls(
        es,
        bleeping,
        [SourcedCall("test", _call("ru-phone", path))],
        tag=current_tagger(es, bleeping),
    )
    assert summary.failures == []
    store = TranscriptStore.of(bleeping)
    assert store is not None
    stored = store.get("ru-phone")
    assert stored is not None
    assert stored.utterances[0].text == "мой телефон [phone] записали?"
    assert Path(stored.audio.uri) == tmp_path / "bleeped" / "ru-phone.wav"
    assert path.read_bytes() == before  # the original recording is left as it was

    response = bleep_api.get("/v1/calls/ru-phone/audio")
    assert response.status_code == 200
    served = tmp_path / "served.wav"
    served.write_bytes(response.content)
    _check_bleeped(served, original, 16000)


def test_a_recording_that_cannot_be_bleeped_is_not_loaded(
    es: Elasticsearch, bleeping: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "calls" / "gone.wav"
    summary = load_calls(
        es,
        bleeping,
        [SourcedCall("gone.json", _call("ru-gone", missing))],
        tag=current_tagger(es, bleeping),
    )
    assert summary.loaded == 0
    (failure,) = summary.failures
    assert "ru-gone" in failure
    assert "cannot be bleeped" in failure
    store = TranscriptStore.of(bleeping)
    assert store is not None
    assert not store.contains("ru-gone")


def test_reindex_from_mask_to_bleep_bleeps_every_recording(
    es: Elasticsearch,
    settings: Settings,
    bleeping: Settings,
    recording: tuple[Path, np.ndarray],
    tmp_path: Path,
) -> None:
    path, original = recording
    masked = settings.model_copy(update={"redaction": "mask", "audio_root": tmp_path / "calls"})
    assert (
        load_calls(
            es,
            masked,
            [SourcedCall("test", _call("ru-phone", path))],
            tag=current_tagger(es, masked),
        ).loaded
        == 1
    )
    with TestClient(create_app(bleeping)) as api:
        # Not bleeped yet: under bleep the original is never served.
        refused = api.get("/v1/calls/ru-phone/audio")
        assert refused.status_code == 403
        assert "no bleeped recording" in refused.json()["detail"]
        result = reindex(es, bleeping, tag=current_tagger(es, bleeping))
        assert (result.redaction_before, result.redaction, result.redacted) == ("mask", "bleep", 1)
        response = api.get("/v1/calls/ru-phone/audio")
        assert response.status_code == 200
    served = tmp_path / "served.wav"
    served.write_bytes(response.content)
    # Bleeped from the masked transcript's [phone] word: its seconds are the span's.
    _check_bleeped(served, original, 16000)


def test_deleting_a_call_removes_its_original_and_its_bleeped_recording(
    es: Elasticsearch,
    bleeping: Settings,
    recording: tuple[Path, np.ndarray],
    tmp_path: Path,
) -> None:
    path, _ = recording
    keeping = bleeping.model_copy(update={"redaction_originals_dir": tmp_path / "originals"})
    assert (
        load_calls(
            es,
            keeping,
            [SourcedCall("test", _call("ru-phone", path))],
            tag=current_tagger(es, keeping),
        ).loaded
        == 1
    )
    originals = TranscriptStore.originals(keeping)
    assert originals is not None
    assert originals.contains("ru-phone")
    bleeped = tmp_path / "bleeped" / "ru-phone.wav"
    assert bleeped.is_file()
    with TestClient(create_app(keeping)) as api:
        assert api.delete("/v1/calls/ru-phone").status_code == 204
        assert api.get("/v1/calls/ru-phone/audio").status_code == 404
    assert not originals.contains("ru-phone")
    assert not bleeped.exists()
    assert path.is_file()  # the operator's own recording is the operator's to delete
