"""Search benchmark: a fixed query mix through the API (a real uvicorn process) and directly
against Elasticsearch, in the same run, at several numbers of concurrent clients.

Direct means *the very requests the API sends*: each mix entry is run once in this process
through the API's own code (``api.routes.search.search_request`` → ``indexer.search.search_calls``,
``indexer.trackers.stats.tracker_stats``) with an Elasticsearch client that records every request it
sends (method, path with parameters, headers, body). The direct measurement replays those
recorded requests, so API time / Elasticsearch time is the API's own overhead: HTTP, parsing,
building the query, reading the answer, finding hit seconds, serialising.

Both sides are timed by the same minimal HTTP client (``http.client``, one keep-alive connection
per client thread, the answer read whole but not parsed), closed loop: a client sends its next
request when the previous one is answered. Latency percentiles are nearest-rank.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.serializer import JsonSerializer

from bench.corpus import read_truth
from bench.measure import ROOT, cpu_seconds, es_pid, family_cpu_seconds, latency_summary, rss_mb
from indexer.elastic import COMPATIBLE_JSON, connect
from indexer.settings import Settings
from indexer.vocabulary import vocabulary_index

Truth = dict[str, Any]


def said(record: Truth, key: str, role: str | None = None) -> bool:
    roles = record["said"].get(key)
    return bool(roles) and (role is None or role in roles)


def started_between(record: Truth, start: str, end_exclusive: str) -> bool:
    at = datetime.fromisoformat(record["started_at"]).astimezone(UTC)
    return datetime.fromisoformat(start) <= at < datetime.fromisoformat(end_exclusive)


@dataclass(frozen=True)
class MixQuery:
    """One entry of the mix: API parameters, and which generated calls it must find."""

    name: str
    params: dict[str, str]
    expect: Callable[[Truth], bool] | None = None
    tracker: str | None = None  # set: GET /v1/trackers/<id>/stats with params

    def api_target(self) -> str:
        path = f"/v1/trackers/{self.tracker}/stats" if self.tracker else "/v1/search"
        return f"{path}?{urllib.parse.urlencode(self.params)}"


MANAGER = "m-007"  # a Russian-speaking manager of the generated corpus

MIX: tuple[MixQuery, ...] = (
    MixQuery("rare word", {"q": "неустойка"}, lambda r: said(r, "неустойка")),
    MixQuery("common word", {"q": "хорошо"}, lambda r: said(r, "хорошо")),
    MixQuery("3-word phrase", {"q": '"нам надо подумать"'}, lambda r: said(r, "нам надо подумать")),
    MixQuery(
        "phrase + role",
        {"q": 'client:"слишком дорого"'},
        lambda r: said(r, "слишком дорого", "client"),
    ),
    MixQuery(
        "phrase + manager + dates",
        {
            "q": '"нам надо подумать"',
            "manager_id": MANAGER,
            "date_from": "2024-04-01",
            "date_to": "2025-03-31",
        },
        lambda r: (
            said(r, "нам надо подумать")
            and r["manager_id"] == MANAGER
            and started_between(r, "2024-04-01T00:00:00+00:00", "2025-04-01T00:00:00+00:00")
        ),
    ),
    MixQuery(
        "role-negative",
        {"q": 'client:"дорого" AND NOT manager:"скидка"'},
        lambda r: said(r, "дорого", "client") and not said(r, "скидка", "manager"),
    ),
    MixQuery("tracker stats", {"group_by": "manager"}, tracker="pricing"),
    MixQuery(
        "English phrase", {"q": '"send me the contract"'}, lambda r: said(r, "send me the contract")
    ),
    MixQuery("NEAR", {"q": "дорого NEAR/3 нас"}, lambda r: said(r, "дорого для нас")),
    MixQuery("prefix", {"q": "неусто*"}, lambda r: said(r, "неустойка")),
    MixQuery("time window", {"q": 'manager:"добрый день" WITHIN first 30s'}),
    MixQuery("word forms", {"q": "скидка", "mode": "forms"}),
    MixQuery(
        "filters only",
        {"manager_id": MANAGER, "sort": "newest"},
        lambda r: r["manager_id"] == MANAGER,
    ),
)


# --- Recording the API's Elasticsearch requests ------------------------------------------------


@dataclass(frozen=True)
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None


def recording_client(settings: Settings) -> tuple[Elasticsearch, list[RawRequest]]:
    """An Elasticsearch client (as the API makes it) that also records what it sends."""
    es = connect(settings)
    recorded: list[RawRequest] = []
    transport = es.transport
    send = transport.perform_request
    serializer = JsonSerializer()

    vocabulary = vocabulary_index(settings.calls_alias)

    def perform_request(method: str, target: str, **kwargs: Any) -> Any:
        body = kwargs.get("body")
        headers = dict(kwargs.get("headers") or {})
        shown = target
        if target.endswith("/_msearch"):
            # A search page reads the company vocabulary's terms in the same request (a small
            # side index): part of the API's overhead, not of the search Elasticsearch runs.
            # What is recorded is the page's search alone (of the path's index), as a _search.
            body = next(
                search
                for header, search in zip(body[::2], body[1::2], strict=True)
                if header.get("index") != vocabulary
            )
            shown = target.removesuffix("_msearch") + "_search?allow_partial_search_results=false"
            headers["content-type"] = COMPATIBLE_JSON
        if not shown.startswith(f"/{vocabulary}/"):
            raw = None if body is None else serializer.dumps(body)
            recorded.append(RawRequest(method, shown, headers, raw))
        return send(method, target, **kwargs)

    transport.perform_request = perform_request  # type: ignore[method-assign]
    return es, recorded


def api_requests(settings: Settings, query: MixQuery) -> tuple[list[RawRequest], int | None]:
    """The Elasticsearch requests the API sends for ``query`` (by the API's own code), and the
    total it reports (calls for a search; calls in total for tracker stats)."""
    from api.routes.search import search_request
    from indexer.search import Mode, RoleFilter, search_calls
    from indexer.trackers.stats import GroupBy, tracker_stats

    es, recorded = recording_client(settings)
    try:
        if query.tracker is not None:
            stats = tracker_stats(
                es, settings, query.tracker, GroupBy(query.params.get("group_by", "manager"))
            )
            return recorded, None if stats.total is None else stats.total.calls_mentioning
        params: dict[str, Any] = dict(query.params)
        if "mode" in params:
            params["mode"] = Mode(params["mode"])
        params.setdefault("role", RoleFilter.ANY)
        params.setdefault("mode", Mode.EXACT)
        request = search_request(settings, **params)
        answer = search_calls(es, settings, replace(request, size=20))
        return recorded, answer.total
    finally:
        es.close()


# --- Load generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where requests go: the API (GET targets) or Elasticsearch (recorded requests)."""

    host: str
    port: int
    # Each operation is one or more requests sent one after another (tracker stats pages).
    operations: list[list[RawRequest]]


@dataclass
class Outcome:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            **latency_summary(self.latencies_s),
            "errors": self.errors,
            "first_error": self.first_error,
            "throughput_per_s": len(self.latencies_s) / self.wall_s if self.wall_s else 0.0,
        }


