"""Search pages built in worker processes, off the GIL of the process that serves requests.

A search page is Python work from end to end once Elasticsearch has answered: decoding the
answer (megabytes for a page of long utterances, one C call that holds the GIL throughout)
and rebuilding every hit from its utterance's words. In the API's process that work shares
one GIL with the event loop, and ``/healthz`` (or any other request) waits behind it. Here a
page is searched, rebuilt and encoded to JSON in a worker process; the API's process hands
over the request and gets back the answer's bytes.

What a search means stays in ``indexer.search.runner``: the worker runs ``search_calls`` under
the deadline the request started with (its Elasticsearch task tagged and cancelled as there),
and its errors come back as the same ``QueryError``, ``SearchTimeoutError`` or
``SearchBackendError`` with the same messages. The waiting side gives up a little after the
deadline too, for a worker that never got to the request (all busy) or hangs.

The pool is the process's one pool, started at its first use ("spawn": the API has threads,
which a fork would copy in whatever state they are in) and started again when a worker died.
With ``search_processes`` 0 a page is built in the calling thread, and so is a page without a
query (filters only: call fields, no hits).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from elasticsearch import Elasticsearch

from indexer.elastic import connect
from indexer.errors import QueryError, SearchBackendError, SearchTimeoutError
from indexer.search.request import SearchRequest
from indexer.search.runner import SEARCH_ADVICE, Deadline, cancel_in_background, search_calls
from indexer.settings import Settings

# How long past the deadline the waiting side still waits for a worker's own answer (its 504
# carries the worker's message, and its Elasticsearch task is cancelled by the worker).
GRACE_S = 1.0
# How often a worker checks that the process that started it is still there.
PARENT_CHECK_S = 1.0

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# In a worker: one client per cluster address and timeouts, kept for the process's life.
_clients: dict[tuple[str, float, int], Elasticsearch] = {}

# What a worker sends back: the page as JSON bytes, or an error's kind and arguments.
Outcome = tuple[str, bytes | str | tuple[str, int | None]]


def _start_worker() -> None:
    # A worker outlives a parent that died or exited without shutting the pool down (its
    # siblings keep the task pipe open): it leaves as soon as it has another parent.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def search_pool(settings: Settings) -> ProcessPoolExecutor | None:
    """The pool (None when ``search_processes`` is 0: the caller searches itself)."""
    global _pool, _pool_size
    if settings.search_processes == 0:
        return None
    with _lock:
        if _pool is None or _pool_size != settings.search_processes:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=False)
            _pool = ProcessPoolExecutor(
                max_workers=settings.search_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )
            _pool_size = settings.search_processes
        return _pool


def start_search_workers(settings: Settings) -> list[int]:
    """Start every worker now (a spawned worker imports the search code: a second or two that
    the first searches would otherwise wait); their process ids."""
    pool = search_pool(settings)
    if pool is None:
        return []
    # One task per worker, submitted at once: the pool starts a process for each task that
    # finds none idle.
    futures = [pool.submit(_ready) for _ in range(settings.search_processes)]
    return sorted({future.result() for future in futures})


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None


def _worker_client(settings: Settings) -> Elasticsearch:
    key = (settings.es_url, settings.es_request_timeout_s, settings.es_max_retries)
    if key not in _clients:
        # As the API's own client: no retry after a timeout (the deadline is the limit).
        _clients[key] = connect(settings).options(retry_on_timeout=False)
    return _clients[key]


def _page_in_worker(
    settings: Settings, request: SearchRequest, ends_at: float, opaque_id: str
) -> Outcome:
    """In a worker: the page as the API answers it (JSON bytes), or the error it ends in."""
    deadline = Deadline(settings, ends_at=ends_at, opaque_id=opaque_id)
    try:
        page = search_calls(_worker_client(settings), settings, request, deadline)
    except QueryError as exc:
        return "query", (exc.message, exc.position)
    except SearchTimeoutError as exc:
        return "timeout", str(exc)
    except SearchBackendError as exc:
        return "backend", str(exc)
    return "page", page.model_dump_json(by_alias=True).encode()


def search_page_json(es: Elasticsearch, settings: Settings, request: SearchRequest) -> bytes:
    """``search_calls`` for one page, as the JSON bytes of its ``SearchResponse``, built in a
    search worker (in this thread with ``search_processes`` 0, or without a query). ``es`` is
    this process's client: it searches in this thread, and cancels a search the workers never
    answered."""
    deadline = Deadline(settings)
    # A page without a query has no hits: a small answer (call fields only) and nothing to
    # rebuild, less work than handing it to a worker.
    pool = search_pool(settings) if request.tree is not None else None
    if pool is None:
        return search_calls(es, settings, request, deadline).model_dump_json(by_alias=True).encode()
    future: Future[Outcome] | None = None
    try:
        future = pool.submit(
            _page_in_worker, settings, request, deadline.ends_at, deadline.opaque_id
        )
        kind, value = future.result(timeout=max(deadline.left_s(), 0) + GRACE_S)
    except FutureTimeout as exc:
        if future is not None:
            future.cancel()
        cancel_in_background(es, deadline.opaque_id)
        raise SearchTimeoutError(
            f"the search ran past {deadline.budget_s:g} s: {SEARCH_ADVICE}"
        ) from exc
    except BrokenProcessPool as exc:
        _discard(pool)
        raise SearchBackendError("a search worker stopped; try again") from exc
    if kind == "page":
        assert isinstance(value, bytes)
        return value
    if kind == "query":
        assert isinstance(value, tuple)
        raise QueryError(*value)
    assert isinstance(value, str)
    raise (SearchTimeoutError if kind == "timeout" else SearchBackendError)(value)


__all__ = ["search_page_json", "search_pool", "start_search_workers"]
