"""Earshot's settings, in one place, read from the environment (and an optional ``earshot.env``).

Every component (loader, transcriber, API, scripts) reads its configuration from here. Names are
the environment variables upper-cased with the ``EARSHOT_`` prefix, except ``ES_URL``, which is
shared with the scripts and compose.yaml.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EARSHOT_",
        env_file="earshot.env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # --- Elasticsearch -----------------------------------------------------------------------
    es_url: str = Field(
        default="http://127.0.0.1:9200",
        validation_alias=AliasChoices("ES_URL", "EARSHOT_ES_URL"),
        description="Elasticsearch to read and write; scripts/es-local starts one here.",
    )
    calls_alias: str = Field(
        default="calls", description="Alias every reader and writer uses for the calls index."
    )
    es_request_timeout_s: float = Field(default=10.0, gt=0)
    es_max_retries: int = Field(default=5, ge=0)

    # --- Loader --------------------------------------------------------------------------------
    bulk_chunk_size: int = Field(default=200, ge=1)

    # --- Transcription -----------------------------------------------------------------------
    asr_model_dir: Path = Field(
        default=PROJECT_ROOT / ".cache" / "models" / "whisper-base",
        description="Local faster-whisper model directory; never fetched from a hub.",
    )
    asr_device: Literal["auto", "cpu", "cuda"] = "auto"
    asr_batch_size: int = Field(default=8, ge=1)
    align_model_dir: Path | None = Field(
        default=None, description="Local wav2vec2 alignment model directory for the call language."
    )
    diarization_model_dir: Path | None = Field(
        default=None, description="Local pyannote diarization pipeline directory (mono calls)."
    )
    asr_compute_type: str | None = Field(
        default=None, description="CTranslate2 compute type; unset: float16 on CUDA, int8 on CPU."
    )
    asr_threads: int = Field(default=0, ge=0, description="CPU threads for decoding; 0: all cores.")
    asr_chunk_s: float = Field(
        default=30.0, gt=0, le=30, description="Longest VAD chunk handed to Whisper in one window."
    )
    asr_max_pause_s: float = Field(
        default=0.8, gt=0, description="A silence this long between words ends an utterance."
    )
    asr_min_audio_s: float = Field(
        default=0.3, ge=0, description="Shorter recordings get an empty transcript with a reason."
    )
    asr_max_audio_s: float = Field(
        default=4 * 3600.0, gt=0, description="Longer recordings are refused (memory bound)."
    )
    asr_speaker_rule: Literal["greeting", "first-is-manager", "first-is-client"] = Field(
        default="greeting",
        description="How diarized speakers of a mono call become roles (see docs/asr.md).",
    )
    asr_manager_cues: list[str] = Field(
        default_factory=lambda: [
            "меня зовут",
            "компания",
            "вас беспокоит",
            "спасибо за звонок",
            "чем могу помочь",
            "my name is",
            "calling from",
            "thank you for calling",
            "how can i help",
        ],
        description="Phrases that mark the manager when said in a speaker's opening words.",
    )
    transcripts_dir: Path = Field(
        default=PROJECT_ROOT / ".cache" / "transcripts",
        description="Where `ingest` writes transcripts when no --out is given.",
    )

    # --- API -----------------------------------------------------------------------------------
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_query_length: int = Field(default=500, ge=1)
    max_query_terms: int = Field(
        default=20, ge=1, description="Most words, phrases and NEARs one query may hold."
    )
    max_hits_per_call: int = Field(default=50, ge=1, le=100)
    cors_origins: list[str] = Field(default_factory=list)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
