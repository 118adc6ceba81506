"""A real local 3-node Elasticsearch cluster (``scripts/es-local start --nodes 3``): the calls
index has a replica there, and a node killed while the API searches or the loader loads costs
no failed request and loses or doubles nothing.

The cluster is this module's own: HTTP ports 9231–9233 (transport 9331–9333), data in a
temporary folder, stopped and removed at the end; the shared node on 9200 is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from builders import make_call
from elasticsearch import Elasticsearch, helpers
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.elastic import connect
from indexer.index.loader import LoadSummary, load_calls
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall, read_call_file

NODES = 3
FIRST_PORT = 9231
URLS = [f"http://127.0.0.1:{FIRST_PORT + n}" for n in range(NODES)]
MAX_CONTENT = "1mb"
STEP_TIMEOUT_S = 480  # starting 3 nodes on a busy 2-core machine took 2–4 min
SAMPLES = sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))


class LocalCluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        env = {key: value for key, value in os.environ.items() if key != "ES_URL"}
        self.env = {
            **env,
            "EARSHOT_ES_PORT": str(FIRST_PORT),
            "EARSHOT_ES_CLUSTER_DIR": str(folder),
            # Small enough that a test can send a bulk request over it (default 100mb).
            "EARSHOT_ES_EXTRA_SETTINGS": f"http.max_content_length: {MAX_CONTENT}",
        }

    def run(self, command: str) -> None:
        subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "es-local"), command, "--nodes", str(NODES)],
            env=self.env, check=True, timeout=STEP_TIMEOUT_S, capture_output=True,
        )  # fmt: skip

    def pid(self, node: int) -> int:
        return int((self.folder / str(node) / "es.pid").read_text().strip())

    def kill(self, node: int) -> None:
        """Kill node ``node`` (1-based) as a crash would: no goodbye to the cluster."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    folder = Path(tempfile.mkdtemp(prefix="earshot-es-cluster-"))
    local = LocalCluster(folder)
    try:
        local.run("start")
        yield local
    finally:
        local.run("stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cluster_settings(cluster: LocalCluster, tmp_path: Path) -> Iterator[Settings]:
    cluster.run("start")  # every node up, whatever the test before did
    settings = Settings(
        es_url=",".join(URLS),
        calls_alias=f"test-cluster-{uuid.uuid4().hex[:12]}",
        store_dir=tmp_path / "store",
        bulk_chunk_size=20,
        es_retry_deadline_s=240,
        es_retry_max_backoff_s=2,
    )
    yield settings
    es = connect(settings)
    names = list(es.indices.get(index=f"{settings.calls_alias}-*", expand_wildcards="all"))
    if names:
        es.indices.delete(index=",".join(names))
    es.options(ignore_status=404).indices.delete_index_template(name=settings.calls_alias)
    es.close()


def shard_copies(es: Elasticsearch, alias: str) -> list[dict[str, str]]:
    """Each copy of the index's shards: its kind ("p" or "r") and the node holding it."""
    rows = es.cat.shards(index=alias, format="json", h="prirep,node").body
    assert isinstance(rows, list), rows
    return rows


def node_of_primary(es: Elasticsearch, alias: str) -> int:
    """Which node (1-based) holds the calls index's primary shard: the worst one to lose."""
    [shard] = [s for s in shard_copies(es, alias) if s["prirep"] == "p"]
    return int(str(shard["node"]).removeprefix("earshot-c"))


def load(es: Elasticsearch, settings: Settings, sources: Iterable[SourcedCall]) -> LoadSummary:
    """The real loader, tagging as every caller does."""
    return load_calls(es, settings, sources, tag=current_tagger(es, settings))


def wait_green(es: Elasticsearch, alias: str) -> None:
    health = es.cluster.health(index=alias, wait_for_status="green", timeout="120s")
    assert health["status"] == "green", health


def indexed_ids(es: Elasticsearch, alias: str) -> list[str]:
    es.indices.refresh(index=alias)
    return sorted(hit["_id"] for hit in helpers.scan(es, index=alias, source=False))


def test_the_calls_index_has_a_replica_on_the_cluster(cluster_settings: Settings) -> None:
    es = connect(cluster_settings)
    calls = [read_call_file(path) for path in SAMPLES]
    summary = load(es, cluster_settings, [SourcedCall("sample", c) for c in calls])
    assert summary.failures == []
    wait_green(es, cluster_settings.calls_alias)
    shards = shard_copies(es, cluster_settings.calls_alias)
    assert sorted(s["prirep"] for s in shards) == ["p", "r"]
    assert len({s["node"] for s in shards}) == 2, "the copies sit on different nodes"


def test_a_node_killed_during_searches_fails_no_request(
    cluster: LocalCluster, cluster_settings: Settings
) -> None:
    es = connect(cluster_settings)
    calls = [read_call_file(path) for path in SAMPLES]
    assert load(es, cluster_settings, [SourcedCall("s", c) for c in calls]).failures == []
    wait_green(es, cluster_settings.calls_alias)
    victim = node_of_primary(es, cluster_settings.calls_alias)
    queries = ["цена", "price", "скидк*", '"good morning"']
    statuses: list[int] = []
    totals: dict[str, set[int]] = {q: set() for q in queries}
    killed_at: list[int] = []

    with TestClient(create_app(cluster_settings)) as api:

        def search_round() -> None:
            for query in queries:
                response = api.get("/v1/search", params={"q": query})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    totals[query].add(response.json()["total"])

        search_round()
        expected = {q: next(iter(t)) for q, t in totals.items()}
        assert any(expected.values()), expected

        def kill_the_primary() -> None:
            cluster.kill(victim)
            killed_at.append(1)

        killer = threading.Timer(2.0, kill_the_primary)
        killer.start()
        deadline = time.monotonic() + 60
        rounds_after = 0
        while rounds_after < 20 and time.monotonic() < deadline:
            search_round()
            rounds_after += bool(killed_at)
        killer.join()

    assert killed_at, "the node was killed while searches ran"
    assert rounds_after == 20, "searches went on after the kill"
    assert set(statuses) == {200}, [s for s in statuses if s != 200]
    assert all(len(found) == 1 for found in totals.values()), totals
    assert {q: next(iter(t)) for q, t in totals.items()} == expected


def generated_calls(n: int) -> list[Call]:
    return [
        make_call(
            f"gen-{i:04d}",
            [("manager", f"good morning this is call {i}"), ("client", "what does it cost")],
        )
        for i in range(n)
    ]


class GatedSource:
    """Yields the calls; after ``gate_at`` waits until ``opened``, so the test knows the load
    is under way when it kills the node."""

    def __init__(self, calls: list[Call], gate_at: int) -> None:
        self.calls, self.gate_at = calls, gate_at
        self.reached, self.opened = threading.Event(), threading.Event()

    def __iter__(self) -> Iterator[SourcedCall]:
        for number, call in enumerate(self.calls):
            if number == self.gate_at:
                self.reached.set()
                if not self.opened.wait(timeout=STEP_TIMEOUT_S):
                    raise TimeoutError("the test never opened the gate")
            yield SourcedCall("generated", call)


def test_a_node_killed_during_a_load_loses_and_doubles_nothing(
    cluster: LocalCluster, cluster_settings: Settings
) -> None:
    es = connect(cluster_settings)
    calls = generated_calls(400)
    assert load(es, cluster_settings, [SourcedCall("g", calls[0])]).failures == []
    wait_green(es, cluster_settings.calls_alias)
    victim = node_of_primary(es, cluster_settings.calls_alias)
    source = GatedSource(calls, gate_at=200)
    outcome: dict[str, object] = {}
    loader = threading.Thread(
        target=lambda: outcome.update(summary=load(es, cluster_settings, source))
    )
    loader.start()
    try:
        assert source.reached.wait(timeout=STEP_TIMEOUT_S), "the load never got half way"
        cluster.kill(victim)
    finally:
        source.opened.set()  # the second half goes to a cluster one node short
    loader.join(timeout=STEP_TIMEOUT_S)
    assert not loader.is_alive(), "the load did not finish in time"

    summary = outcome["summary"]
    assert summary.failures == []  # type: ignore[attr-defined]
    assert summary.loaded == 400  # type: ignore[attr-defined]
    assert indexed_ids(es, cluster_settings.calls_alias) == [c.call_id for c in calls]
    assert es.count(index=cluster_settings.calls_alias)["count"] == 400


def test_a_bulk_request_too_large_is_split_and_a_call_too_large_refused_alone(
    cluster_settings: Settings,
) -> None:
    es = connect(cluster_settings)
    calls = generated_calls(600)  # ~2.4 KB of document each: 1.4 MB in one request
    giant = make_call("giant", [("manager", " ".join(f"word{i}" for i in range(12_000)))])
    sources = [SourcedCall("generated", c) for c in calls[:300]]
    sources += [SourcedCall("giant.json", giant)]  # ~1.9 MB alone
    sources += [SourcedCall("generated", c) for c in calls[300:]]
    settings = cluster_settings.model_copy(update={"bulk_chunk_size": 1000})

    summary = load(es, settings, sources)

    assert summary.failures == [
        "giant.json: call giant rejected by Elasticsearch: larger than one request may be "
        "(413; its http.max_content_length)"
    ]
    assert summary.loaded == 600
    assert indexed_ids(es, settings.calls_alias) == [c.call_id for c in calls]
