"""scripts/bench-asr runs end to end on one short file cut in two, so the benchmark never rots.

Speed is not asserted here (timings belong in docs/benchmarks.md); only that every system
ran on every set and the table came out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.settings import PROJECT_ROOT

pytestmark = pytest.mark.asr


def test_bench_asr_smoke(real_audio: Path, tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "bench-asr"), "--repeat", "1",
         "--sets", "short", "--piece-s", "2", "--json", str(rows_file),
         str(real_audio / "short_ru.wav")],
        capture_output=True, text=True, timeout=600, check=False,
        # Cross-file batching is off by default; the bench compares it with every file alone.
        env={**os.environ, "EARSHOT_ASR_GROUP_S": "300"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| System | Set | Files |" in result.stdout
    report = json.loads(rows_file.read_text())
    ran = [(row["system"], row["set"]) for row in report["rows"]]
    assert ran == [("pipeline", "short"), ("pipeline-alone", "short"), ("pipeline-ray", "short"),
                   ("faster-whisper", "short"), ("whisperx", "short")]  # fmt: skip
    for row in report["rows"]:
        assert row["files"] == 2  # 3.2 s cut into 2 s pieces
        assert row["audio_s"] > 3
        assert row["wall_s"] > 0
    # "N (R)": windows decoded, R of them redone. Both pieces have speech, so alone they take a
    # window each; together no more (they have no language in metadata, so each is detected
    # on its own window and decoded there: two).
    grouped, alone = (int(row["windows"].split()[0]) for row in report["rows"][:2])
    assert alone == 2
    assert 1 <= grouped <= alone
    # Fitted windows: every encoder pass here is over at most 3.2 s of speech, so over the
    # floor (10 s), not a full 30 s window.
    for row in report["rows"][:2]:
        assert 0 < float(row["encoder_s"]) < 30 * int(row["encoder_passes"])
    # The Ray workers' CPU is in their processes: not counted as this one's.
    assert report["rows"][2]["cpu_s"] is None
    assert all(row["cpu_s"] > 0 for n, row in enumerate(report["rows"]) if n != 2)