def _send(connection: http.client.HTTPConnection, request: RawRequest) -> int:
    connection.request(request.method, request.target, body=request.body, headers=request.headers)
    response = connection.getresponse()
    response.read()
    return response.status


def drive(
    target: Target,
    clients: int,
    *,
    requests_per_client: int | None = None,
    duration_s: float | None = None,
) -> Outcome:
    """``clients`` closed-loop clients, each cycling through the target's operations from its
    own starting point, for a number of requests each or for a duration."""
    outcome = Outcome()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=60)
        latencies: list[float] = []
        errors = 0
        first_error = ""
        start.wait()
        sent = 0
        while True:
            if requests_per_client is not None and sent >= requests_per_client:
                break
            if duration_s is not None and time.perf_counter() >= deadline[0]:
                break
            operation = target.operations[(number + sent) % len(target.operations)]
            sent += 1
            t0 = time.perf_counter()
            try:
                statuses = [_send(connection, request) for request in operation]
            except (OSError, http.client.HTTPException) as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                connection.close()
                connection = http.client.HTTPConnection(target.host, target.port, timeout=60)
                continue
            elapsed = time.perf_counter() - t0
            if all(200 <= status < 300 for status in statuses):
                latencies.append(elapsed)
            else:
                errors += 1
                first_error = first_error or f"HTTP {statuses}"
        connection.close()
        with lock:
            outcome.latencies_s.extend(latencies)
            outcome.errors += errors
            outcome.first_error = outcome.first_error or first_error

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + (duration_s or 0.0)
    start.wait()
    for thread in threads:
        thread.join()
    outcome.wall_s = time.perf_counter() - t0
    return outcome


# --- The API process -------------------------------------------------------------------------


