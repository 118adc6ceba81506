"""README promises of transcription: a re-run skips by content hash (a moved recording is not
redone, an edited one is), and the product itself never reaches a model hub — run as a user
runs it, with none of the test harness's offline switches set."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import soundfile as sf

from indexer.asr.pipeline import Transcriber, run_batch
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import read_call_file

pytestmark = pytest.mark.asr


def test_a_moved_recording_is_skipped_and_an_edited_one_redone(
    transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    original = folder / "first-name.wav"
    shutil.copy(real_audio / "short_ru.wav", original)
    settings = Settings()

    def no_model() -> Transcriber:
        raise AssertionError("a recording already done must not load the model")

    first = run_batch([folder], out, settings, lambda: transcriber, progress=False)
    assert (first.transcribed, first.skipped) == (1, 0)

    # Moved, same name: the name is its call id (no sidecar), so only a rename would change the
    # transcript and is redone; a move is not.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    renamed = original.rename(elsewhere / original.name)
    again = run_batch([elsewhere], out, settings, no_model, progress=False)
    assert (again.transcribed, again.skipped, again.failures) == (0, 1, [])

    samples, rate = sf.read(renamed, dtype="float32")
    sf.write(renamed, samples * 0.5, rate)  # same words, other content
    edited = run_batch([elsewhere], out, settings, lambda: transcriber, progress=False)
    assert (edited.transcribed, edited.skipped, edited.failures) == (1, 0, [])


class _Listener:
    """A loopback port that counts every connection made to it and closes it at once."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def test_the_transcriber_never_reaches_a_hub(real_audio: Path, tmp_path: Path) -> None:
    listener = _Listener()
    trap = f"http://127.0.0.1:{listener.port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}
    }
    # Every way out leads to the counting port: the hub's address and any proxy.
    env |= {
        "HF_ENDPOINT": trap,
        "HTTP_PROXY": trap,
        "HTTPS_PROXY": trap,
        "http_proxy": trap,
        "https_proxy": trap,
        "NO_PROXY": "",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HOME": str(tmp_path / "hf-home"),  # an empty cache: nothing to fall back on
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "transcribe", str(real_audio / "short_ru.wav"),
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    listener.socket.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert listener.connections == 0
    (written,) = [p for p in out.glob("*.json") if not p.name.startswith(".")]  # not the ledger
    assert "хорошо" in read_call_file(written).utterances[0].text.casefold()
