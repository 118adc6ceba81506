"""Loading transcripts into Elasticsearch: files, directories and JSON Lines, in bulk.

Each call is stored under its ``call_id``, so loading the same call again replaces it and
sending a batch twice cannot double anything. A file that cannot be read or does not match the
contract is reported and the rest still load.

Nothing is lost when Elasticsearch goes away mid-load (restarts, network trouble, overload): each
batch is sent again with capped exponential backoff until it lands or ``es_retry_deadline_s`` passes
without progress, and the load then carries on where it was. A document Elasticsearch refuses for
itself (e.g. the strict mapping) is reported with its call id and reason while the rest of its batch
lands. Every valid call is written to the transcript store (``indexer.index.store``) before it is
indexed; a deleted call (``indexer.index.deletion``) is refused.
Under a redaction policy (``indexer.redaction.policy``) the store and the index get the redacted
call, and the loader writes only into an index built under that same policy.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from elasticsearch import ApiError, Elasticsearch
from tqdm import tqdm

from indexer import files
from indexer.elastic import Backoff, backend_errors, describe, is_transient
from indexer.errors import AudioError, EarshotError, SearchBackendError, TranscriptError
from indexer.index.definitions import ensure_calls_index
from indexer.index.deletion import deleted_ids, undelete
from indexer.index.documents import call_document
from indexer.index.store import TranscriptStore
from indexer.redaction.policy import apply_policy
from indexer.settings import Settings
from indexer.transcript import Call, SourcedCall, parse_call, read_call_file

# The per-call enrich step: the ids of the trackers a call mentions (see load_calls).
Tagger = Callable[[Call], Sequence[str]]


class Progress(Protocol):
    def update(self, n: float | None = 1) -> bool | None: ...


# .json.zst: the transcript store's files (``python -m indexer load`` of a store directory).
TRANSCRIPT_SUFFIXES = frozenset({".json", ".jsonl", ".zst"})
REQUEST_TOO_LARGE = 413  # the bulk body is over the node's http.max_content_length


@dataclass
class LoadSummary:
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)  # paths that are not transcripts
    failures: list[str] = field(default_factory=list)  # one clear message per failed item
    retries: int = 0  # batches or requests sent again after Elasticsearch failed for a while
    warnings: list[str] = field(default_factory=list)  # e.g. a named directory with nothing

    @property
    def failed(self) -> int:
        return len(self.failures)

    def merge(self, other: LoadSummary) -> None:
        self.loaded += other.loaded
        self.skipped += other.skipped
        self.failures += other.failures
        self.retries += other.retries
        self.warnings += other.warnings

    def line(self) -> str:
        line = f"loaded {self.loaded}, failed {self.failed}, skipped {len(self.skipped)}"
        if self.retries:
            line += f" ({self.retries} retries after Elasticsearch errors)"
        if self.warnings:
            line += f"; {len(self.warnings)} warnings"
        return line


def expand_paths(paths: Iterable[Path], summary: LoadSummary) -> list[Path]:
    """Transcript files named directly or found under directories (``indexer.files``); a
    named path that is missing is a failure, one that yields nothing a warning."""
    found = files.expand_paths(paths, TRANSCRIPT_SUFFIXES)
    summary.skipped += [str(path) for path in found.unwanted]
    summary.failures += [f"{path}: no such file or directory" for path in found.missing]
    summary.warnings += [
        f"{path}: no transcript files (*.json, *.jsonl, *.json.zst) found under it"
        for path in found.empty
    ]
    return found.files


def read_calls(paths: Iterable[Path], summary: LoadSummary) -> Iterator[SourcedCall]:
    """Valid calls from the files; each invalid file or line becomes a failure in ``summary``."""
    for path in paths:
        if path.suffix.lower() == ".jsonl":
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


def _batches(calls: Iterable[SourcedCall], size: int) -> Iterator[list[SourcedCall]]:
    batch: list[SourcedCall] = []
    for item in calls:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _error_reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', error)}"
    return str(error)


@dataclass
class BulkSender:
    """Batches on their way into an index: checked, stored, sent until they land."""

    es: Elasticsearch
    settings: Settings
    backoff: Backoff
    summary: LoadSummary

    def prepare(
        self, batch: list[SourcedCall], tag: Tagger, allow_deleted: bool
    ) -> tuple[list[tuple[SourcedCall, dict[str, Any]]], dict[str, str]]:
        """Documents of the batch's loadable calls (each already in the store), and which of
        them are tombstoned (only loaded with ``allow_deleted``)."""
        alias = self.settings.calls_alias
        ids = [item.call.call_id for item in batch]
        deleted = self.backoff.call(
            "checking for deleted calls", lambda: deleted_ids(self.es, alias, ids)
        )
        store = TranscriptStore.of(self.settings)
        originals = (
            TranscriptStore.originals(self.settings) if self.settings.redaction != "off" else None
        )
        ready = []
        for item in batch:
            call_id = item.call.call_id
            if call_id in deleted and not allow_deleted:
                self.summary.failures.append(
                    f"{item.source}: call {call_id} was deleted on {deleted[call_id]} (consent "
                    "withdrawn); not loaded (load --undelete loads it again)"
                )
                continue
            try:
                call = apply_policy(item.call, self.settings).call
            except AudioError as exc:
                self.summary.failures.append(
                    f"{item.source}: call {call_id} not loaded: its recording cannot be "
                    f"bleeped ({exc}), and unbleeped it would give the redacted words away"
                )
                continue
            try:
                document = call_document(call, tag(call))
            except EarshotError as exc:
                self.summary.failures.append(f"{item.source}: call {call_id} not tagged: {exc}")
                continue
            if originals is not None:
                try:
                    originals.put(item.call)
                except OSError as exc:
                    self.summary.failures.append(
                        f"{item.source}: call {call_id} not written to the originals "
                        f"{originals}: {exc}; not loaded"
                    )
                    continue
            if store is not None:
                try:
                    store.put(call)
                except OSError as exc:
                    self.summary.failures.append(
                        f"{item.source}: call {call_id} not written to the store {store}: {exc}; "
                        "not loaded"
                    )
                    continue
            ready.append((SourcedCall(item.source, call), document))
        return ready, deleted

    def send(self, ready: list[tuple[SourcedCall, dict[str, Any]]], index: str) -> list[str]:
        """Index the documents into ``index`` (an alias or an index), resending what failed for
        a transient reason; return the ids that landed. Refused documents become failures
        naming the call and the reason. A request over Elasticsearch's size limit (413) is
        split in halves until each part fits; a single call over it is refused alone."""
        landed: list[str] = []
        parts: deque[list[tuple[SourcedCall, dict[str, Any]]]] = deque([ready] if ready else [])
        while parts:
            waiting = parts.popleft()
            operations: list[dict[str, Any]] = []
            for item, document in waiting:
                operations += [{"index": {"_index": index, "_id": item.call.call_id}}, document]
            what = f"sending {len(waiting)} calls ({waiting[0][0].call.call_id} ...)"
            try:
                response = self.es.bulk(operations=operations)
            except ApiError as exc:
                if exc.meta.status != REQUEST_TOO_LARGE:
                    if not is_transient(exc):
                        raise
                    self.backoff.pause(what, describe(exc))
                    parts.appendleft(waiting)
                    continue
                if len(waiting) == 1:
                    item = waiting[0][0]
                    self.summary.failures.append(
                        f"{item.source}: call {item.call.call_id} rejected by Elasticsearch: "
                        "larger than one request may be (413; its http.max_content_length)"
                    )
                else:
                    half = len(waiting) // 2
                    parts.extendleft([waiting[half:], waiting[:half]])  # in order, first half next
                continue
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.backoff.pause(what, describe(exc))
                parts.appendleft(waiting)
                continue
            again = []
            reason = ""
            for (item, document), result in zip(waiting, response["items"], strict=True):
                outcome = result.get("index", {})
                status = int(outcome.get("status", 0))
                if "error" not in outcome:
                    landed.append(item.call.call_id)
                    self.summary.loaded += 1
                elif status == 429 or status >= 500:
                    # The shard was unavailable or overloaded: this call may land later.
                    again.append((item, document))
                    reason = f"{status} {_error_reason(outcome['error'])}"
                else:
                    self.summary.failures.append(
                        f"{item.source}: call {item.call.call_id} rejected by Elasticsearch: "
                        f"{_error_reason(outcome['error'])}"
                    )
            if len(again) < len(waiting):
                self.backoff.succeeded()
            if again:
                self.backoff.pause(what, f"{len(again)} refused for now: {reason}")
                parts.appendleft(again)
        return landed


def load_calls(
    es: Elasticsearch,
    settings: Settings,
    calls: Iterable[SourcedCall],
    *,
    refresh: bool = True,
    progress: Progress | None = None,
    tag: Tagger,
    allow_deleted: bool = False,
) -> LoadSummary:
    """Bulk-index calls through the alias, writing each to the transcript store first.

    ``tag`` is the per-call enrich step: it returns the tracker ids stored with the call. It is
    required so no caller can forget it, and injected so the index package does not import
    the trackers (which import it); callers pass ``indexer.trackers.tagging.current_tagger``
    (the trackers stored now), so tags stay true whoever loads. A tombstoned call
    is a failure unless ``allow_deleted``, which loads it and drops its tombstone (consent
    given again). Elasticsearch being unreachable when the
    load starts is an immediate SearchBackendError (most likely a wrong ES_URL); once loading,
    outages are waited out (see the module docstring).
    """
    summary = LoadSummary()
    alias = settings.calls_alias
    with backend_errors(settings.es_url):
        ensure_calls_index(es, alias, settings.redaction)
        backoff = Backoff(
            settings.es_url, settings.es_retry_deadline_s, settings.es_retry_max_backoff_s
        )
        sender = BulkSender(
            es.options(request_timeout=settings.bulk_request_timeout_s), settings, backoff, summary
        )
        try:
            for items in _batches(calls, settings.bulk_chunk_size):
                ready, deleted = sender.prepare(items, tag, allow_deleted)
                for call_id in sender.send(ready, alias):
                    if call_id in deleted:
                        backoff.call(f"undeleting {call_id}", partial(undelete, es, alias, call_id))
                if progress is not None:
                    progress.update(len(items))
            if refresh:
                backoff.call("refreshing the index", lambda: es.indices.refresh(index=alias))
        except SearchBackendError as exc:
            raise SearchBackendError(
                f"{exc}; {summary.loaded} calls loaded before, the rest not: run the same load "
                "again (it replaces, never doubles)"
            ) from exc
        finally:
            summary.retries = backoff.retries
    return summary


def load_paths(
    es: Elasticsearch,
    settings: Settings,
    paths: Iterable[Path],
    *,
    show_progress: bool = True,
    tag: Tagger,
    allow_deleted: bool = False,
) -> LoadSummary:
    """Load every transcript under ``paths``; see ``LoadSummary`` for what happened."""
    summary = LoadSummary()
    transcripts = expand_paths(paths, summary)
    with tqdm(
        total=len(transcripts), unit="call", disable=not show_progress, desc="loading"
    ) as bar:
        summary.merge(
            load_calls(
                es,
                settings,
                read_calls(transcripts, summary),
                progress=bar,
                tag=tag,
                allow_deleted=allow_deleted,
            )
        )
    return summary
