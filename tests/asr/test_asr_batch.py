"""Batches with bad files among good ones, re-runs, the CLI, and audio → search end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer import cli
from indexer.asr.pipeline import Transcriber, run_batch
from indexer.index.loader import load_calls
from indexer.settings import Settings, get_settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import read_call_file

pytestmark = pytest.mark.asr


def _bad_and_good(real_audio: Path, folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "empty": folder / "empty.wav",
        "corrupt": folder / "corrupt.mp3",
        "silent": folder / "silent.wav",
        "short": folder / "short.wav",
        "odd_rate": folder / "ru_11025.wav",
        "good": real_audio / "stereo_two_speakers_en.wav",
        "long": real_audio / "phone_call_2spk_en.wav",  # 30 s, over the 20 s limit below
    }
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"ID3\x03\x00" + bytes(np.random.default_rng(0).bytes(4000)))
    sf.write(files["silent"], np.zeros((5 * 8000, 2), dtype=np.float32), 8000)
    noise = np.random.default_rng(1).normal(0, 0.1, 1600).astype(np.float32)  # 0.1 s
    sf.write(files["short"], noise, 16_000)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(real_audio / "short_ru.wav"), "-ar", "11025",
         str(files["odd_rate"])],
        check=True,
    )  # fmt: skip
    return files


def test_batch_goes_on_past_bad_files_and_reruns_skip(
    transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    files = _bad_and_good(real_audio, tmp_path / "in")
    out = tmp_path / "out"
    settings = Settings(asr_max_audio_s=20)
    inputs = [tmp_path / "in", files["good"], files["long"], tmp_path / "missing.wav"]

    summary = run_batch(inputs, out, settings, lambda: transcriber, progress=False)

    failed = "\n".join(summary.failures)
    assert len(summary.failures) == 4, failed
    assert "empty.wav: file is empty" in failed
    assert "corrupt.mp3: not a readable audio file" in failed
    assert "phone_call_2spk_en.wav: 30 s long, over the 20 s limit" in failed
    assert "missing.wav: no such file or directory" in failed
    assert (summary.transcribed, summary.empty) == (4, 2)

    by_id = {item.call.call_id: item.call for item in summary.calls}
    assert by_id["silent"].utterances == []
    assert "no speech detected" in by_id["silent"].warnings[0]
    assert by_id["short"].utterances == []
    assert "too short" in by_id["short"].warnings[0]
    odd = by_id["ru_11025"]
    assert odd.audio.sample_rate == 11_025
    assert "сети это хорошо" in odd.utterances[0].text
    assert by_id["stereo_two_speakers_en"].audio.channels == 2
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([".asr-ledger.json", *(f"{call_id}.json" for call_id in by_id)]), (
        "outputs are written whole, without temporary files left behind"
    )
    for item in summary.calls:
        assert read_call_file(Path(item.source)) == item.call

    def no_model() -> Transcriber:
        raise AssertionError("a re-run over finished files must not load the model")

    again = run_batch(inputs, out, settings, no_model, progress=False)
    assert (again.transcribed, again.skipped, len(again.failures)) == (0, 4, 4)
    assert {c.call.call_id for c in again.calls} == set(by_id)

    forced = run_batch([files["good"]], out, settings, lambda: transcriber, force=True,
                       progress=False)  # fmt: skip
    assert (forced.transcribed, forced.skipped) == (1, 0)


def test_two_recordings_claiming_one_call_id(
    transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.flac", "b.flac"):
        (folder / name).write_bytes((real_audio / "jfk.flac").read_bytes())
        (folder / name).with_suffix(".meta.json").write_text(
            json.dumps({"call_id": "same", "language": "en"})
        )
    summary = run_batch([folder], tmp_path / "out", Settings(), lambda: transcriber,
                        progress=False)  # fmt: skip
    assert summary.transcribed == 1
    assert len(summary.failures) == 1
    assert "b.flac: call_id: 'same' is also the call id of" in summary.failures[0]


def test_ingest_loads_good_files_and_names_the_bad_one(
    es: Elasticsearch,
    settings: Settings,
    real_audio: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS" + bytes(500))
    monkeypatch.setenv("ES_URL", settings.es_url)
    monkeypatch.setenv("EARSHOT_CALLS_ALIAS", settings.calls_alias)
    get_settings.cache_clear()
    try:
        status = cli.main(
            ["ingest", str(real_audio / "stereo_two_speakers_en.wav"), str(bad),
             "--out", str(tmp_path / "out"), "--quiet"]
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert status == 1
    assert f"error: {bad}: not a readable audio file" in err
    assert "loaded 1, failed 0" in err
    stored = es.get(index=settings.calls_alias, id="stereo_two_speakers_en")["_source"]
    assert {u["role"] for u in stored["utterances"]} == {"manager", "client"}


def test_audio_to_search_end_to_end(
    es: Elasticsearch,
    settings: Settings,
    transcriber: Transcriber,
    test_audio: Path,
    tmp_path: Path,
) -> None:
    from api.main import create_app

    truth: dict[str, Any] = json.loads((test_audio / "en_call.truth.json").read_text())
    summary = run_batch([test_audio / "en_call.wav"], tmp_path, settings, lambda: transcriber,
                        progress=False)  # fmt: skip
    assert summary.failures == []
    assert load_calls(es, settings, summary.calls, tag=current_tagger(es, settings)).loaded == 1

    turn = next(t for t in truth["turns"] if "proposal by email" in t["text"])
    with TestClient(create_app(settings)) as client:
        found = client.get("/v1/search", params={"q": '"proposal by email"', "role": "client"})
        wrong_role = client.get(
            "/v1/search", params={"q": '"proposal by email"', "role": "manager"}
        )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == 1
    (hit_call,) = body["calls"]
    assert hit_call["call_id"] == "synthetic-en-call"
    hit = hit_call["hits"][0]
    assert hit["role"] == "client"
    assert turn["role"] == "client"
    assert turn["start"] - 0.3 <= hit["start"] <= turn["end"] + 0.3
    assert wrong_role.json()["total"] == 0
