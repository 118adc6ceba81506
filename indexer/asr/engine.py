"""The recogniser: one WhisperX model, loaded once per process, from a local directory only.

WhisperX supplies the model loader, the pyannote VAD (its segmentation checkpoint ships inside
the whisperx wheel, so it works offline; WhisperX's own Silero option would fetch from GitHub)
and a batched decoder that returns *segment*-level text. Speech regions come from the VAD that
``asr_vad`` names: ``silero`` (default), the Silero model that ships inside the faster-whisper
wheel, run on onnxruntime, or ``pyannote``, WhisperX's. Word times come from one of two places:

* ``recognize_text`` + ``alignment.Aligner``: canonical WhisperX — batched transcription,
  then wav2vec2 forced alignment. Used when an alignment model for the language is configured.
  WhisperX runs its own pyannote VAD inside, whatever ``asr_vad`` says.
* ``recognize_words``: the documented fallback — the channel's speech regions packed into
  full windows (``packing``) and decoded by faster-whisper's batched pipeline on the *same
  loaded model* with ``word_timestamps=True``, which times words from Whisper's
  cross-attention. Coarser than wav2vec2, but every word is timed and nothing is downloaded.
  Transcripts record it as ``asr.aligned = false``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexer.asr import packing
from indexer.asr.audio import SAMPLE_RATE, Samples
from indexer.asr.offline import stay_offline
from indexer.asr.schema import Chunk, RecognizedSegment, TimedWord
from indexer.asr.threads import limit_torch_threads
from indexer.errors import AsrModelError

Device = Literal["auto", "cpu", "cuda"]
VadName = Literal["silero", "pyannote"]
LANGUAGE_WINDOW_S = 30.0  # Whisper detects language from one 30 s window
# Audio kept either side of a VAD speech region when packing (faster-whisper pads by 400 ms).
SPEECH_PAD_S = 0.4
# Hop of the pyannote VAD's 5 s sliding window. pyannote's default (10 % of the window, 0.5 s)
# runs every second of audio through the model ten times and cost as much as decoding on CPU;
# at half the window each frame is still scored twice, and regions move by ~1 % of frames.
VAD_STEP_S = 2.5
# Silero: a pause this long ends a region (faster-whisper's batched mode uses the same).
SILERO_MIN_SILENCE_MS = 160
# A source that shared windows with others is decoded again alone when at least UNHEARD_S of
# its speech lies later than HEARD_SLACK_S after its last recognised word in a window
# (``packing.unheard_sources``): long enough for a word, beyond a word time's usual error.
UNHEARD_S = 0.5
HEARD_SLACK_S = 1.0
# Encoder outputs of windows whose language was detected, kept for their decoding: one window
# of the base model is 1500 × 512 floats (3 MB), so a group of short calls holds some dozens.
HELD_ENCODINGS = 32
# Half a sample: a window's bounds are handed to faster-whisper in seconds, which it turns back
# into samples by truncation; the half keeps every window exactly the samples packing cut.
HALF_SAMPLE_S = 0.5 / SAMPLE_RATE
# A window's log-Mel frames (10 ms each): Whisper's 30 s input; the encoder halves them.
WINDOW_FRAMES = 3000
# A fitted window (``fitted_frames``) keeps this much past its last spoken frame, so the encoder
# still sees the end of the speech followed by padding, as in the 30 s windows it was trained on.
FIT_MARGIN_FRAMES = 300


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
        beam_size: int = 5,
        vad: VadName = "silero",
        fit_floor_s: float = 0.0,
    ) -> None:
        from faster_whisper import BatchedInferencePipeline

        self._pipeline = pipeline
        # Encodes once what language detection already encoded (``detect_language_in``), and
        # fits each batch of windows to its speech when ``fit_floor_s`` is set.
        self._encoder = HeldEncodings(pipeline.model, HELD_ENCODINGS)
        self.fit_floor_s = fit_floor_s
        # Shares the WhisperX-loaded CTranslate2 model: no second copy in memory.
        self._batched = BatchedInferencePipeline(model=self._encoder)
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.chunk_s = chunk_s
        self.beam_size = beam_size
        self.vad = vad
        # What cross-file packing did in this process (scripts/bench-asr reports it).
        self.windows_decoded = 0
        self.sources_redone = 0
        self.encodings_reused = 0  # windows decoded from language detection's encoder pass
        self.detection_passes = 0  # encoder passes run to detect a language

    @property
    def fit_floor_s(self) -> float:
        """Least seconds a window is encoded over (``fitted_frames``); 0: every window 30 s."""
        return self._encoder.fit_floor * LANGUAGE_WINDOW_S / WINDOW_FRAMES

    @fit_floor_s.setter
    def fit_floor_s(self, seconds: float) -> None:
        self._encoder.fit_floor = round(seconds * WINDOW_FRAMES / LANGUAGE_WINDOW_S)

    @property
    def frames_encoded(self) -> int:
        """Log-Mel frames this process ran through the encoder (100 a second of window)."""
        return self._encoder.frames_encoded

    @classmethod
    def load(
        cls,
        model_dir: Path,
        device: Device = "auto",
        batch_size: int = 8,
        compute_type: str | None = None,
        threads: int = 0,
        chunk_s: float = 30.0,
        beam_size: int = 5,
        vad: VadName = "silero",
        vad_step_s: float = VAD_STEP_S,
        fit_floor_s: float = 0.0,
    ) -> Engine:
        if not (model_dir / "model.bin").is_file():
            raise AsrModelError(
                f"no faster-whisper model in {model_dir} (model.bin missing); "
                "set EARSHOT_ASR_MODEL_DIR or run scripts/fetch-test-model"
            )
        stay_offline()
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
                asr_options={"beam_size": beam_size},
                local_files_only=True,
                threads=threads or os.cpu_count() or 1,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise AsrModelError(f"cannot load the model in {model_dir}: {exc}") from exc
        _set_vad_step(pipeline.vad_model, vad_step_s)
        limit_torch_threads(threads)  # the VAD model runs in torch (indexer.asr.threads)
        return cls(
            pipeline, model_dir.name, resolved, batch_size, chunk_s, beam_size, vad, fit_floor_s
        )

    def speech_regions(self, samples: Samples) -> list[Chunk]:
        """Speech regions of one channel, none longer than a window less its two margins."""
        longest = self.chunk_s - 2 * SPEECH_PAD_S
        if self.vad == "silero":
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            options = VadOptions(
                max_speech_duration_s=longest,
                min_silence_duration_ms=SILERO_MIN_SILENCE_MS,
                speech_pad_ms=0,  # packing adds SPEECH_PAD_S itself
            )
            return [
                Chunk(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE)
                for s in get_speech_timestamps(samples, options)
            ]
        from whisperx.vads.pyannote import Binarize

        vad = self._pipeline.vad_model
        scores = vad({"waveform": vad.preprocess_audio(samples), "sample_rate": SAMPLE_RATE})
        params = self._pipeline._vad_params
        binarize = Binarize(
            onset=params["vad_onset"], offset=params["vad_offset"], max_duration=longest
        )
        return [Chunk(float(r.start), float(r.end)) for r in binarize(scores).get_timeline()]

    def detect_language(self, speech: Samples) -> tuple[str, float]:
        """Language of (up to 30 s of) speech, and Whisper's confidence in it."""
        window = speech[: int(LANGUAGE_WINDOW_S * SAMPLE_RATE)]
        self.detection_passes += 1
        language, probability, _ = self._pipeline.model.detect_language(audio=window)
        return str(language), float(probability)

    def detect_language_in(
        self, sources: Sequence[tuple[Samples, list[Chunk]]], shared: bool
    ) -> tuple[str, float] | None:
        """Language of a recording whose speech (``sources``: its channels) fits one window as
        ``recognize_words_of`` will pack it alone (``shared``: its channels in one window),
        detected on that very window; None when it needs more windows (or runs on a GPU,
        where an encoder pass is cheap and its output stays on the device).

        The window's encoder output is held, so decoding it (``recognize_words_of`` with this
        recording alone in its windows) costs no second encoder pass: what faster-whisper
        does for the first window of a file whose language it detects."""
        if self.device != "cpu":
            return None
        plan = self._plan(sources, [0] * len(sources) if shared else range(len(sources)))
        if len(plan.windows) != 1:
            return None
        features = self._window_features(
            packing.packed_audio([samples for samples, _ in sources], plan), plan.windows[0]
        )
        encoded = self._encoder.encode_fresh(features[np.newaxis])
        self.detection_passes += 1
        scores = self._encoder.whisper.model.detect_language(encoded)[0]
        token, probability = scores[0]  # the likeliest, as "<|ru|>"
        self._encoder.hold(features, encoded)
        return str(token)[2:-2], float(probability)

    def _plan(
        self, sources: Sequence[tuple[Samples, list[Chunk]]], together: Sequence[int]
    ) -> packing.Packing:
        plans = [
            packing.plan(
                [(r.start, r.end) for r in regions],
                len(samples) / SAMPLE_RATE,
                SPEECH_PAD_S,
                self.chunk_s,
            )
            for samples, regions in sources
        ]
        return packing.combine(plans, self.chunk_s, together=together)

    def _window_features(self, audio: Samples, window: tuple[float, float]) -> Any:
        """The log-Mel features of one window, made as faster-whisper's batched pipeline makes
        them from ``clip_timestamps`` (so a held encoding is found again by them)."""
        from faster_whisper.audio import pad_or_trim

        start, end = (int((t + HALF_SAMPLE_S) * SAMPLE_RATE) for t in window)
        extractor = self._encoder.whisper.feature_extractor
        return pad_or_trim(extractor(audio[start:end])[..., :-1])

    def recognize_words(
        self, samples: Samples, regions: list[Chunk], language: str, hotwords: str | None = None
    ) -> list[RecognizedSegment]:
        """Fallback path: packed speech decoded in batches with Whisper word timestamps.
        ``hotwords`` (the company vocabulary's terms) are put before each window's decoding,
        where they make the model likelier to write those words as spelled there."""
        return self.recognize_words_of([(samples, regions)], language, hotwords)[0]

    def recognize_words_of(
        self,
        sources: Sequence[tuple[Samples, list[Chunk]]],
        language: str,
        hotwords: str | None = None,
        shared: bool = True,
        together: Sequence[int] | None = None,
    ) -> list[list[RecognizedSegment]]:
        """``recognize_words`` for several sources (channels of one or more recordings, all in
        ``language``) at once: their speech shares windows (``packing.combine``), so short
        calls fill windows together; each source gets its own segments, in its own times.
        ``together`` (a number per source, as ``packing.combine`` takes it) keeps some apart:
        a recording whose language was detected on its own window is decoded in that window.

        Each window is decoded on its own (no conditioning on previous text), so a source's
        words depend on its neighbours only within the windows they share. A source whose
        speech the shared decode left out (``packing.unheard_sources``) is decoded again in
        windows of its own (``shared`` False: every source so), and those words stand."""
        found: list[list[RecognizedSegment]] = [[] for _ in sources]
        if together is None:
            together = [0] * len(sources) if shared else range(len(sources))
        plan = self._plan(sources, together)
        if not plan.windows:
            return found
        self.windows_decoded += len(plan.windows)
        audio = [samples for samples, _ in sources]
        reused = self._encoder.reused
        segments, _ = self._batched.transcribe(
            packing.packed_audio(audio, plan),
            language=language,
            task="transcribe",
            batch_size=self.batch_size,
            beam_size=self.beam_size,
            word_timestamps=True,
            without_timestamps=True,
            condition_on_previous_text=False,
            clip_timestamps=[
                {"start": start + HALF_SAMPLE_S, "end": end + HALF_SAMPLE_S}
                for start, end in plan.windows
            ],
            hotwords=hotwords,
        )
        heard: list[tuple[float, float]] = []  # every word, in packed time
        for segment in segments:
            # A window holding several sources gives one segment: its words go to their own.
            by_source: dict[int, list[TimedWord]] = {}
            for w in segment.words or []:
                heard.append((float(w.start), float(w.end)))
                source, start, end = plan.place_word(audio, float(w.start), float(w.end))
                by_source.setdefault(source, []).append(
                    TimedWord(w.word, start, end, float(w.probability))
                )
            if not by_source:
                middle = (float(segment.start) + float(segment.end)) / 2
                source = plan.spans[plan.span_at(middle)].source
                bounds = plan.interval(float(segment.start), float(segment.end))
                found[source].append(RecognizedSegment(*bounds, segment.text))
                continue
            for source, words in by_source.items():
                text = segment.text if len(by_source) == 1 else "".join(w.text for w in words)
                bounds = (words[0].start or 0.0, max(w.end or 0.0 for w in words))
                found[source].append(RecognizedSegment(*bounds, text, tuple(words)))
        self.encodings_reused += self._encoder.reused - reused
        if shared and len(sources) > 1:
            redo = sorted(packing.unheard_sources(plan, heard, UNHEARD_S, HEARD_SLACK_S))
            if redo:
                self.sources_redone += len(redo)
                again = self.recognize_words_of(
                    [sources[n] for n in redo], language, hotwords, shared=False
                )
                for n, segments_alone in zip(redo, again, strict=True):
                    found[n] = segments_alone
        return found

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


