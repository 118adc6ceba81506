"""From a transcript to what the loader sends: read and validated, redacted, tagged, its document
built and serialised — in the loader's own process, or in worker processes beside it.

This is the CPU work of a load (docs/benchmarks.md, "Ingest"); the loader's own part is waiting
for Elasticsearch. Unless ``load_workers`` is 1 a pool of processes (``worker_count``) builds
the next batches while the loader sends the current one, so Python and Elasticsearch work at the
same time. Only bytes cross the process boundary: a raw transcript goes in (a JSON Lines line,
or a file's path) and the document's JSON and the store's compressed transcript come out (a
parsed ``Call`` costs more to pickle than to parse). A worker touches neither Elasticsearch nor
the store nor the recordings: the loader checks tombstones, writes the store and sends, batch by
batch in input order, so the guarantees of ``indexer.index.loader`` rest on one process.
"""

from __future__ import annotations

import gc
import ipaddress
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlsplit

import orjson

from indexer.errors import AudioError, EarshotError, TranscriptError
from indexer.index.documents import call_document
from indexer.processes import leave_with_parent
from indexer.redaction.policy import apply_policy
from indexer.settings import Settings
from indexer.transcript import Call, SourcedCall, encode_call_file, parse_call, read_call_file

# The per-call enrich step: the ids of the trackers a call mentions (see load_calls).
Tagger = Callable[[Call], Sequence[str]]


@dataclass(frozen=True, slots=True)
class RawTranscript:
    """A transcript not read yet: a file (``path``), or one line of a JSON Lines file."""

    source: str  # the file, or file:line: what a failure names
    path: str | None = None
    line: bytes | None = None


@dataclass(frozen=True, slots=True)
class Built:
    """A call ready to be stored and sent."""

    source: str
    call_id: str
    document: bytes  # its Elasticsearch document, as JSON
    stored: bytes | None = None  # the transcript store's file (None: no store)
    original: bytes | None = None  # the unredacted call, when a policy keeps originals apart


StateT = TypeVar("StateT")
ItemT = TypeVar("ItemT")
OutcomeT = TypeVar("OutcomeT")

# What building a call gives: the call, or a failure message that names it.
Outcome = Built | str


def batches(items: Iterable[ItemT], size: int) -> Iterator[list[ItemT]]:
    """The items in lists of ``size`` (the last one shorter), as they come."""
    batch: list[ItemT] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_raw(raw: RawTranscript) -> Call:
    """The call a raw transcript holds; TranscriptError naming the file or line if none."""
    if raw.line is None:
        assert raw.path is not None
        return read_call_file(Path(raw.path))
    try:
        text = raw.line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(raw.source, "(line)", f"not UTF-8: {exc.reason}") from exc
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise TranscriptError(raw.source, "(line)", f"not valid JSON: {exc.msg}") from exc
    return parse_call(data, raw.source)


@dataclass(frozen=True)
class Builder:
    """Everything building needs; picklable, so each worker process gets its own copy once."""

    settings: Settings
    tag: Tagger

    def build(self, item: SourcedCall) -> Outcome:
        call_id = item.call.call_id
        try:
            call = apply_policy(item.call, self.settings).call
        except AudioError as exc:
            return (
                f"{item.source}: call {call_id} not loaded: its recording cannot be "
                f"bleeped ({exc}), and unbleeped it would give the redacted words away"
            )
        try:
            document = call_document(call, self.tag(call))
        except EarshotError as exc:
            return f"{item.source}: call {call_id} not tagged: {exc}"
        keeps_originals = (
            self.settings.redaction != "off" and self.settings.redaction_originals_dir is not None
        )
        return Built(
            item.source,
            call_id,
            orjson.dumps(document),
            stored=encode_call_file(call, compressed=True) if self.settings.store_dir else None,
            original=encode_call_file(item.call, compressed=True) if keeps_originals else None,
        )

    def build_raw(self, raw: RawTranscript) -> Outcome:
        try:
            call = parse_raw(raw)
        except TranscriptError as exc:
            return str(exc)
        return self.build(SourcedCall(raw.source, call))


def worker_count(settings: Settings, cores: int | None = None) -> int:
    """How many worker processes build documents; 0: the loader's own process builds them
    (``load_workers=1``). ``load_workers=0``: one per usable core (``cores``, default this
    process's), less one when Elasticsearch runs on this machine, and at least one.

    Why one less: a local node indexes each bulk request on a core of its own, and the loader's
    process sends and reads beside it. A worker for every core only competes with them: on two
    cores one worker loaded as many calls per second as two, for 0.9 ms less CPU per call
    (docs/benchmarks.md, "One worker beside a local node").
    """
    if settings.load_workers:
        return 0 if settings.load_workers == 1 else settings.load_workers
    usable = cores if cores is not None else len(os.sched_getaffinity(0))
    return max(1, usable - 1 if elasticsearch_is_local(settings.es_url) else usable)


