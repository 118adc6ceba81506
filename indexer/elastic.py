"""Talking to Elasticsearch: the client (and the connections it sends plain HTTP on,
``PlainHttpNode``), one clear error for an unreachable or failing cluster, which failures are
worth retrying, the capped exponential backoff that retries them, and reading every hit of a
query (``scan_hits``).
"""

from __future__ import annotations

import http.client
import json
import logging
import platform
import queue
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import elastic_transport
import orjson
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders, NodeConfig, ObjectApiResponse
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import ApiError, Elasticsearch
from elasticsearch._version import __versionstr__ as client_version
from elasticsearch.exceptions import HTTP_EXCEPTIONS
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

from indexer.errors import SearchBackendError, SearchTimeoutError
from indexer.settings import Settings

INITIAL_BACKOFF_S = 0.5

# The Accept and Content-Type the client sends: JSON of its major version's compatibility mode.
COMPATIBLE_JSON = (
    "application/vnd.elasticsearch+json; compatible-with=" + client_version.partition(".")[0]
)
COMPATIBLE_NDJSON = COMPATIBLE_JSON.replace("+json", "+x-ndjson")


log = logging.getLogger("earshot.es")


T = TypeVar("T")


def es_hosts(es_url: str) -> list[str]:
    """The node URLs of ``es_url`` (one, or several comma-separated)."""
    hosts = [url.strip() for url in es_url.split(",") if url.strip()]
    if not hosts:
        raise ValueError("ES_URL names no Elasticsearch node")
    return hosts


