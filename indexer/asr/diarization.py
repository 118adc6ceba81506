"""Speaker turns for mono calls: WhisperX's pyannote pipeline from a local directory, or turns
someone else already computed (an RTTM file from the telephony system or an annotator)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from indexer.asr.audio import Samples
from indexer.asr.roles import SpeakerTurn
from indexer.errors import AsrModelError


class Diarizer(Protocol):
    """Anything that tells who speaks when in a mono recording."""

    @property
    def name(self) -> str:
        """What transcripts record in ``asr.diarization``."""
        ...

    def __call__(self, samples: Samples) -> list[SpeakerTurn]: ...


class PyannoteDiarizer:
    """``whisperx.diarize.DiarizationPipeline`` loaded once from ``diarization_model_dir``."""

    name = "pyannote"

    def __init__(self, model_dir: Path, device: str) -> None:
        if not (model_dir / "config.yaml").is_file():
            raise AsrModelError(f"no pyannote pipeline in {model_dir} (config.yaml missing)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from whisperx.diarize import DiarizationPipeline

        try:
            self._pipeline = DiarizationPipeline(model_name=str(model_dir), device=device)
        except Exception as exc:  # pyannote raises bare Exceptions for bad checkpoints
            raise AsrModelError(f"cannot load diarization model {model_dir}: {exc}") from exc

    def __call__(self, samples: Samples) -> list[SpeakerTurn]:
        frame = self._pipeline(samples)
        return [
            SpeakerTurn(float(row.start), float(row.end), str(row.speaker))
            for row in frame.itertuples()
        ]


class FixedTurns:
    """Turns known in advance, e.g. read from an RTTM file."""

    def __init__(self, turns: Sequence[SpeakerTurn], name: str = "rttm") -> None:
        self._turns = list(turns)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __call__(self, samples: Samples) -> list[SpeakerTurn]:
        return list(self._turns)


def read_rttm(path: Path) -> list[SpeakerTurn]:
    """``SPEAKER <file> <chan> <start> <duration> <NA> <NA> <speaker> <NA> <NA>`` lines."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append(SpeakerTurn(start, start + duration, fields[7]))
    return sorted(turns, key=lambda t: t.start)
