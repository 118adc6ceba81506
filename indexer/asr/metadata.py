"""Call metadata for a recording: a sidecar JSON beside it, a CSV manifest, or defaults.

Sidecar: ``<recording stem>.meta.json`` next to the recording (``call-17.wav`` →
``call-17.meta.json``), with any of the fields of ``CallMetadata``. Manifest: a CSV whose
``file`` column names recordings (relative to the manifest or by bare file name) and whose
other columns are ``MANIFEST_COLUMNS``; empty cells mean "not given". When both describe a
recording, the sidecar's fields win.

Defaults: the call id is the file name stem made safe for ids, the start time the container's
``creation_time`` or else the file's modification time, the direction outbound (these are
sales calls), the layout left = manager / right = client, and the language is detected.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from indexer.asr.audio import AudioProbe
from indexer.asr.roles import SpeakerRule, parse_layout
from indexer.errors import TranscriptError
from indexer.transcript import Client, Direction, Manager, Role

SIDECAR_SUFFIX = ".meta.json"
MANIFEST_COLUMNS = (
    "file", "call_id", "started_at", "direction", "language", "channels", "speaker_rule",
    "speakers",
    "manager_id", "manager_name", "manager_team", "client_id", "client_name", "client_phone",
)  # fmt: skip
UNASSIGNED_MANAGER = "unassigned"


class CallMetadata(BaseModel):
    """What a sidecar or manifest row may say about a call; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: str | None = None
    started_at: AwareDatetime | None = None
    direction: Direction | None = None
    language: str | None = Field(default=None, min_length=2, max_length=8)
    channels: tuple[Role, ...] | None = Field(
        default=None, description="Role of each channel, left first: ['manager', 'client']."
    )
    speaker_rule: SpeakerRule | None = None
    speakers: int | None = Field(
        default=None, ge=1, le=20, description="How many people speak (mono calls), when known."
    )
    manager: Manager | None = None
    client: Client | None = None

    @field_validator("channels", mode="before")
    @classmethod
    def _layout(cls, value: Any) -> Any:
        return parse_layout(value) if isinstance(value, str) else value

    def overridden_by(self, other: CallMetadata) -> CallMetadata:
        # Validated again, not model_copy(update=...): that would leave nested models (manager,
        # client) as the plain dicts model_dump made of them.
        merged = {
            **self.model_dump(exclude_none=True),
            **other.model_dump(exclude_none=True, exclude_unset=True),
        }
        return CallMetadata.model_validate(merged)


@dataclass(frozen=True)
class ResolvedMetadata:
    """Metadata with every default applied: what a transcript is built from."""

    call_id: str
    started_at: datetime
    direction: Direction
    language: str | None  # None: detect
    channels: tuple[Role, ...] | None  # None: the default layout
    speaker_rule: SpeakerRule | None  # None: Settings.asr_speaker_rule
    manager: Manager
    client: Client
    speakers: int | None = None  # None: diarization estimates it


class MetadataSource:
    """Looks up the metadata of each recording from sidecars and an optional manifest."""

    def __init__(self, manifest: Path | None = None) -> None:
        self._rows: dict[str, CallMetadata] = {}
        if manifest is not None:
            self._rows = read_manifest(manifest)

    def lookup(self, audio: AudioProbe) -> ResolvedMetadata:
        path = audio.path
        found = self._manifest_row(path) or CallMetadata()
        sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
        if sidecar.is_file():
            found = found.overridden_by(read_sidecar(sidecar))
        return resolve(found, audio)

    def _manifest_row(self, path: Path) -> CallMetadata | None:
        for key in (str(path.resolve()), path.name):
            if key in self._rows:
                return self._rows[key]
        return None


def read_sidecar(path: Path) -> CallMetadata:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TranscriptError(str(path), "(file)", f"unreadable metadata: {exc}") from exc
    return _validate(data, str(path))


def read_manifest(path: Path) -> dict[str, CallMetadata]:
    """Rows keyed by the resolved path of their recording and by its bare file name."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            unknown = set(reader.fieldnames or ()) - set(MANIFEST_COLUMNS)
            if "file" not in (reader.fieldnames or ()) or unknown:
                raise TranscriptError(
                    str(path), "(header)",
                    f"needs a 'file' column; unknown columns: {sorted(unknown) or 'none'}",
                )  # fmt: skip
            rows = list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TranscriptError(str(path), "(file)", f"unreadable manifest: {exc}") from exc
    found: dict[str, CallMetadata] = {}
    for line, row in rows:
        cells = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
        file = cells.pop("file", "")
        if not file:
            raise TranscriptError(f"{path}:{line}", "file", "empty")
        meta = _validate(_nest(cells), f"{path}:{line}")
        found[str((path.parent / file).resolve())] = meta
        found.setdefault(Path(file).name, meta)
    return found


def resolve(meta: CallMetadata, audio: AudioProbe) -> ResolvedMetadata:
    return ResolvedMetadata(
        call_id=meta.call_id or call_id_from_path(audio.path),
        started_at=meta.started_at or audio.created_at or _modified_at(audio.path),
        direction=meta.direction or Direction.OUTBOUND,
        language=meta.language,
        channels=meta.channels,
        speaker_rule=meta.speaker_rule,
        manager=meta.manager or Manager(id=UNASSIGNED_MANAGER),
        client=meta.client or Client(),
        speakers=meta.speakers,
    )


def call_id_from_path(path: Path) -> str:
    """The file stem made to fit the contract's id pattern; a hash of it when nothing fits."""
    safe = re.sub(r"[^A-Za-z0-9._:-]+", "-", path.stem).strip("-._:")[:128]
    return safe or "call-" + hashlib.sha1(path.stem.encode()).hexdigest()[:12]


def _nest(cells: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in cells.items():
        party, _, field = key.partition("_")
        if party in ("manager", "client") and field in ("id", "name", "team", "phone"):
            data.setdefault(party, {})[field] = value
        else:
            data[key] = value
    return data


def _validate(data: Any, source: str) -> CallMetadata:
    try:
        return CallMetadata.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise TranscriptError(source, field, first["msg"]) from exc


def _modified_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