def decode_answer(data: bytes) -> Any:
    """An answer's JSON: orjson, and what orjson refuses while the standard library reads it
    (an escaped lone surrogate) by the standard library, so no answer that parsed before
    fails now."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class OrjsonAnswers(JsonSerializer):
    """Requests written as the client always writes them; answers parsed with orjson.

    A search page's answer is 50–300 KB of JSON (every shown utterance with its words), and
    parsing it was the largest single cost of the API's own time; orjson reads it about three
    times faster than the standard library."""

    def json_loads(self, data: bytes) -> Any:
        return decode_answer(data)


class LargeAnswersUndecoded(OrjsonAnswers):
    """As ``OrjsonAnswers``, but an answer of ``undecoded_from`` bytes or more is returned as
    its bytes (the client's response body is then ``bytes``), for the caller to decode where
    it chooses: a large search page is decoded in a worker process, since decoding it is one C
    call that holds the GIL throughout (``indexer.search.workers``)."""

    def __init__(self, undecoded_from: int) -> None:
        super().__init__()
        self.undecoded_from = undecoded_from

    def loads(self, data: bytes) -> Any:
        if len(data) >= self.undecoded_from:
            return data
        return super().loads(data)


class BulkBodiesAsBuilt(NdjsonSerializer):
    """NDJSON requests: a body the caller built as bytes, ending in a newline, is sent as it is.

    Why: the client's serializer copies every bytes body into a new buffer, and a loader's bulk
    request of 200 calls is ~20 MB: the copy (and the fresh memory it touches) was a third of
    the loader's own CPU per call (docs/benchmarks.md, "One worker beside a local node")."""

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


def _error_message(body: Any, default: str) -> str:
    """The message the client gives an error answer: its error's type, when it has one."""
    error = body.get("error", default) if isinstance(body, dict) else default
    return error["type"] if isinstance(error, dict) and "type" in error else str(error)


def decode_error_body(exc: ApiError) -> None:
    """Give an error whose answer a ``LargeAnswersUndecoded`` client left as bytes its
    decoded body and the message the client gives it when it decodes (the error's type)."""
    if not isinstance(exc.body, bytes):
        return
    try:
        exc.body = decode_answer(exc.body)
    except ValueError:
        exc.body = exc.body.decode(errors="replace")
        exc.message = exc.body
        return
    exc.message = _error_message(exc.body, exc.message)


def index_path(index: str, endpoint: str) -> str:
    """``/<index>/<endpoint>``, the index quoted as the client quotes it."""
    return f"/{quote(index, safe=',*')}/{endpoint}"


def json_request(
    es: Elasticsearch,
    method: str,
    target: str,
    *,
    body: Any = None,
    request_timeout: float | None = None,
    opaque_id: str | None = None,
    ndjson: bool = False,
) -> ObjectApiResponse[Any]:
    """One JSON request by ``es``'s transport: its nodes, connections, retries, serializer
    and timeout (``request_timeout`` instead, when given), the error of a failing status as the
    client raises it (the ``ApiError`` subclass of the status, the same message and body).

    What it leaves out is the client's API layer, which a search request pays on every call
    in the API: ``es.options(...)`` builds a client (~0.2 ms) and ``es.search(...)`` rewrites
    its parameters and opens a telemetry span, ~1 ms of CPU together over the request itself
    (docs/benchmarks.md, *Per-request overhead, round 3*). ``body`` may be bytes already
    serialised (sent as they are) or what the client's serializer writes; with ``ndjson``, the
    lines of a ``_msearch`` or ``_bulk``."""
    # The client keeps its options (set by ``connect`` and ``options``) on these attributes;
    # read here so that a client made with other options sends with them.
    headers = {**es._headers, "accept": COMPATIBLE_JSON}
    if body is not None:
        headers["content-type"] = COMPATIBLE_NDJSON if ndjson else COMPATIBLE_JSON
    if opaque_id is not None:
        headers["x-opaque-id"] = opaque_id
    meta, answer = es.transport.perform_request(
        method,
        target,
        body=body,
        headers=headers,
        request_timeout=es._request_timeout if request_timeout is None else request_timeout,
        max_retries=es._max_retries,
        retry_on_status=es._retry_on_status,
        retry_on_timeout=es._retry_on_timeout,
    )
    if not 200 <= meta.status < 300:
        raise api_error(meta, answer)
    return ObjectApiResponse(body=answer, meta=meta)


def api_error(meta: elastic_transport.ApiResponseMeta, body: Any) -> ApiError:
    """The error the client raises for an answer of ``meta.status``: its ``ApiError``
    subclass, message and body. Also for one search of a ``_msearch`` that failed (``body``
    its item, ``meta`` the whole answer's with the item's status)."""
    return HTTP_EXCEPTIONS.get(meta.status, ApiError)(
        message=_error_message(body, str(body)), meta=meta, body=body
    )


# How long a point in time stays open between two pages of ``scan_hits``.
SCAN_KEEP_ALIVE = "5m"


def scan_hits(
    es: Elasticsearch,
    index: str,
    query: dict[str, Any] | None = None,
    *,
    size: int,
    **body: Any,
) -> Iterator[dict[str, Any]]:
    """Every hit of ``query`` (all documents without one) on ``index``, ``size`` to a page, as
    one point in time saw them; ``body`` adds to each page's request (``_source``,
    ``seq_no_primary_term``, ``filter_path``...). Raises SearchBackendError when a shard fails.

    Why not a scroll (``helpers.scan``): a scroll page is "the next one", so when the client
    retries a page request that timed out (``connect`` retries timeouts) and the first attempt
    did reach the node, the retry gets the page after it and one page is lost without an
    error. Seen at 100k calls: a reindex's id check read 90,000 of 100,000 ids from an index
    busy merging; a retag would have skipped calls and reported done. Here a page is named by
    the sort values of the last hit before it (``search_after``), so a retried request gets
    the same page again."""
    pit = str(es.open_point_in_time(index=index, keep_alive=SCAN_KEEP_ALIVE)["id"])
    filter_path = body.pop("filter_path", None)
    if filter_path is not None:  # what the loop reads must survive the caller's filter
        filter_path = [*filter_path, "pit_id", "_shards.failed", "hits.hits.sort"]
    after: list[Any] | None = None
    try:
        while True:
            page = es.search(
                pit={"id": pit, "keep_alive": SCAN_KEEP_ALIVE},
                query=query or {"match_all": {}},
                sort=[{"_shard_doc": "asc"}],
                size=size,
                search_after=after,
                track_total_hits=False,
                filter_path=filter_path,
                **body,
            )
            pit = str(page.get("pit_id", pit))
            if failed := page.get("_shards", {}).get("failed"):
                raise SearchBackendError(f"reading every hit of {index} failed on {failed} shards")
            hits: list[dict[str, Any]] = page.get("hits", {}).get("hits", [])
            yield from hits
            if len(hits) < size:
                return
            after = hits[-1]["sort"]
    finally:
        es.options(ignore_status=404).close_point_in_time(id=pit)


def _readable(sock: socket.socket) -> bool:
    """Whether a socket has something to read now. An idle keep-alive connection has nothing
    to read: readable means the node closed it (or wrote what no request asked for). ``poll``,
    not ``select``, which refuses descriptors past 1023."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class PlainHttpNode(BaseNode):
    """A node reached over plain ``http://``, its requests sent by the standard library's
    ``http.client`` on keep-alive connections: the client's default node (urllib3) costs
    ~0.2 ms of CPU more per request, a twentieth of what the API spends on a search page
    (docs/benchmarks.md, "Search pages, round 5"). ``https://`` nodes keep the
    default node, with its TLS options.

    As the default node: thread-safe; an idle connection is reused, newest first, after a
    check that the node has not closed it (after a restart, say); a request that fails on
    its connection (refused, reset, cut off) is ``elastic_transport.ConnectionError`` and
    one that waits past its timeout is ``ConnectionTimeout``, its connection closed, and the
    transport retries it as it does any node's; at most ``connections_per_node`` connections
    are kept idle."""

    _CLIENT_META_HTTP_CLIENT = ("hc", platform.python_version())

    def __init__(self, config: NodeConfig) -> None:
        if config.scheme != "http" or config.http_compress:
            raise ValueError("PlainHttpNode sends plain, uncompressed http:// only")
        super().__init__(config)
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            sock = connection.sock
            if sock is not None and not _readable(sock):
                if connection.timeout != timeout:
                    connection.timeout = timeout
                    sock.settimeout(timeout)
                return connection
            connection.close()

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        target = f"{self.path_prefix}{target}"
        timeout = (
            self.config.request_timeout
            if isinstance(request_timeout, DefaultType)
            else request_timeout
        )
        request_headers = self._headers.copy()
        if headers:
            request_headers.update(headers)
        start = time.time()
        connection = self._connection(timeout)
        try:
            connection.request(method, target, body=body or None, headers=request_headers)
            response = connection.getresponse()
            data = response.read()
        except Exception as exc:
            connection.close()
            error: Exception
            if isinstance(exc, TimeoutError):
                error = elastic_transport.ConnectionTimeout(
                    "Connection timed out during request", errors=(exc,)
                )
            elif isinstance(exc, OSError | http.client.HTTPException):
                error = elastic_transport.ConnectionError(str(exc), errors=(exc,))
            else:
                raise
            self._log_request(
                method=method, target=target, headers=request_headers, body=body, exception=error
            )
            raise error from exc
        if response.will_close or self._idle.qsize() >= self.config.connections_per_node:
            connection.close()
        else:
            self._idle.put(connection)
        meta = ApiResponseMeta(
            node=self.config,
            duration=time.time() - start,
            http_version="1.1",
            status=response.status,
            headers=HttpHeaders(response.getheaders()),
        )
        self._log_request(
            method=method,
            target=target,
            headers=request_headers,
            body=body,
            meta=meta,
            response=data,
        )
        return NodeApiResponse(meta, data)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def connect(settings: Settings, *, undecoded_from: int | None = None) -> Elasticsearch:
    """The client. With ``undecoded_from``, answers of that many bytes or more come back as
    their bytes (``LargeAnswersUndecoded``; errors: ``decode_error_body``)."""
    # No sniffing: the nodes named are the ones reachable from here (a cluster's own addresses
    # may not be); a node that fails a request is set aside and the request goes to the next.
    hosts = es_hosts(settings.es_url)
    plain = all(urlsplit(host).scheme == "http" for host in hosts)
    return Elasticsearch(
        hosts,
        node_class=PlainHttpNode if plain else elastic_transport.Urllib3HttpNode,
        request_timeout=settings.es_request_timeout_s,
        max_retries=settings.es_max_retries,
        retry_on_timeout=True,
        # Each also used for its compatibility mimetype (Elasticsearch 9 answers with it).
        serializers={
            JsonSerializer.mimetype: OrjsonAnswers()
            if undecoded_from is None
            else LargeAnswersUndecoded(undecoded_from),
            NdjsonSerializer.mimetype: BulkBodiesAsBuilt(),
        },
    )


def redact_url(url: str) -> str:
    """A URL fit for a message or a log: any user and password removed (from each of several
    comma-separated node URLs too)."""
    if "," in url:
        return ",".join(redact_url(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def backend_errors(es_url: str) -> Iterator[None]:
    """Turn transport failures into one clear SearchBackendError (SearchTimeoutError when the
    cluster was too slow). The message is fit for any client: it names neither the cluster's
    address nor its exception types; those go to the log, the address without credentials."""
    try:
        yield
    except elastic_transport.ConnectionError as exc:
        log.warning("Elasticsearch at %s is unreachable: %s", redact_url(es_url), exc.message)
        raise SearchBackendError("Elasticsearch is unreachable") from exc
    except elastic_transport.ConnectionTimeout as exc:
        log.warning("Elasticsearch at %s did not answer in time", redact_url(es_url))
        raise SearchTimeoutError("Elasticsearch did not answer in time") from exc
    except ApiError as exc:
        if exc.meta.status >= 500 or exc.meta.status == 429:
            log.warning("Elasticsearch at %s failed: %s", redact_url(es_url), describe(exc))
            if exc.meta.status == 504:
                raise SearchTimeoutError("Elasticsearch did not answer in time") from exc
            raise SearchBackendError(f"Elasticsearch failed (status {exc.meta.status})") from exc
        raise


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: the cluster was unreachable, too
    slow, overloaded (429) or failing (5xx). A 4xx is our request's fault and final."""
    if isinstance(exc, elastic_transport.ConnectionError | elastic_transport.ConnectionTimeout):
        return True
    return isinstance(exc, ApiError) and (exc.meta.status == 429 or exc.meta.status >= 500)


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.meta.status} {exc.message}"
    if isinstance(exc, elastic_transport.TransportError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class Backoff:
    """Retrying what failed for a transient reason, with capped exponential pauses, until
    ``deadline_s`` has passed since the first failure without progress; then
    SearchBackendError. ``retries`` counts every pause, for the report."""

    def __init__(self, es_url: str, deadline_s: float, max_backoff_s: float) -> None:
        self.es_url = es_url
        self.deadline_s = deadline_s
        self.max_backoff_s = max_backoff_s
        self.retries = 0
        self._failing_since: float | None = None
        self._attempt = 0

    def succeeded(self) -> None:
        """Progress was made: the next failure starts a new deadline."""
        self._failing_since = None
        self._attempt = 0

    def pause(self, what: str, reason: str) -> None:
        """Wait before retrying ``what``, or raise SearchBackendError when time is up."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        left = self.deadline_s - (now - self._failing_since)
        if left <= 0:
            log.error(
                "Elasticsearch at %s still failing after %.0f s: %s",
                redact_url(self.es_url),
                self.deadline_s,
                reason,
            )
            raise SearchBackendError(
                f"Elasticsearch still failing after {self.deadline_s:.0f} s; gave up on {what}"
            )
        delay = min(self.max_backoff_s, INITIAL_BACKOFF_S * 2**self._attempt, left)
        log.warning(
            "%s failed (%s); retrying in %.1f s (gives up in %.0f s)", what, reason, delay, left
        )
        self._attempt += 1
        self.retries += 1
        time.sleep(delay)

    def call(self, what: str, request: Callable[[], T]) -> T:
        """``request()``, sent again after transient failures."""
        while True:
            try:
                result = request()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.pause(what, describe(exc))
                continue
            self.succeeded()
            return result


def is_reachable(es: Elasticsearch) -> bool:
    """Whether the cluster answers. Not ``ping()``: its ``HEAD /`` lives in the ``rest-root``
    module, which the test distribution lacks."""
    try:
        es.cluster.health()
    except (elastic_transport.TransportError, ApiError):
        return False
    return True
