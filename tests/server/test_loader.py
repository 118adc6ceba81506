"""The loader CLI against the real Elasticsearch: re-loads replace, bad files are reported while
the rest load, every loaded call lands in the transcript store, and an unreachable cluster is a
clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from builders import make_call
from elasticsearch import Elasticsearch, helpers

from indexer.index.definitions import versioned_index_name
from indexer.index.deletion import delete_call
from indexer.index.loader import load_calls
from indexer.index.store import TranscriptStore
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.changes import create_tracker
from indexer.trackers.model import TrackerCreate
from indexer.transcript import SourcedCall, read_call_file, write_call_file


def run_loader(
    settings: Settings,
    *paths: Path,
    es_url: str | None = None,
    store_dir: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    extra = env or {}
    env = {
        **os.environ,
        "ES_URL": es_url or settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_ES_MAX_RETRIES": "0",
        "EARSHOT_STORE_DIR": str(settings.store_dir) if store_dir is None else store_dir,
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "indexer", "load", "--quiet", *map(str, paths)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def count(es: Elasticsearch, settings: Settings) -> int:
    es.indices.refresh(index=settings.calls_alias)
    return int(es.count(index=settings.calls_alias)["count"])


def write_calls(directory: Path, n: int) -> None:
    for i in range(n):
        write_call_file(
            make_call(f"call-{i}", [("client", f"hello {i}")]), directory / f"call-{i}.json"
        )


def test_reloading_replaces_and_never_duplicates(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    write_calls(tmp_path, 3)

    first = run_loader(settings, tmp_path)
    second = run_loader(settings, tmp_path)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "loaded 3, failed 0" in second.stderr
    assert count(es, settings) == 3
    # The alias points at a versioned index created from mappings/.
    assert list(es.indices.get_alias(name=settings.calls_alias)) == [
        versioned_index_name(settings.calls_alias)
    ]


def test_bad_files_are_reported_and_the_rest_load(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    write_calls(tmp_path, 2)
    (tmp_path / "broken.json").write_text('{"call_id": "x", ', encoding="utf-8")
    wrong_field = make_call("wrong", [("client", "hi")]).model_dump(mode="json")
    wrong_field["utterances"][0]["role"] = "boss"
    (tmp_path / "wrong.json").write_text(json.dumps(wrong_field), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a transcript", encoding="utf-8")

    result = run_loader(settings, tmp_path, tmp_path / "missing.json")

    assert result.returncode == 1
    assert f"{tmp_path / 'broken.json'}: (file): not valid JSON" in result.stderr
    assert f"{tmp_path / 'wrong.json'}: utterances.0.role:" in result.stderr
    assert "missing.json: no such file" in result.stderr
    assert "loaded 2, failed 3, skipped 1" in result.stderr
    assert count(es, settings) == 2


def test_json_lines_with_a_bad_line(es: Elasticsearch, settings: Settings, tmp_path: Path) -> None:
    lines = [make_call(f"line-{i}", [("client", "hi")]).model_dump_json() for i in range(3)]
    lines.insert(1, "{oops")
    (tmp_path / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = run_loader(settings, tmp_path / "calls.jsonl")

    assert result.returncode == 1
    assert f"{tmp_path / 'calls.jsonl'}:2: (line): not valid JSON" in result.stderr
    assert count(es, settings) == 3


def test_unreachable_elasticsearch_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    write_calls(tmp_path, 1)

    result = run_loader(settings, tmp_path, es_url="http://127.0.0.1:1")

    assert result.returncode == 2
    assert "Elasticsearch at http://127.0.0.1:1 is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_loaded_call_is_in_the_store(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    write_calls(tmp_path, 3)
    wrong = make_call("wrong", [("client", "hi")]).model_dump(mode="json")
    wrong["duration_s"] = -1
    (tmp_path / "wrong.json").write_text(json.dumps(wrong), encoding="utf-8")

    result = run_loader(settings, tmp_path)

    assert result.returncode == 1
    store = TranscriptStore.of(settings)
    assert store is not None
    assert store.call_ids() == ["call-0", "call-1", "call-2"]  # the invalid one is not stored
    for call_id in store.call_ids():
        assert store.read(call_id) == read_call_file(tmp_path / f"{call_id}.json")
    assert settings.store_dir is not None
    assert store.root == settings.store_dir / settings.calls_alias


def test_an_empty_store_dir_switches_the_store_off(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    write_calls(tmp_path, 2)

    result = run_loader(settings, tmp_path, store_dir="")

    assert result.returncode == 0, result.stderr
    assert count(es, settings) == 2
    assert settings.store_dir is not None
    assert not (settings.store_dir / settings.calls_alias).exists()


def test_a_directory_inside_a_hidden_one_loads(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    # Only parts below the named directory count as hidden: `.cache/transcripts` must load.
    directory = tmp_path / ".hidden" / "x"
    directory.mkdir(parents=True)
    write_calls(directory, 2)
    (directory / ".skipped").mkdir()
    write_call_file(make_call("hidden", [("client", "no")]), directory / ".skipped" / "h.json")

    result = run_loader(settings, directory)

    assert result.returncode == 0, result.stderr
    assert "loaded 2, failed 0" in result.stderr
    assert count(es, settings) == 2


def test_a_directory_without_transcripts_is_a_warning(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a transcript", encoding="utf-8")

    result = run_loader(settings, empty)

    assert f"warning: {empty}: no transcript files" in result.stderr
    assert "1 warnings" in result.stderr


def test_worker_processes_load_what_the_loader_process_loads(
    es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    """``load_workers`` 2 (worker processes build batches ahead of the sends) and 1 (the CLI
    builds in its own process) give the same index, store and failures, in the same order."""
    create_tracker(es, settings, TrackerCreate(id="price", name="Price", phrases=["cost"]))
    lines = [make_call(f"w-{i:02d}", [("client", f"what does {i} cost")]).model_dump_json()
             for i in range(23)]  # fmt: skip
    lines.insert(5, "{oops")
    deleted = make_call("w-gone", [("client", "bye")])
    lines.insert(11, deleted.model_dump_json())
    (tmp_path / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_calls(es, settings, [SourcedCall("t", deleted)], tag=lambda call: [])
    delete_call(es, settings, "w-gone")
    outcomes = {}
    for workers in (2, 1):
        # One alias for both: the second load replaces the first's calls, never doubles them.
        env = {"EARSHOT_LOAD_WORKERS": str(workers), "EARSHOT_BULK_CHUNK_SIZE": "4"}
        result = run_loader(settings, tmp_path / "calls.jsonl", env=env)
        assert result.returncode == 1
        store = TranscriptStore.of(settings)
        assert store is not None
        es.indices.refresh(index=settings.calls_alias)
        documents = {
            hit["_id"]: hit["_source"]
            for hit in helpers.scan(
                es, index=settings.calls_alias, query={"query": {"match_all": {}}}
            )
        }
        stored = {call_id: store.path(call_id).read_bytes() for call_id in store.call_ids()}
        outcomes[workers] = (result.stderr, documents, stored)
        for call_id in store.call_ids():
            store.remove(call_id)

    assert outcomes[2] == outcomes[1]
    errors, documents, stored = outcomes[2]
    assert f"{tmp_path / 'calls.jsonl'}:6: (line): not valid JSON" in errors
    assert "call w-gone was deleted on" in errors
    assert "loaded 23, failed 2" in errors
    assert sorted(documents) == sorted(stored) == [f"w-{i:02d}" for i in range(23)]
    assert all(document["trackers"] == ["price"] for document in documents.values())
