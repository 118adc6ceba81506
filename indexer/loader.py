"""Loading transcripts into Elasticsearch: files, directories and JSON Lines, in bulk.

Each call is stored under its ``call_id``, so loading the same call again replaces it. A file that
cannot be read or does not match the contract is reported and the rest still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch, helpers
from tqdm import tqdm

from indexer.documents import call_document
from indexer.errors import TranscriptError
from indexer.index import backend_errors, ensure_calls_index
from indexer.settings import Settings
from indexer.transcript import Call, parse_call, read_call_file

TRANSCRIPT_SUFFIXES = {".json", ".jsonl"}


@dataclass
class LoadSummary:
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)  # paths that are not transcripts
    failures: list[str] = field(default_factory=list)  # one clear message per failed item

    @property
    def failed(self) -> int:
        return len(self.failures)

    def merge(self, other: LoadSummary) -> None:
        self.loaded += other.loaded
        self.skipped += other.skipped
        self.failures += other.failures

    def line(self) -> str:
        return f"loaded {self.loaded}, failed {self.failed}, skipped {len(self.skipped)}"


@dataclass(frozen=True)
class SourcedCall:
    """A valid call and where it came from (file, or file:line for JSON Lines)."""

    source: str
    call: Call


def expand_paths(paths: Iterable[Path], summary: LoadSummary) -> list[Path]:
    """Transcript files named directly or found under directories, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file() or any(part.startswith(".") for part in child.parts):
                    continue
                if child.suffix in TRANSCRIPT_SUFFIXES:
                    files.append(child)
                else:
                    summary.skipped.append(str(child))
        elif path.exists():
            files.append(path)
        else:
            summary.failures.append(f"{path}: no such file or directory")
    return files


def read_calls(files: Iterable[Path], summary: LoadSummary) -> Iterator[SourcedCall]:
    """Valid calls from the files; each invalid file or line becomes a failure in ``summary``."""
    for path in files:
        if path.suffix == ".jsonl":
            yield from _read_json_lines(path, summary)
            continue
        try:
            yield SourcedCall(str(path), read_call_file(path))
        except TranscriptError as exc:
            summary.failures.append(str(exc))


def _read_json_lines(path: Path, summary: LoadSummary) -> Iterator[SourcedCall]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        summary.failures.append(f"{path}: (file): cannot read: {exc}")
        return
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{number}"
            try:
                yield SourcedCall(source, parse_call(json.loads(line), source))
            except json.JSONDecodeError as exc:
                summary.failures.append(f"{source}: (line): not valid JSON: {exc.msg}")
            except TranscriptError as exc:
                summary.failures.append(str(exc))
            except UnicodeDecodeError as exc:
                summary.failures.append(f"{source}: (line): not UTF-8: {exc.reason}")
                return


def _actions(calls: Iterable[SourcedCall], index: str) -> Iterator[dict[str, Any]]:
    for item in calls:
        yield {
            "_op_type": "index",
            "_index": index,
            "_id": item.call.call_id,
            "_source": call_document(item.call),
        }


def load_calls(
    es: Elasticsearch,
    settings: Settings,
    calls: Iterable[SourcedCall],
    *,
    refresh: bool = True,
    progress: tqdm[Any] | None = None,
) -> LoadSummary:
    """Bulk-index calls through the alias; per-document rejections are failures, not crashes."""
    summary = LoadSummary()
    with backend_errors(settings.es_url):
        ensure_calls_index(es, settings.calls_alias)
        sources: dict[str, str] = {}

        def remember(items: Iterable[SourcedCall]) -> Iterator[SourcedCall]:
            for item in items:
                sources[item.call.call_id] = item.source
                yield item

        results = helpers.streaming_bulk(
            es,
            _actions(remember(calls), settings.calls_alias),
            chunk_size=settings.bulk_chunk_size,
            max_retries=settings.es_max_retries,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=False,
            raise_on_exception=True,
        )
        for ok, result in results:
            item = result.get("index", {})
            if ok:
                summary.loaded += 1
            else:
                call_id = str(item.get("_id"))
                error = item.get("error", {})
                reason = error.get("reason", error) if isinstance(error, dict) else error
                summary.failures.append(
                    f"{sources.get(call_id, call_id)}: call {call_id} rejected by Elasticsearch: "
                    f"{reason}"
                )
            if progress is not None:
                progress.update(1)
        if refresh:
            es.indices.refresh(index=settings.calls_alias)
    return summary


def load_paths(
    es: Elasticsearch, settings: Settings, paths: Iterable[Path], *, show_progress: bool = True
) -> LoadSummary:
    """Load every transcript under ``paths``; see ``LoadSummary`` for what happened."""
    summary = LoadSummary()
    files = expand_paths(paths, summary)
    with tqdm(total=len(files), unit="call", disable=not show_progress, desc="loading") as bar:
        summary.merge(load_calls(es, settings, read_calls(files, summary), progress=bar))
    return summary