class HeldEncodings:
    """The Whisper model as faster-whisper's batched pipeline uses it, with two changes to its
    encoder passes.

    * Encoder outputs computed earlier (``hold``) are handed back for the same features
      instead of encoding them again. A window is found by the digest of its features, so a
      window that differs in any sample is simply encoded; at most ``capacity`` outputs are
      held (the oldest go first). CPU only: the outputs are kept as arrays in memory.
    * With ``fit_floor`` frames set, a batch of windows is encoded over its speech only
      (``fitted_frames``) instead of the full 30 s, most of which is padding in a short call's
      window; 0: every window over its 3,000 frames, as Whisper was trained."""

    def __init__(self, model: Any, capacity: int, fit_floor: int = 0) -> None:
        # faster_whisper.WhisperModel; not "model", which the pipeline reads through to it.
        self.whisper = model
        self.capacity = capacity
        self.fit_floor = fit_floor
        self.reused = 0
        self.frames_encoded = 0  # log-Mel frames through the encoder (scripts/bench-asr)
        self._held: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._alive: Any = None  # the array the last combined output's storage points into

    def __getattr__(self, name: str) -> Any:
        return getattr(self.whisper, name)

    def hold(self, features: np.ndarray, encoded: Any) -> None:
        """Keep ``encoded`` (the encoder output of one window) for ``features``."""
        self._held[_digest(features)] = np.array(encoded)[0]
        while len(self._held) > self.capacity:
            self._held.popitem(last=False)

    def encode_fresh(self, batch: np.ndarray, frames: int | None = None) -> Any:
        """The encoder output of a batch of windows' features over ``frames`` of them (default:
        the batch's ``fitted_frames``), never a held one."""
        if frames is None:
            frames = fitted_frames(batch, self.fit_floor)
        self.frames_encoded += frames * len(batch)
        return self.whisper.encode(np.ascontiguousarray(batch[..., :frames]))

    def encode(self, features: np.ndarray) -> Any:
        """The encoder output of a batch of windows' features (``WhisperModel.encode``)."""
        batch = features if features.ndim == 3 else features[np.newaxis]
        if not self._held:
            return self.encode_fresh(batch)
        import ctranslate2

        # Every row of the output has the batch's length: a held output of another length is
        # of no use in it, and the rows encoded now are fitted to the whole batch, not to
        # themselves (they may have less speech than a held row).
        frames = fitted_frames(batch, self.fit_floor)
        found = [self._held.pop(_digest(row), None) for row in batch]
        found = [row if row is not None and len(row) == frames // 2 else None for row in found]
        missing = [n for n, row in enumerate(found) if row is None]
        if len(missing) == len(found):
            return self.encode_fresh(batch, frames)
        if missing:
            fresh = np.array(self.encode_fresh(batch[missing], frames))
            for n, row in zip(missing, fresh, strict=True):
                found[n] = row
        self.reused += len(found) - len(missing)
        self._alive = np.ascontiguousarray(np.stack([r for r in found if r is not None]))
        return ctranslate2.StorageView.from_array(self._alive)


def fitted_frames(batch: np.ndarray, floor: int) -> int:
    """How many of a batch of windows' log-Mel frames to encode: all of them when ``floor`` is
    0; else up to the last frame any window speaks in, ``FIT_MARGIN_FRAMES`` more, at least
    ``floor`` (an even number, whole encoder positions; at most the window).

    A window shorter than 30 s reaches the encoder padded with frames of exact zeros
    (``faster_whisper.audio.pad_or_trim``); a frame of speech has no such column, so the last
    column that is not all zeros is where the window's audio ends. Whisper reads the shorter
    input as it is (CTranslate2 takes any length up to 3,000 frames), and a fitted window costs
    the encoder less than in proportion to its frames (docs/benchmarks.md)."""
    frames = int(batch.shape[-1])
    if floor <= 0:
        return frames
    spoken = np.flatnonzero(batch.any(axis=tuple(range(batch.ndim - 1))))
    end = int(spoken[-1]) + 1 if spoken.size else 0
    fitted = max(floor, end + FIT_MARGIN_FRAMES)
    return min(frames, fitted + fitted % 2)


def _digest(features: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()


def speech_of(samples: Samples, chunks: list[Chunk]) -> Samples:
    """The speech-only audio of some regions, concatenated (for language detection)."""
    parts = [samples[int(c.start * SAMPLE_RATE) : int(c.end * SAMPLE_RATE)] for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _set_vad_step(vad: Any, step_s: float) -> None:
    """Re-make the VAD's sliding-window inference with a longer hop (``VAD_STEP_S``).

    The windows still overlap (each frame is scored by ``duration / step`` windows and the
    scores averaged), so regions barely move; the cost falls in proportion to the hop.
    """
    from pyannote.audio import Inference

    current = vad.vad_pipeline._segmentation
    vad.vad_pipeline._segmentation = Inference(
        current.model,
        duration=current.duration,
        step=min(step_s, current.duration),
        batch_size=current.batch_size,
        pre_aggregation_hook=current.pre_aggregation_hook,
        device=current.device,
    )


def _quiet_libraries() -> None:
    # WhisperX and pyannote log per-file chatter at INFO; the CLI has its own progress bar.
    for name in ("whisperx", "faster_whisper", "pyannote", "lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
