"""A pool of worker processes, at a lower CPU priority, for the heavy part of re-tagging.

A re-tagged call is written whole: its transcript is read back and its document built again,
terms and lemmas included (``indexer.trackers.changes._retag_batch`` says why), tens of
milliseconds of Python per call. In the API's own process that work would hold the GIL the
searches need, on one core; here it runs in processes of its own, as many as
``retag_processes``, and niced, so the operating system runs searches (and Elasticsearch)
first when the cores are busy. A job thread only hands out batches of candidates and reads
back counts.

The pool is the process's one pool, started at its first use ("spawn": the API has threads,
which a fork would copy in whatever state they are in) and restarted when a worker died.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from elasticsearch import Elasticsearch

from indexer.elastic import connect
from indexer.settings import Settings

# Added to the workers' nice value: below the API and Elasticsearch, not starved.
WORKER_NICENESS = 10
# How often a worker checks that the process that started it is still there.
PARENT_CHECK_S = 1.0

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
# In a worker: one client per cluster address and timeouts, kept for the process's life.
_clients: dict[tuple[str, float, int], Elasticsearch] = {}


def _start_worker() -> None:
    os.nice(WORKER_NICENESS)
    # A worker outlives a parent that died or exited without shutting the pool down (its
    # siblings keep the task pipe open): it leaves as soon as it has another parent.
    parent = os.getppid()
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def worker_pool(settings: Settings) -> ProcessPoolExecutor | None:
    """The pool (None when ``retag_processes`` is 0: the caller does the work itself)."""
    global _pool, _pool_size
    if settings.retag_processes == 0:
        return None
    with _lock:
        if _pool is None or _pool_size != settings.retag_processes:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=False)
            _pool = ProcessPoolExecutor(
                max_workers=settings.retag_processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )
            _pool_size = settings.retag_processes
        return _pool


def discard_pool(broken: ProcessPoolExecutor) -> None:
    """Forget a pool whose worker died (BrokenProcessPool): the next use starts a new one."""
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None


def worker_client(settings: Settings) -> Elasticsearch:
    """The worker process's client for these settings' cluster."""
    key = (settings.es_url, settings.es_request_timeout_s, settings.es_max_retries)
    if key not in _clients:
        _clients[key] = connect(settings)
    return _clients[key]


__all__ = ["BrokenProcessPool", "discard_pool", "worker_client", "worker_pool"]