class MemorySampler:
    """The RSS of a process, sampled every ``every_s`` in a background thread."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak_mb = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))

    def __enter__(self) -> MemorySampler:
        self.peak_mb = rss_mb(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop.clear()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb(self.pid))


@contextmanager
def api_server(settings: Settings, port: int) -> Iterator[int]:
    """The API under a real uvicorn process (one worker, access log off); yields its pid."""
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": "",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with status {process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready in 60 s")
            time.sleep(0.3)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- The benchmark ---------------------------------------------------------------------------


@dataclass
class Prepared:
    query: MixQuery
    es_requests: list[RawRequest]
    api_request: RawRequest
    api_total: int | None
    es_total: int | None
    expected: int | None


def _es_total(es_url: str, requests: list[RawRequest]) -> int | None:
    """The total of the first recorded search, as Elasticsearch answers it directly."""
    parsed = urllib.parse.urlsplit(es_url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 9200)
    request = requests[-1]
    connection.request(request.method, request.target, body=request.body, headers=request.headers)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    total = answer.get("hits", {}).get("total", {})
    return int(total["value"]) if isinstance(total, dict) and "value" in total else None


def prepare(
    settings: Settings, mix: tuple[MixQuery, ...], truth: list[Truth] | None
) -> list[Prepared]:
    from indexer.trackers.storage import list_trackers

    es = connect(settings)
    trackers = {tracker.id for tracker in list_trackers(es, settings)}
    es.close()
    prepared = []
    for query in mix:
        if query.tracker is not None and query.tracker not in trackers:
            print(f"skipped '{query.name}': no tracker '{query.tracker}' in {settings.calls_alias}")
            continue
        recorded, api_total = api_requests(settings, query)
        expected = None
        if truth is not None and query.expect is not None:
            expected = sum(1 for record in truth if query.expect(record))
        es_total = None if query.tracker else _es_total(settings.es_url, recorded)
        prepared.append(
            Prepared(
                query,
                recorded,
                RawRequest("GET", query.api_target(), {}, None),
                api_total,
                es_total,
                expected,
            )
        )
    return prepared


def truth_for(corpus: Any, count: int) -> list[Truth] | None:
    try:
        records = read_truth(corpus, count)
    except OSError:
        return None
    return records if len(records) == count else None


def _es_address(es_url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(es_url)
    return parsed.hostname or "127.0.0.1", parsed.port or 9200


def run_mix(
    settings: Settings,
    prepared: list[Prepared],
    *,
    levels: list[int],
    requests: int,
    duration_s: float,
    api_port: int,
    api_pid: int,
) -> dict[str, Any]:
    """Each query alone, Elasticsearch then API, at each number of clients: one client sends
    ``requests`` requests (after 3 warm-up ones); more clients run for ``duration_s``."""
    from bench.measure import load_average

    host, port = _es_address(settings.es_url)
    es_process = es_pid(settings.es_url)
    results: dict[str, Any] = {}
    for clients in levels:
        rows = []
        before = load_average()
        with MemorySampler(api_pid) as memory:
            for item in prepared:
                es_target = Target(host, port, [item.es_requests])
                api_target = Target("127.0.0.1", api_port, [[item.api_request]])
                drive(es_target, 1, requests_per_client=3)
                drive(api_target, 1, requests_per_client=3)
                # CPU seconds of each process per request: the work behind the latencies,
                # which other load on the machine does not inflate. The API's include its
                # search worker processes'.
                cpu0 = cpu_seconds(es_process)
                if clients == 1:
                    es = drive(es_target, 1, requests_per_client=requests)
                else:
                    es = drive(es_target, clients, duration_s=duration_s)
                cpu1, api_cpu1 = cpu_seconds(es_process), family_cpu_seconds(api_pid)
                if clients == 1:
                    api = drive(api_target, 1, requests_per_client=requests)
                else:
                    api = drive(api_target, clients, duration_s=duration_s)
                cpu2, api_cpu2 = cpu_seconds(es_process), family_cpu_seconds(api_pid)
                es_summary, api_summary = es.summary(), api.summary()
                rows.append(
                    {
                        "name": item.query.name,
                        "api": api_summary,
                        "es": es_summary,
                        "ratio_p50": api_summary["p50_ms"] / es_summary["p50_ms"],
                        "es_cpu_ms_direct": (cpu1 - cpu0) * 1000 / max(1, es_summary["n"]),
                        "es_cpu_ms_via_api": (cpu2 - cpu1) * 1000 / max(1, api_summary["n"]),
                        "api_cpu_ms": (api_cpu2 - api_cpu1) * 1000 / max(1, api_summary["n"]),
                    }
                )
        results[str(clients)] = {
            "rows": rows,
            "api_rss_peak_mb": memory.peak_mb,
            "load_average_before": before,
            "load_average_after": load_average(),
        }
    return results


def run_load(
    prepared: list[Prepared], *, clients: int, duration_s: float, api_port: int, api_pid: int
) -> dict[str, Any]:
    """The whole mix at once through the API: ``clients`` closed-loop clients, each cycling
    through the mix from its own starting point, for ``duration_s`` (issue 6's load test)."""
    from bench.measure import load_average

    target = Target("127.0.0.1", api_port, [[item.api_request] for item in prepared])
    drive(target, 2, requests_per_client=len(prepared))
    before = load_average()
    rss_before = rss_mb(api_pid)
    with MemorySampler(api_pid) as memory:
        outcome = drive(target, clients, duration_s=duration_s)
    return {
        "clients": clients,
        "duration_s": duration_s,
        "requests": len(outcome.latencies_s) + outcome.errors,
        **outcome.summary(),
        "api_rss_before_mb": rss_before,
        "api_rss_peak_mb": memory.peak_mb,
        "load_average_before": before,
        "load_average_after": load_average(),
    }


# --- WITHIN windows: the filter as sent, as one term per second, and without it --------------


def _window_variant(node: Any, replace_filter: Callable[[dict[str, Any]], Any]) -> Any:
    """``node`` with every intervals window (an ``any_of`` of one rule with a ``containing``
    filter, as indexer.search.compiler writes it) passed through ``replace_filter``."""
    if isinstance(node, list):
        return [_window_variant(item, replace_filter) for item in node]
    if not isinstance(node, dict):
        return node
    any_of = node.get("any_of")
    if isinstance(any_of, dict) and "containing" in any_of.get("filter", {}):
        return replace_filter(any_of)
    return {key: _window_variant(value, replace_filter) for key, value in node.items()}


def _per_second(any_of: dict[str, Any]) -> dict[str, Any]:
    """The window as it was before schema v4: one range over every second token it covers."""
    containing = any_of["filter"]["containing"]
    ranges = [rule["range"] for rule in containing.get("any_of", {}).get("intervals", [containing])]
    seconds = [r for r in ranges if r["use_field"].endswith("_s")]
    tens = [r for r in ranges if r["use_field"].endswith("_tens")]
    # The last second covered: the end of the second-token range, else the last second of the
    # last ten.
    last = seconds[0]["lte"] if seconds else tens[0]["lte"] + "9"
    field = seconds[0]["use_field"] if seconds else tens[0]["use_field"].replace("_tens", "_s")
    rule = {"range": {"gte": "0" * len(last), "lte": last, "use_field": field}}
    return {"any_of": {"intervals": any_of["intervals"], "filter": {"containing": rule}}}


def window_variants(
    settings: Settings, prepared: list[Prepared], rounds: int
) -> list[dict[str, Any]]:
    """For each windowed query of the mix: Elasticsearch's ``took`` for the API's own request,
    for the same request with the window as one term per second (the index keeps the second
    tokens), and without the window, sent in turn ``rounds`` times (so a busy machine slows all
    three alike), with the request cache off."""
    host, port = _es_address(settings.es_url)
    rows = []
    for item in prepared:
        if "WITHIN" not in item.query.params.get("q", ""):
            continue
        request = item.es_requests[-1]
        assert request.body is not None
        body = json.loads(request.body)
        bodies = {
            "as sent": body,
            "one term per second": _window_variant(body, _per_second),
            "no window": _window_variant(body, lambda any_of: any_of["intervals"][0]),
        }
        target = request.target + ("&" if "?" in request.target else "?") + "request_cache=false"
        took: dict[str, list[float]] = {name: [] for name in bodies}
        totals: dict[str, int] = {}
        connection = http.client.HTTPConnection(host, port, timeout=60)
        for _ in range(rounds):
            for name, variant in bodies.items():
                connection.request(
                    request.method, target, body=json.dumps(variant), headers=request.headers
                )
                answer = json.loads(connection.getresponse().read())
                took[name].append(answer["took"] / 1000)
                totals[name] = answer["hits"]["total"]["value"]
        connection.close()
        rows.append(
            {
                "name": item.query.name,
                "variants": {
                    name: {**latency_summary(took[name]), "total": totals[name]} for name in bodies
                },
            }
        )
    return rows
