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

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import orjson
from elasticsearch import ApiError, Elasticsearch
from tqdm import tqdm

from indexer import files
from indexer.elastic import Backoff, backend_errors, describe, is_transient
from indexer.errors import SearchBackendError, TranscriptError
from indexer.index.building import (
    Builder,
    BuildPool,
    Built,
    Outcome,
    RawTranscript,
    Tagger,
    batches,
    can_build_in_workers,
    parse_raw,
    raw_pool,
    worker_count,
)
from indexer.index.definitions import ensure_calls_index
from indexer.index.deletion import deleted_ids, undelete
from indexer.index.store import TranscriptStore
from indexer.settings import Settings
from indexer.transcript import SourcedCall

__all__ = ["BulkSender", "LoadSummary", "Tagger", "load_calls", "load_paths", "load_transcripts"]


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


def read_transcripts(paths: Iterable[Path], summary: LoadSummary) -> Iterator[RawTranscript]:
    """The raw transcripts of the files: each file, or each non-blank line of a JSON Lines
    file (a file that cannot be opened becomes a failure in ``summary``)."""
    for path in paths:
        if path.suffix.lower() != ".jsonl":
            yield RawTranscript(str(path), path=str(path))
            continue
        try:
            handle = path.open("rb")
        except OSError as exc:
            summary.failures.append(f"{path}: (file): cannot read: {exc}")
            continue
        with handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield RawTranscript(f"{path}:{number}", line=line)


def read_calls(paths: Iterable[Path], summary: LoadSummary) -> Iterator[SourcedCall]:
    """Valid calls from the files; each invalid file or line becomes a failure in ``summary``."""
    for raw in read_transcripts(paths, summary):
        try:
            yield SourcedCall(raw.source, parse_raw(raw))
        except TranscriptError as exc:
            summary.failures.append(str(exc))


def _error_reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', error)}"
    return str(error)


