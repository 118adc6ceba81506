"""The recogniser: one WhisperX model, loaded once per process, from a local directory only.

WhisperX supplies the model loader, the pyannote VAD (its segmentation checkpoint ships inside
the whisperx wheel, so it works offline; the Silero option would fetch from GitHub) and a
batched decoder that returns *segment*-level text. Word times come from one of two places:

* ``recognize_text`` + ``alignment.Aligner``: canonical WhisperX — batched transcription,
  then wav2vec2 forced alignment. Used when an alignment model for the language is configured.
* ``recognize_words``: the documented fallback — the same VAD chunks decoded by
  faster-whisper's batched pipeline on the *same loaded model* with ``word_timestamps=True``,
  which times words from Whisper's cross-attention. Coarser than wav2vec2, but every word is
  timed and nothing is downloaded. Transcripts record it as ``asr.aligned = false``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexer.asr.audio import SAMPLE_RATE, Samples
from indexer.asr.words import TimedWord
from indexer.errors import EarshotError

Device = Literal["auto", "cpu", "cuda"]
LANGUAGE_WINDOW_S = 30.0  # Whisper detects language from one 30 s window


class AsrModelError(EarshotError):
    """The configured model cannot be used (missing directory, unreadable weights, no CUDA)."""


@dataclass(frozen=True)
class Chunk:
    """A stretch of speech handed to Whisper as one window (≤ 30 s)."""

    start: float
    end: float


@dataclass(frozen=True)
class RecognizedSegment:
    start: float
    end: float
    text: str
    words: tuple[TimedWord, ...] = ()  # empty when the engine gave text only


def resolve_device(device: Device) -> Literal["cpu", "cuda"]:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AsrModelError("--device cuda was asked for, but no CUDA device is available")
    return device


class Engine:
    """WhisperX with its VAD; create with ``Engine.load``, reuse for every file of a run."""

    name = "whisperx"

    def __init__(
        self,
        pipeline: Any,
        model_name: str,
        device: Literal["cpu", "cuda"],
        batch_size: int,
        chunk_s: float,
    ) -> None:
        from faster_whisper import BatchedInferencePipeline

        self._pipeline = pipeline
        # Shares the WhisperX-loaded CTranslate2 model: no second copy in memory.
        self._batched = BatchedInferencePipeline(model=pipeline.model)
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.chunk_s = chunk_s

    @classmethod
    def load(
        cls,
        model_dir: Path,
        device: Device = "auto",
        batch_size: int = 8,
        compute_type: str | None = None,
        threads: int = 0,
        chunk_s: float = 30.0,
    ) -> Engine:
        if not (model_dir / "model.bin").is_file():
            raise AsrModelError(
                f"no faster-whisper model in {model_dir} (model.bin missing); "
                "set EARSHOT_ASR_MODEL_DIR or run scripts/fetch-test-model"
            )
        # Models come from local paths only; make any accidental hub lookup fail fast.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import whisperx

        _quiet_libraries()
        resolved = resolve_device(device)
        compute = compute_type or ("float16" if resolved == "cuda" else "int8")
        try:
            pipeline = whisperx.load_model(
                str(model_dir),
                resolved,
                compute_type=compute,
                vad_method="pyannote",
                vad_options={"chunk_size": chunk_s},
                local_files_only=True,
                threads=threads or os.cpu_count() or 1,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise AsrModelError(f"cannot load the model in {model_dir}: {exc}") from exc
        return cls(pipeline, model_dir.name, resolved, batch_size, chunk_s)

    def speech_chunks(self, samples: Samples) -> list[Chunk]:
        """WhisperX's VAD: speech regions merged into windows of at most ``chunk_s``."""
        vad = self._pipeline.vad_model
        scores = vad({"waveform": vad.preprocess_audio(samples), "sample_rate": SAMPLE_RATE})
        params = self._pipeline._vad_params
        merged = vad.merge_chunks(
            scores, self.chunk_s, onset=params["vad_onset"], offset=params["vad_offset"]
        )
        return [Chunk(float(c["start"]), float(c["end"])) for c in merged]

    def detect_language(self, speech: Samples) -> tuple[str, float]:
        """Language of (up to 30 s of) speech, and Whisper's confidence in it."""
        window = speech[: int(LANGUAGE_WINDOW_S * SAMPLE_RATE)]
        language, probability, _ = self._pipeline.model.detect_language(audio=window)
        return str(language), float(probability)

    def recognize_words(
        self, samples: Samples, chunks: list[Chunk], language: str
    ) -> list[RecognizedSegment]:
        """Fallback path: batched decoding of the VAD chunks with Whisper word timestamps."""
        if not chunks:
            return []
        segments, _ = self._batched.transcribe(
            samples,
            language=language,
            task="transcribe",
            batch_size=self.batch_size,
            beam_size=5,
            word_timestamps=True,
            without_timestamps=True,
            condition_on_previous_text=False,
            clip_timestamps=[{"start": c.start, "end": c.end} for c in chunks],
        )
        recognized = []
        for segment in segments:
            words = tuple(
                TimedWord(w.word, float(w.start), float(w.end), float(w.probability))
                for w in segment.words or []
            )
            recognized.append(
                RecognizedSegment(float(segment.start), float(segment.end), segment.text, words)
            )
        return recognized

    def recognize_text(self, samples: Samples, language: str) -> list[RecognizedSegment]:
        """Aligned path: WhisperX's own batched transcription (segment text, no word times)."""
        result = self._pipeline.transcribe(
            samples, batch_size=self.batch_size, language=language, chunk_size=self.chunk_s
        )
        return [
            RecognizedSegment(float(s["start"]), float(s["end"]), str(s["text"]))
            for s in result["segments"]
            if str(s["text"]).strip()
        ]


def speech_of(samples: Samples, chunks: list[Chunk]) -> Samples:
    """The speech-only audio of some chunks, concatenated (for language detection)."""
    parts = [samples[int(c.start * SAMPLE_RATE) : int(c.end * SAMPLE_RATE)] for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _quiet_libraries() -> None:
    # WhisperX and pyannote log per-file chatter at INFO; the CLI has its own progress bar.
    for name in ("whisperx", "faster_whisper", "pyannote", "lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
