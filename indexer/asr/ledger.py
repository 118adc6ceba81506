"""What a transcript output folder already holds, so re-runs skip finished recordings.

A recording is done when the folder's ledger (``.asr-ledger.json``) maps the hash of its
content *and* of everything that shapes its transcript (metadata, model, pipeline settings)
to a transcript file that still exists. Moving a recording does not redo it; editing it or its
sidecar, changing the model, or renaming one whose call id comes from its file name (no
sidecar) does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

LEDGER_NAME = ".asr-ledger.json"
_BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def job_key(audio_digest: str, inputs: dict[str, Any]) -> str:
    """One key for a recording's content plus the JSON-able inputs of its transcription."""
    shaped = json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=False)
    return f"{audio_digest}:{hashlib.sha256(shaped.encode()).hexdigest()[:16]}"


class Ledger:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LEDGER_NAME
        self._entries: dict[str, str] = {}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}  # a damaged ledger only costs re-transcription, never a crash
            if isinstance(loaded, dict):
                self._entries = {str(k): str(v) for k, v in loaded.items()}

    def done(self, key: str) -> Path | None:
        """The transcript already made for ``key``, if it is still there."""
        name = self._entries.get(key)
        if name is None:
            return None
        output = self.path.parent / name
        return output if output.is_file() else None

    def record(self, key: str, output: Path) -> None:
        # One key per transcript file: an entry of another key (other settings, an earlier
        # vocabulary) naming this file is stale now that the file holds this key's transcript.
        self._entries = {k: name for k, name in self._entries.items() if name != output.name}
        self._entries[key] = output.name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self._entries, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)