def elasticsearch_is_local(es_url: str) -> bool:
    """Whether every node of ``es_url`` is on this machine (a loopback address)."""
    from indexer.elastic import es_hosts  # the client's imports: not in a worker process

    for url in es_hosts(es_url):
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
        if host != "localhost":
            try:
                if not ipaddress.ip_address(host).is_loopback:
                    return False
            except ValueError:  # a host name: another machine, as far as we can tell
                return False
    return True


def can_build_in_workers(builder: Builder) -> bool:
    """Whether batches may be built in other processes: the tagger can be sent there, and the
    policy writes no files while building (``bleep`` writes a recording per call, which must
    not happen before the loader has checked the call is not deleted)."""
    if builder.settings.redaction == "bleep":
        return False
    try:
        pickle.dumps(builder)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False  # e.g. a tagger made of a lambda, as tests pass
    return True


def settle_heap() -> None:
    """Keep the objects alive now out of every later garbage collection (``gc.freeze``), after
    collecting what is garbage already.

    Why: building a call makes ~100,000 objects, so the collector runs its full pass every few
    calls, and each pass walks every object the process holds: the morphology dictionaries,
    models and caches loaded by the first calls, far more than one call's. Frozen, those are no
    longer walked; the build step's CPU per call halves (docs/benchmarks.md, "Validation fast
    path"). Call it once the process is warm (its first batch built). Frozen objects are still
    freed when nothing refers to them; only a reference cycle among them would stay, hence the
    collection first.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def collected_after() -> Iterator[None]:
    """No garbage collection while the body runs (one call being built); what it leaves in
    reference cycles is collected by the first collection after it.

    Why: a call's build makes ~100,000 objects and keeps most of them alive to its end (the
    document, its words, the layouts), so the collections its allocations trigger walk the
    half-built call again and again, and find next to nothing to free (the build makes almost no
    cycles): ~1 ms of an ~8 ms warm build, even with the warm heap frozen (docs/benchmarks.md,
    "The build step, round 3"). Deferred, one collection sees the few objects that outlive the
    call. Reference counting frees everything else as before, so memory stays one call's. The
    collector is left off only if it was off (nested, or another thread building meanwhile).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# In a worker process: what it builds with, set once when it starts (see BuildPool), and
# whether its heap was settled (after its first batch).
_worker_work: tuple[Callable[[Any, Any], Any], Any] | None = None
_worker_settled = False


def _start_worker(work: Callable[[Any, Any], Any], state: Any) -> None:
    global _worker_work
    # A loader killed mid-load runs no shutdown: without this its workers would wait for
    # batches for ever (their siblings keep the task pipe open).
    leave_with_parent()
    _worker_work = (work, state)


def _build_batch(items: list[Any]) -> list[Any]:
    global _worker_settled
    assert _worker_work is not None, "the worker was started without its work"
    work, state = _worker_work
    built = []
    for item in items:
        with collected_after():
            built.append(work(state, item))
    if not _worker_settled:
        _worker_settled = True
        settle_heap()
    return built


class BuildPool(Generic[StateT, ItemT, OutcomeT]):
    """Worker processes that apply ``work(state, item)`` to batches of items, handed back in
    input order. ``work`` is a module-level function (or a method, taken from its class) and
    ``state`` picklable: both go to each worker once, when it starts."""

    def __init__(
        self, work: Callable[[StateT, ItemT], OutcomeT], state: StateT, workers: int
    ) -> None:
        self.workers = workers
        # spawn: a worker starts from a clean interpreter, never a fork of a process that
        # holds Elasticsearch connections and threads.
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(work, state),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def build(self, batches: Iterable[list[ItemT]]) -> Iterator[tuple[list[ItemT], list[OutcomeT]]]:
        """Each batch with what it built, in order; a batch per worker and one more are
        built ahead while the caller handles the one before (bounded memory, no idle core).
        An exception raised by ``work`` is raised here, at its batch."""
        ahead: deque[tuple[list[ItemT], Future[list[OutcomeT]]]] = deque()
        for batch in batches:
            ahead.append((batch, self._pool.submit(_build_batch, batch)))
            if len(ahead) > self.workers:
                done, future = ahead.popleft()
                yield done, future.result()
        while ahead:
            done, future = ahead.popleft()
            yield done, future.result()


def raw_pool(builder: Builder, workers: int) -> BuildPool[Builder, RawTranscript, Outcome]:
    """The loader's pool: raw transcripts in, built calls (or failure messages) out."""
    return BuildPool(Builder.build_raw, builder, workers)
