"""A pool of worker processes, at a lower CPU priority, for the heavy part of re-tagging.

A re-tagged call is written whole: its transcript is read back and its document built again,
terms and lemmas included (``indexer.trackers.changes._retag_batch`` says why), tens of
milliseconds of Python per call. In the API's own process that work would hold the GIL the
searches need, on one core; here it runs in processes of its own, as many as
``retag_processes``, and niced, so the operating system runs searches (and Elasticsearch)
first when the cores are busy. A job thread only hands out batches of candidates and reads
back counts. How the pool starts, restarts and stops: ``indexer.processes``.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

from elasticsearch import Elasticsearch

from indexer.elastic import connect
from indexer.processes import WorkerPool
from indexer.settings import Settings

# Added to the workers' nice value: below the API and Elasticsearch, not starved.
WORKER_NICENESS = 10

RETAG_POOL = WorkerPool(
    "retag",
    lambda settings: settings.retag_processes,
    niceness=WORKER_NICENESS,
    modules=("indexer.trackers.changes",),
)

# In a worker: one client per cluster address and timeouts, kept for the process's life.
_clients: dict[tuple[str, float, int], Elasticsearch] = {}


def worker_client(settings: Settings) -> Elasticsearch:
    """The worker process's client for these settings' cluster."""
    key = (settings.es_url, settings.es_request_timeout_s, settings.es_max_retries)
    if key not in _clients:
        _clients[key] = connect(settings)
    return _clients[key]


__all__ = ["RETAG_POOL", "BrokenProcessPool", "worker_client"]
