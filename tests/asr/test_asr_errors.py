"""An unusable model stops the batch with exit status 2 instead of failing every file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from indexer import cli
from indexer.asr.pipeline import Transcriber, run_batch
from indexer.errors import AsrModelError
from indexer.settings import Settings


def _two_recordings(folder: Path) -> list[Path]:
    folder.mkdir()
    tone = (0.1 * np.sin(np.arange(16_000) / 5)).astype(np.float32)
    paths = [folder / "a.wav", folder / "b.wav"]
    for path in paths:
        sf.write(path, tone, 16_000)
    return paths


def test_model_error_ends_the_batch(tmp_path: Path) -> None:
    calls = 0

    def broken() -> Transcriber:
        nonlocal calls
        calls += 1
        raise AsrModelError("no faster-whisper model in /nowhere")

    with pytest.raises(AsrModelError):
        run_batch(_two_recordings(tmp_path / "in"), tmp_path / "out", Settings(), broken,
                  progress=False)  # fmt: skip
    assert calls == 1


def test_transcribe_without_a_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _two_recordings(tmp_path / "in")
    status = cli.main(
        ["transcribe", *map(str, files), "--out", str(tmp_path / "out"),
         "--model", str(tmp_path / "no-model"), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("model.bin missing") == 1, err
