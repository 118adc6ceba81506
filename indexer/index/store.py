"""The transcript store: the source of truth the calls index is rebuilt from.

One canonical transcript per call, ``<store_dir>/<calls_alias>/<call_id>.json.zst`` (compact
JSON, zstd-compressed: ``zstdcat FILE | jq`` reads it), written atomically by the loader before
the call is indexed. Stores written before compression hold ``<call_id>.json``: they are read
as they are, and each such file is rewritten compressed (and the plain one removed) when its
call is stored again or read from the store (``calls()``, as reindex does), so an old store
migrates by itself without a separate step. The index holds derived data (terms,
lemmas, metrics) that the current code computes from these files, so ``reindex`` can rebuild any
index version from them, even one whose documents were lost. Each alias has its own directory:
two aliases (a test alias, a staging one) never mix their calls.

With redaction on (``indexer.redaction.policy``) the store holds the redacted transcript, as the
index does; the unredacted one is kept apart, in ``TranscriptStore.originals``, only when the
operator configures a directory for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from indexer.errors import TranscriptError
from indexer.settings import Settings
from indexer.transcript import (
    COMPRESSED_SUFFIX,
    Call,
    encode_call_file,
    is_call_id,
    read_call_file,
    write_file_atomically,
)

STORED_SUFFIX = ".json" + COMPRESSED_SUFFIX
LEGACY_SUFFIX = ".json"  # a store from before compression


class TranscriptStore:
    """The directory of one alias's transcripts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, settings: Settings) -> TranscriptStore | None:
        """The store of ``settings.calls_alias``, or None when no store is configured."""
        if settings.store_dir is None:
            return None
        return cls(settings.store_dir / settings.calls_alias)

    @classmethod
    def originals(cls, settings: Settings) -> TranscriptStore | None:
        """Where unredacted transcripts are kept (``EARSHOT_REDACTION_ORIGINALS_DIR``), or None:
        kept nowhere. The loader writes them only under a redaction policy (with it off the
        store holds them); reindex reads them under any, so a policy can also be lifted."""
        if settings.redaction_originals_dir is None:
            return None
        return cls(settings.redaction_originals_dir / settings.calls_alias)

    def path(self, call_id: str) -> Path:
        """Where the call's transcript is written (and read, unless only a legacy one exists)."""
        return self._file(call_id, STORED_SUFFIX)

    def _file(self, call_id: str, suffix: str) -> Path:
        if not is_call_id(call_id):
            raise ValueError(f"not a call id: {call_id!r}")
        return self.root / f"{call_id}{suffix}"

    def put(self, call: Call) -> None:
        """Write (or replace) the call's transcript; a reader never sees half a file."""
        self.put_encoded(call.call_id, encode_call_file(call, compressed=True))

    def put_encoded(self, call_id: str, data: bytes) -> None:
        """``put`` of a transcript already encoded by ``encode_call_file(call, compressed=True)``
        (the loader's worker processes encode, the loader writes)."""
        write_file_atomically(self.path(call_id), data)
        self._file(call_id, LEGACY_SUFFIX).unlink(missing_ok=True)  # migrated

    def read(self, call_id: str) -> Call:
        """The stored call; a legacy plain-JSON file is rewritten compressed on the way."""
        path = self.path(call_id)
        if path.is_file():
            call = read_call_file(path)
        else:
            legacy = self._file(call_id, LEGACY_SUFFIX)
            call = read_call_file(legacy)
            if call.call_id == call_id:
                self.put(call)
        if call.call_id != call_id:
            raise TranscriptError(str(path), "call_id", f"is '{call.call_id}', not the file's name")
        return call

    def get(self, call_id: str) -> Call | None:
        """The stored transcript of ``call_id``, or None when there is none."""
        return self.read(call_id) if self.contains(call_id) else None

    def remove(self, call_id: str) -> bool:
        """Delete the call's transcript; False when there was none."""
        removed = False
        for suffix in (STORED_SUFFIX, LEGACY_SUFFIX):
            try:
                self._file(call_id, suffix).unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def contains(self, call_id: str) -> bool:
        return is_call_id(call_id) and any(
            self._file(call_id, suffix).is_file() for suffix in (STORED_SUFFIX, LEGACY_SUFFIX)
        )

    def call_ids(self) -> list[str]:
        """Every stored call id, sorted (write_call_file's temporary files start with a dot)."""
        if not self.root.is_dir():
            return []
        ids = set()
        for path in self.root.iterdir():
            name = path.name
            if name.startswith("."):
                continue
            for suffix in (STORED_SUFFIX, LEGACY_SUFFIX):
                if name.endswith(suffix) and is_call_id(call_id := name[: -len(suffix)]):
                    ids.add(call_id)
                    break
        return sorted(ids)

    def is_empty(self) -> bool:
        return not self.call_ids()

    def calls(self) -> Iterator[Call]:
        """Every stored call, in call id order. A file that no longer matches the contract
        raises TranscriptError naming it: the source of truth must not be skipped silently."""
        for call_id in self.call_ids():
            yield self.read(call_id)

    def __str__(self) -> str:
        return str(self.root)
