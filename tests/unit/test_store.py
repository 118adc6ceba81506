"""The transcript store on disk: compressed, atomic, readable by a person, and an old
uncompressed store migrating by itself."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from indexer.errors import TranscriptError
from indexer.index.store import TranscriptStore
from indexer.settings import PROJECT_ROOT
from indexer.transcript import read_call_file, write_call_file

SAMPLES = sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))


def test_a_stored_call_is_compressed_json_a_person_can_read(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "calls")
    call = read_call_file(SAMPLES[0])

    store.put(call)

    path = store.path(call.call_id)
    assert path.name == f"{call.call_id}.json.zst"
    assert sorted(p.name for p in store.root.iterdir()) == [path.name], "no temporary file left"
    assert path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd", "a zstd frame"
    assert path.stat().st_size * 5 <= SAMPLES[0].stat().st_size, "≥ 5× smaller than the sample"
    if shutil.which("zstdcat"):  # the one-line command docs/benchmarks.md gives
        shown = subprocess.run(["zstdcat", str(path)], capture_output=True, check=True).stdout
        assert json.loads(shown)["call_id"] == call.call_id
    assert store.read(call.call_id) == call
    assert store.call_ids() == [call.call_id]


def test_an_uncompressed_store_migrates_when_read(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "calls")
    calls = [read_call_file(path) for path in SAMPLES[:3]]
    for call in calls:  # how the store was written before compression
        write_call_file(call, store.root / f"{call.call_id}.json")
    store.put(calls[2])  # stored again: rewritten compressed, the plain file gone

    assert store.call_ids() == sorted(c.call_id for c in calls)
    assert store.contains(calls[0].call_id)
    assert store.get("no-such-call") is None
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        [f"{calls[0].call_id}.json", f"{calls[1].call_id}.json", f"{calls[2].call_id}.json.zst"]
    )

    assert store.get(calls[0].call_id) == calls[0]  # as reindex reads the originals
    assert list(store.calls()) == sorted(calls, key=lambda c: c.call_id)  # as reindex reads

    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        f"{c.call_id}.json.zst" for c in calls
    )
    assert store.remove(calls[0].call_id)
    assert not store.remove(calls[0].call_id)
    assert store.call_ids() == sorted(c.call_id for c in calls[1:])


def test_a_damaged_stored_file_is_named_not_skipped(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "calls")
    call = read_call_file(SAMPLES[0])
    store.put(call)
    path = store.path(call.call_id)
    path.write_bytes(path.read_bytes()[:40])  # cut short

    with pytest.raises(TranscriptError, match=r"\.json\.zst.*not zstd-compressed JSON"):
        list(store.calls())


def test_a_stored_file_under_another_call_id_is_refused(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "calls")
    call = read_call_file(SAMPLES[0])
    write_call_file(call, store.root / "someone-else.json.zst")

    with pytest.raises(TranscriptError, match="not the file's name"):
        store.read("someone-else")
