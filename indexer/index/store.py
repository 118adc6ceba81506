"""The transcript store: the source of truth the calls index is rebuilt from.

One canonical transcript JSON per call, ``<store_dir>/<calls_alias>/<call_id>.json``, written
atomically by the loader before the call is indexed. The index holds derived data (terms,
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
from indexer.transcript import Call, is_call_id, read_call_file, write_call_file


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
        if not is_call_id(call_id):
            raise ValueError(f"not a call id: {call_id!r}")
        return self.root / f"{call_id}.json"

    def put(self, call: Call) -> None:
        """Write (or replace) the call's transcript; a reader never sees half a file."""
        write_call_file(call, self.path(call.call_id))

    def get(self, call_id: str) -> Call | None:
        """The stored transcript of ``call_id``, or None when there is none."""
        return read_call_file(self.path(call_id)) if self.contains(call_id) else None

    def remove(self, call_id: str) -> bool:
        """Delete the call's transcript; False when there was none."""
        try:
            self.path(call_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def contains(self, call_id: str) -> bool:
        return is_call_id(call_id) and self.path(call_id).is_file()

    def call_ids(self) -> list[str]:
        """Every stored call id, sorted (write_call_file's temporary files start with a dot)."""
        if not self.root.is_dir():
            return []
        return sorted(
            path.stem
            for path in self.root.glob("*.json")
            if not path.name.startswith(".") and is_call_id(path.stem)
        )

    def is_empty(self) -> bool:
        return not self.call_ids()

    def calls(self) -> Iterator[Call]:
        """Every stored call, in call id order. A file that no longer matches the contract
        raises TranscriptError naming it: the source of truth must not be skipped silently."""
        for call_id in self.call_ids():
            call = read_call_file(self.path(call_id))
            if call.call_id != call_id:
                raise TranscriptError(
                    str(self.path(call_id)), "call_id", f"is '{call.call_id}', not the file's name"
                )
            yield call

    def __str__(self) -> str:
        return str(self.root)
