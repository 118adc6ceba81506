"""Transcription on a real local Ray cluster: a head and a worker node, each a raylet process
with one CPU, so the two recognition workers run in separate processes on separate nodes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from copy import copy as shallow_copy
from pathlib import Path
from typing import Any

import pytest

from indexer.asr.ledger import Ledger
from indexer.asr.pipeline import Transcriber, run_batch
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import read_call_file

pytest.importorskip("ray")
from ray.cluster_utils import Cluster

from bench.measure import local_ray_cluster
from indexer.asr.distributed import RayRunner

pytestmark = pytest.mark.asr
WORKER_TITLE = b"ray::_Recognizer"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    with local_ray_cluster(2) as cluster:
        yield cluster


def _raylet_pids(cluster: Cluster) -> set[int]:
    return {
        info.process.pid
        for node in cluster.list_all_nodes()
        for info in node.all_processes.get("raylet", [])
    }


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter


def recognizer_pids(cluster: Cluster, busy: bool = False) -> list[int]:
    """Processes of this cluster's recognition workers (children of its raylets); ``busy``:
    only those in the middle of a call (Ray titles them by the method they run)."""
    raylets = _raylet_pids(cluster)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if not title.startswith(WORKER_TITLE) or _parent(int(entry.name)) not in raylets:
                continue
        except OSError:
            continue  # gone meanwhile
        if not busy or title.startswith(WORKER_TITLE + b".transcribe"):
            found.append(int(entry.name))
    return found


def _words(call: Any) -> list[tuple[str, str, float, float]]:
    return [(u.role.value, w.text, w.start, w.end) for u in call.utterances for w in u.words]


# numbers_en.wav says "departing Caracas", which the model writes so (docs/asr.md); offered
# this spelling as a vocabulary term, it writes the term.
HOTWORDS = {"en": "Karakas"}


def _text(call: Any) -> str:
    return " ".join(u.text for u in call.utterances)


def _within(left: Any, right: Any, tolerance: float) -> bool:
    """Equal, except that floats may differ by ``tolerance``: a worker runs torch on its one
    CPU, this process on every core, and torch sums in another order with another number of
    threads (the voice embeddings move in their sixth decimal)."""
    if isinstance(left, float) and isinstance(right, float):
        return abs(left - right) <= tolerance
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            _within(left[k], right[k], tolerance) for k in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            _within(a, b, tolerance) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)


def test_ray_gives_the_same_transcripts_as_one_process(
    ray_cluster: Cluster, transcriber: Transcriber, real_audio: Path, tmp_path: Path
) -> None:
    settings = Settings()
    offering = shallow_copy(transcriber)
    offering.hotwords = dict(HOTWORDS)
    here = run_batch([real_audio], tmp_path / "here", settings, lambda: offering,
                     progress=False, hotwords=HOTWORDS)  # fmt: skip
    with RayRunner(settings, hotwords=HOTWORDS) as runner:
        there = run_batch([real_audio], tmp_path / "ray", settings, _no_local_model,
                          progress=False, runner=runner, hotwords=HOTWORDS)  # fmt: skip
        assert runner.shape is not None
        assert runner.shape.count == 2, "one worker per CPU of the two nodes"

    assert here.failures == there.failures == []
    assert there.transcribed == here.transcribed == 6
    assert [c.call.call_id for c in there.calls] == [c.call.call_id for c in here.calls]
    for mine, theirs in zip(here.calls, there.calls, strict=True):
        assert _words(theirs.call), theirs.call.call_id
        assert _words(theirs.call) == _words(mine.call), theirs.call.call_id
        assert _within(theirs.call.model_dump(), mine.call.model_dump(), 1e-5)
        assert read_call_file(Path(theirs.source)) == theirs.call
    numbers = next(c.call for c in there.calls if c.call.call_id == "numbers_en")
    assert "departing Karakas" in _text(numbers), "the Ray workers offer the terms"

    # Without the term the recording is done again (its ledger key holds the terms offered),
    # and reads as the model hears it.
    plain = run_batch([real_audio / "numbers_en.wav"], tmp_path / "ray", settings,
                      lambda: transcriber, progress=False)  # fmt: skip
    assert (plain.transcribed, plain.skipped) == (1, 0)
    assert "departing Caracas" in _text(plain.calls[0].call)


def _no_local_model() -> Transcriber:
    raise AssertionError("the Ray path must not load a model in the driver")


def test_a_worker_killed_mid_job_still_gives_every_file_once(
    ray_cluster: Cluster, real_audio: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for copy in range(3):  # 18 calls: the kill lands with most of the job still to do
        for source in [*sorted(real_audio.glob("*.wav")), real_audio / "jfk.flac"]:
            shutil.copy(source, inputs / f"{copy}-{source.name}")
    expected = sorted(p.stem for p in inputs.iterdir())
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_one_busy_worker() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if out.is_dir() and any(out.glob("*.json")):
                for pid in recognizer_pids(ray_cluster, busy=True):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
    killer.start()
    # Decoding groups of about two files: many calls to the workers, most still to come when
    # the first transcripts are written (the default groups would make this job one call).
    settings = Settings(asr_group_s=25)
    with RayRunner(settings) as runner:
        summary = run_batch([inputs], out, settings, _no_local_model, progress=False,
                            runner=runner)  # fmt: skip
    killer.join(timeout=1)

    assert killed, "a worker was killed while it transcribed"
    assert not Path(f"/proc/{killed[0]}").exists()
    assert summary.failures == []
    assert summary.transcribed == len(expected) == 18
    assert sorted(c.call.call_id for c in summary.calls) == expected, "each file exactly once"
    assert sorted(p.stem for p in out.glob("[0-9]-*.json")) == expected
    assert not list(out.glob(".*.tmp")), "no half-written transcript left behind"
    ledger = Ledger(out)
    assert len(ledger._entries) == len(expected)
    assert all(read_call_file(p).utterances for p in out.glob("[0-9]-*.json"))


def test_a_bad_file_is_reported_and_the_rest_done_then_a_rerun_skips_all(
    ray_cluster: Cluster, real_audio: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "corrupt.mp3").write_bytes(b"ID3\x03\x00" + os.urandom(4000))  # fails at probe
    for name in ("jfk.flac", "short_ru.wav", "phone_call_2spk_en.wav"):
        shutil.copy(real_audio / name, inputs / name)
    out = tmp_path / "out"
    # The 30 s call is over this limit: it fails on a worker, when the worker decodes it.
    settings = Settings(asr_max_audio_s=20)

    with RayRunner(settings) as runner:
        summary = run_batch([inputs], out, settings, _no_local_model, progress=False,
                            runner=runner)  # fmt: skip
    failed = "\n".join(summary.failures)
    assert len(summary.failures) == 2, failed
    assert "corrupt.mp3: not a readable audio file" in failed
    assert "phone_call_2spk_en.wav: 30 s long, over the 20 s limit" in failed
    assert sorted(c.call.call_id for c in summary.calls) == ["jfk", "short_ru"]
    assert "ask not what your country" in " ".join(u.text for u in summary.calls[0].call.utterances)

    with RayRunner(settings) as runner:
        again = run_batch([inputs], out, settings, _no_local_model, progress=False,
                          runner=runner)  # fmt: skip
    assert (again.skipped, again.transcribed) == (2, 0), "done files are not redone"
    assert len(again.failures) == 2, "failed files are tried again, and fail again"

    (inputs / "phone_call_2spk_en.wav").unlink()
    idle = RayRunner(settings)
    third = run_batch([inputs], out, settings, _no_local_model, progress=False, runner=idle)
    assert (third.skipped, third.transcribed, len(third.failures)) == (2, 0, 1)
    assert idle.shape is None, "nothing to transcribe: no worker started, no model loaded"


def test_the_cli_runs_on_the_cluster(ray_cluster: Cluster, real_audio: Path,
                                     tmp_path: Path) -> None:  # fmt: skip
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(real_audio / "short_ru.wav", inputs / "short_ru.wav")
    (inputs / "empty.wav").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "indexer", "transcribe", str(inputs), "--out",
         str(tmp_path / "out"), "--ray", ray_cluster.address, "-q"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600,
        env={**os.environ, "EARSHOT_ASR_DEVICE": "cpu"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "empty.wav: file is empty" in result.stderr
    assert "transcribed 1 (0 without speech), skipped 0 already done, failed 1" in result.stderr
    assert "сети" in read_call_file(tmp_path / "out" / "short_ru.json").utterances[0].text