@dataclass
class BulkSender:
    """Built calls on their way into an index: checked, stored, sent until they land."""

    es: Elasticsearch
    settings: Settings
    backoff: Backoff
    summary: LoadSummary

    def deleted(self, call_ids: list[str]) -> dict[str, str]:
        """Which of the calls are tombstoned, with when (only loaded with ``allow_deleted``)."""
        alias = self.settings.calls_alias
        return self.backoff.call(
            "checking for deleted calls", lambda: deleted_ids(self.es, alias, call_ids)
        )

    def refuse_deleted(self, source: str, call_id: str, deleted: dict[str, str]) -> None:
        self.summary.failures.append(
            f"{source}: call {call_id} was deleted on {deleted[call_id]} (consent "
            "withdrawn); not loaded (load --undelete loads it again)"
        )

    def land(
        self, built: list[Built], deleted: dict[str, str], allow_deleted: bool, index: str
    ) -> None:
        """Store the built calls (the originals first, under a redaction policy), send them,
        and drop the tombstones of deleted ones loaded again (``allow_deleted``)."""
        store = TranscriptStore.of(self.settings)
        originals = (
            TranscriptStore.originals(self.settings) if self.settings.redaction != "off" else None
        )
        ready = []
        for item in built:
            if item.call_id in deleted and not allow_deleted:
                self.refuse_deleted(item.source, item.call_id, deleted)
                continue
            if originals is not None and item.original is not None:
                try:
                    originals.put_encoded(item.call_id, item.original)
                except OSError as exc:
                    self.summary.failures.append(
                        f"{item.source}: call {item.call_id} not written to the originals "
                        f"{originals}: {exc}; not loaded"
                    )
                    continue
            if store is not None and item.stored is not None:
                try:
                    store.put_encoded(item.call_id, item.stored)
                except OSError as exc:
                    self.summary.failures.append(
                        f"{item.source}: call {item.call_id} not written to the store {store}: "
                        f"{exc}; not loaded"
                    )
                    continue
            ready.append(item)
        for call_id in self.send(ready, index):
            if call_id in deleted:
                self.backoff.call(
                    f"undeleting {call_id}",
                    partial(undelete, self.es, self.settings.calls_alias, call_id),
                )

    def send(self, ready: list[Built], index: str) -> list[str]:
        """Index the documents into ``index`` (an alias or an index), resending what failed for
        a transient reason; return the ids that landed. Refused documents become failures
        naming the call and the reason. A request over Elasticsearch's size limit (413) is
        split in halves until each part fits; a single call over it is refused alone."""
        landed: list[str] = []
        parts: deque[list[Built]] = deque([ready] if ready else [])
        while parts:
            waiting = parts.popleft()
            # The NDJSON body is built here from the documents' JSON, copied once (a bulk of
            # 200 calls is ~20 MB), and sent as it is (``indexer.elastic.BulkBodiesAsBuilt``).
            lines: list[bytes] = []
            for item in waiting:
                action = orjson.dumps({"index": {"_index": index, "_id": item.call_id}})
                lines += (action, b"\n", item.document, b"\n")
            body = b"".join(lines)
            what = f"sending {len(waiting)} calls ({waiting[0].call_id} ...)"
            try:
                # The client sends bytes as they are (its type hints only name the list form).
                response = self.es.bulk(operations=body)  # type: ignore[arg-type]
            except ApiError as exc:
                if exc.meta.status != REQUEST_TOO_LARGE:
                    if not is_transient(exc):
                        raise
                    self.backoff.pause(what, describe(exc))
                    parts.appendleft(waiting)
                    continue
                if len(waiting) == 1:
                    item = waiting[0]
                    self.summary.failures.append(
                        f"{item.source}: call {item.call_id} rejected by Elasticsearch: "
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
            for item, result in zip(waiting, response["items"], strict=True):
                outcome = result.get("index", {})
                status = int(outcome.get("status", 0))
                if "error" not in outcome:
                    landed.append(item.call_id)
                    self.summary.loaded += 1
                elif status == 429 or status >= 500:
                    # The shard was unavailable or overloaded: this call may land later.
                    again.append(item)
                    reason = f"{status} {_error_reason(outcome['error'])}"
                else:
                    self.summary.failures.append(
                        f"{item.source}: call {item.call_id} rejected by Elasticsearch: "
                        f"{_error_reason(outcome['error'])}"
                    )
            if len(again) < len(waiting):
                self.backoff.succeeded()
            if again:
                self.backoff.pause(what, f"{len(again)} refused for now: {reason}")
                parts.appendleft(again)
        return landed


def _build_here(
    sender: BulkSender,
    calls: Iterable[SourcedCall | str],
    builder: Builder,
    allow_deleted: bool,
) -> Iterator[int]:
    """Batches built in this process, each after its tombstone check (so a deleted call is
    never bleeped); a string is a call that failed to be read, reported in its place. Yields
    the size of each batch once it is sent."""
    alias = sender.settings.calls_alias
    for items in batches(calls, sender.settings.bulk_chunk_size):
        ids = [item.call.call_id for item in items if isinstance(item, SourcedCall)]
        deleted = sender.deleted(ids)
        built = []
        for item in items:
            if isinstance(item, str):
                sender.summary.failures.append(item)
                continue
            if item.call.call_id in deleted and not allow_deleted:
                sender.refuse_deleted(item.source, item.call.call_id, deleted)
                continue
            outcome = builder.build(item)
            if isinstance(outcome, str):
                sender.summary.failures.append(outcome)
            else:
                built.append(outcome)
        sender.land(built, deleted, allow_deleted, alias)
        yield len(items)


def _build_in_workers(
    sender: BulkSender,
    batches: Iterable[list[RawTranscript]],
    pool: BuildPool[Builder, RawTranscript, Outcome],
    allow_deleted: bool,
) -> Iterator[int]:
    """Batches built by the pool while the ones before are sent; sent in input order. A worker
    writes nothing, so checking tombstones after building loses nothing."""
    for raws, outcomes in pool.build(batches):
        built = []
        for outcome in outcomes:
            if isinstance(outcome, str):
                sender.summary.failures.append(outcome)
            else:
                built.append(outcome)
        deleted = sender.deleted([item.call_id for item in built])
        sender.land(built, deleted, allow_deleted, sender.settings.calls_alias)
        yield len(raws)


def _load(
    es: Elasticsearch,
    settings: Settings,
    run: Callable[[BulkSender], Iterator[int]],
    *,
    refresh: bool,
    progress: Progress | None,
) -> LoadSummary:
    """The frame of every load: the index, the retries, the final refresh and the message
    when Elasticsearch stays away; ``run`` sends the batches, yielding each one's size."""
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
            for done in run(sender):
                if progress is not None:
                    progress.update(done)
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
    outages are waited out (see the module docstring). The calls are already parsed, so they
    are built in this process, batch after batch: reading call N means every batch before
    N's was sent (``load_transcripts`` builds in worker processes).
    """
    builder = Builder(settings, tag)
    return _load(
        es,
        settings,
        lambda sender: _build_here(sender, calls, builder, allow_deleted),
        refresh=refresh,
        progress=progress,
    )


def load_transcripts(
    es: Elasticsearch,
    settings: Settings,
    raws: Iterable[RawTranscript],
    *,
    refresh: bool = True,
    progress: Progress | None = None,
    tag: Tagger,
    allow_deleted: bool = False,
) -> LoadSummary:
    """``load_calls`` of raw transcripts, read, validated and built by worker processes
    (``indexer.index.building``: ``worker_count`` says how many) while the loader sends, in
    input order. It reads up to a batch per worker and one more ahead of what it has sent. A
    load of one batch, a tagger that cannot be sent to another process, ``load_workers=1`` and
    the ``bleep`` policy build in this process instead; the outcome is the same."""
    builder = Builder(settings, tag)
    workers = worker_count(settings)
    rest = batches(raws, settings.bulk_chunk_size)
    first = list(itertools.islice(rest, 2))
    if workers == 0 or len(first) < 2 or not can_build_in_workers(builder):
        raws = itertools.chain(*first, itertools.chain.from_iterable(rest))
        return _load(
            es,
            settings,
            lambda sender: _build_here(sender, map(_parsed, raws), builder, allow_deleted),
            refresh=refresh,
            progress=progress,
        )

    def run(sender: BulkSender) -> Iterator[int]:
        with raw_pool(builder, workers) as pool:
            yield from _build_in_workers(sender, itertools.chain(first, rest), pool, allow_deleted)

    return _load(es, settings, run, refresh=refresh, progress=progress)


def _parsed(raw: RawTranscript) -> SourcedCall | str:
    try:
        return SourcedCall(raw.source, parse_raw(raw))
    except TranscriptError as exc:
        return str(exc)


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
            load_transcripts(
                es,
                settings,
                read_transcripts(transcripts, summary),
                progress=bar,
                tag=tag,
                allow_deleted=allow_deleted,
            )
        )
    return summary
