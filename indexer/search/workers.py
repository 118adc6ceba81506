"""Search pages: the Elasticsearch call in the request's thread, a large answer's Python work
in a worker process, off the GIL of the process that serves requests.

Waiting for Elasticsearch holds no GIL, so the search is sent from the request's thread, by a
client that leaves a large answer undecoded (``search_client``: answers of
``search_worker_min_bytes`` or more come back as their bytes). What follows is Python from end
to end: decoding the answer (one C call that holds the GIL throughout: 40–50 ms for the 7.7 MB
of a worst-case page on an idle machine, 50–190 ms on a busy one), rebuilding every hit from
its utterance's words, encoding the page. For a small answer that is a millisecond or two,
done in the request's thread: handing it to a worker would cost more (a process woken, the
answer copied to it and the page back; docs/benchmarks.md, *Search pages: the Elasticsearch
call in the API, large answers to a worker*). A large answer's bytes go to a worker, which
decodes, rebuilds and encodes the page and sends back its JSON bytes; ``/healthz`` and every
other request of the API's process never wait behind it.

What a search means stays in ``indexer.search.runner``: the same request, whole or nothing,
under the deadline the request started with (the worker checks it as it rebuilds, and the
waiting side gives up a little after it too, for a worker that never got to the page — all
busy — or hangs). Its errors are the runner's ``QueryError``, ``SearchTimeoutError`` or
``SearchBackendError`` with the same messages wherever the page was built.

The pool (``indexer.processes``) is sized by ``search_processes``; with 0 every page is built
in the calling thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from elastic_transport import ApiResponseMeta
from elasticsearch import Elasticsearch

from indexer.elastic import connect, decode_answer
from indexer.errors import SearchBackendError, SearchTimeoutError
from indexer.processes import WorkerPool
from indexer.search.request import SearchRequest
from indexer.search.runner import (
    SEARCH_ADVICE,
    Deadline,
    PagePlan,
    StaleVocabulary,
    page_of,
    page_part,
    plan_of,
    raise_refused,
    searched,
)
from indexer.settings import Settings

# How long past the deadline the waiting side still waits for a worker's own answer (its 504
# carries the worker's message).
GRACE_S = 1.0

SEARCH_POOL = WorkerPool(
    "search", lambda settings: settings.search_processes, modules=("indexer.search.workers",)
)

# What a worker sends back: ("page", the page as JSON bytes), ("timeout", its message), or what
# ``page_part`` found instead of a page (a failed search's item; StaleVocabulary).
Outcome = tuple[str, Any]


def search_client(settings: Settings) -> Elasticsearch:
    """The client that search pages are sent with: an answer of ``search_worker_min_bytes``
    or more comes back undecoded, for a worker. As the API's other client, no retry after a
    timeout (the deadline is the limit)."""
    return connect(settings, undecoded_from=settings.search_worker_min_bytes).options(
        retry_on_timeout=False
    )


def start_search_workers(settings: Settings) -> list[int]:
    """Start every search worker now (``WorkerPool.start``); process ids."""
    return SEARCH_POOL.start(settings)


def _page_json(
    answer: dict[str, Any], settings: Settings, plan: PagePlan, deadline: Deadline
) -> bytes:
    page = page_of(answer, settings, plan.request, plan.named, deadline)
    return page.model_dump_json(by_alias=True).encode()


def _page_in_worker(
    answer: bytes,
    settings: Settings,
    expanded: SearchRequest,
    assumed_terms: list[dict[str, Any]] | None,
    ends_at: float,
    opaque_id: str,
) -> Outcome:
    """In a worker: the page of a large answer as the API answers it (JSON bytes), the timeout
    it ran into while rebuilding, or what ``page_part`` found instead of a page."""
    deadline = Deadline(settings, ends_at=ends_at, opaque_id=opaque_id)
    # The matches of the request's query, compiled again here (a fraction of a millisecond)
    # rather than pickled with it.
    plan = plan_of(settings, expanded, assumed_terms)
    kind, part = page_part(decode_answer(answer), plan)
    if kind != "page":
        return kind, part
    try:
        return "page", _page_json(part, settings, plan, deadline)
    except SearchTimeoutError as exc:
        return "timeout", str(exc)


def search_page_json(es: Elasticsearch, settings: Settings, request: SearchRequest) -> bytes:
    """One page of calls of ``request`` (its query as typed; ``indexer.search.runner``), as
    the JSON bytes of its ``SearchResponse``. ``es`` is a ``search_client``: an answer it
    leaves undecoded is built in a search worker (here with ``search_processes`` 0), every
    other one in this thread."""
    deadline = Deadline(settings)

    def build(answer: Any, meta: ApiResponseMeta, plan: PagePlan) -> bytes | StaleVocabulary:
        pool = SEARCH_POOL.executor(settings) if isinstance(answer, bytes) else None
        if pool is None:
            kind, part = page_part(
                decode_answer(answer) if isinstance(answer, bytes) else answer, plan
            )
            if kind == "page":
                return _page_json(part, settings, plan, deadline)
        else:
            kind, part = _in_worker(pool, answer, settings, plan, deadline)
        if kind == "refused":
            raise_refused(part, meta, settings, plan)
        if kind == "timeout":
            raise SearchTimeoutError(part)
        if kind == "stale":
            assert isinstance(part, StaleVocabulary)
            return part
        assert isinstance(part, bytes)
        return part

    return searched(es, settings, request, deadline, build)


def _in_worker(
    pool: ProcessPoolExecutor, answer: bytes, settings: Settings, plan: PagePlan, deadline: Deadline
) -> Outcome:
    future: Future[Outcome] | None = None
    try:
        future = pool.submit(
            _page_in_worker,
            answer,
            settings,
            plan.request,
            plan.assumed_terms,
            deadline.ends_at,
            deadline.opaque_id,
        )
        return future.result(timeout=max(deadline.left_s(), 0) + GRACE_S)
    except FutureTimeout as exc:
        if future is not None:
            future.cancel()
        raise deadline.exceeded("search", SEARCH_ADVICE) from exc
    except BrokenProcessPool as exc:
        SEARCH_POOL.discard(pool)
        raise SearchBackendError("a search worker stopped; try again") from exc


__all__ = ["SEARCH_POOL", "search_client", "search_page_json", "start_search_workers"]
