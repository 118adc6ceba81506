"""WhisperX forced alignment (wav2vec2 CTC), used when a local model exists for the language.

Layout of ``Settings.align_model_dir``: one Hugging Face wav2vec2 CTC model directory per
language code, e.g. ``align/en/`` (config.json, model weights, vocab.json,
preprocessor_config.json) and ``align/ru/``. A language without a directory falls back to
Whisper's own word timestamps (``engine.Engine.recognize_words``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.asr.audio import Samples
from indexer.asr.offline import stay_offline
from indexer.asr.schema import RecognizedSegment, TimedWord
from indexer.errors import AsrModelError
from indexer.settings import PROJECT_ROOT

# Where an empty Punkt model is written when NLTK's punkt_tab data is not installed.
SENTENCE_DATA_DIR = PROJECT_ROOT / ".cache" / "nltk_data"


class Aligner:
    """Loads each language's wav2vec2 model on first use and keeps it for the run."""

    def __init__(self, root: Path, device: str) -> None:
        self.root = root
        self.device = device
        self._models: dict[str, tuple[Any, dict[str, Any]]] = {}

    def model_dir(self, language: str) -> Path | None:
        candidate = self.root / language
        return candidate if (candidate / "config.json").is_file() else None

    def supports(self, language: str) -> bool:
        return self.model_dir(language) is not None

    def align(
        self, segments: list[RecognizedSegment], samples: Samples, language: str
    ) -> list[RecognizedSegment]:
        """Segments with per-word times; words the aligner cannot place have ``None`` times."""
        if not segments:
            return []
        import whisperx

        model, metadata = self._load(language)
        _ensure_sentence_splitter(language)
        result = whisperx.align(
            [{"start": s.start, "end": s.end, "text": s.text} for s in segments],
            model,
            metadata,
            samples,
            self.device,
            return_char_alignments=False,
        )
        aligned: list[RecognizedSegment] = []
        for segment in result["segments"]:
            words = tuple(
                TimedWord(
                    text=str(w["word"]),
                    start=_time(w.get("start")),
                    end=_time(w.get("end")),
                    score=_time(w.get("score")),
                )
                for w in segment.get("words", [])
            )
            if not words:
                # The aligner gave up on this segment (no alignable characters): keep its text
                # as untimed words so it is interpolated across the segment, not lost.
                words = tuple(TimedWord(t, None, None) for t in str(segment["text"]).split())
            # WhisperX interpolates sentence bounds itself; the NaN guard is for all-untimed input.
            start = _time(segment.get("start"))
            end = _time(segment.get("end"))
            aligned.append(
                RecognizedSegment(
                    start=start if start is not None else _previous_end(aligned, segments),
                    end=end if end is not None else segments[-1].end,
                    text=str(segment["text"]),
                    words=words,
                )
            )
        return aligned

    def _load(self, language: str) -> tuple[Any, dict[str, Any]]:
        if language not in self._models:
            directory = self.model_dir(language)
            if directory is None:
                raise AsrModelError(f"no alignment model for {language!r} under {self.root}")
            stay_offline()
            import whisperx

            try:
                self._models[language] = whisperx.load_align_model(
                    language_code=language,
                    device=self.device,
                    model_name=str(directory),
                    model_cache_only=True,
                )
            except (ValueError, OSError) as exc:
                raise AsrModelError(f"cannot load alignment model {directory}: {exc}") from exc
        return self._models[language]


def _previous_end(done: list[RecognizedSegment], inputs: list[RecognizedSegment]) -> float:
    return done[-1].end if done else inputs[0].start


def _time(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN means "not aligned"


def _ensure_sentence_splitter(language: str) -> None:
    """Make ``whisperx.align``'s Punkt lookup succeed offline.

    WhisperX splits each segment into sentences with NLTK Punkt and, when the ``punkt_tab``
    data is missing, tries to download it. When it is not installed we provide an *untrained*
    Punkt model (empty parameter files): it still splits at sentence punctuation, which is all
    alignment needs here, as utterances are re-split at pauses afterwards anyway.
    """
    import nltk  # type: ignore[import-untyped]
    from whisperx.utils import PUNKT_LANGUAGES

    name = PUNKT_LANGUAGES.get(language, "english")
    try:
        nltk.data.find(f"tokenizers/punkt_tab/{name}/")
        return
    except LookupError:
        pass
    target = SENTENCE_DATA_DIR / "tokenizers" / "punkt_tab" / name
    target.mkdir(parents=True, exist_ok=True)
    for file in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (target / file).touch()
    if str(SENTENCE_DATA_DIR) not in nltk.data.path:
        nltk.data.path.append(str(SENTENCE_DATA_DIR))
