"""Ingest that loses nothing: Elasticsearch stopped and started in the middle of a load, a load
that gives up after its deadline and is simply run again, and documents the index refuses.

The restart tests run their own node (``scripts/es-local`` with EARSHOT_ES_NODE=restart on port
9250), started once for this module and stopped at the end: the shared node on 9200 is never
touched.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import make_call
from elasticsearch import Elasticsearch, helpers

from indexer.elastic import connect, is_reachable
from indexer.errors import SearchBackendError
from indexer.index.building import RawTranscript
from indexer.index.definitions import index_definition, versioned_index_name
from indexer.index.loader import LoadSummary, load_calls, load_transcripts
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, Manager, SourcedCall

RESTART_NODE = {"EARSHOT_ES_NODE": "restart", "EARSHOT_ES_PORT": "9250", "EARSHOT_ES_HEAP": "512m"}
RESTART_URL = "http://127.0.0.1:9250"
STEP_TIMEOUT_S = 300  # generous bounds on every wait, so a stuck test fails instead of hanging


def es_local(command: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "ES_URL"}
    subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "es-local"), command],
        env={**env, **RESTART_NODE},
        check=True,
        timeout=STEP_TIMEOUT_S,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def restart_node() -> Iterator[Elasticsearch]:
    """A node of this module's own, which the tests stop and start."""
    es_local("start")
    client = connect(Settings(es_url=RESTART_URL, es_max_retries=0))
    try:
        yield client
    finally:
        client.close()
        es_local("stop")


@pytest.fixture
def restart_settings(restart_node: Elasticsearch, tmp_path: Path) -> Iterator[Settings]:
    if not is_reachable(restart_node):
        es_local("start")  # a test that failed half-way may have left it stopped
    alias = f"test-restart-{uuid.uuid4().hex[:12]}"
    yield Settings(
        es_url=RESTART_URL,
        calls_alias=alias,
        store_dir=tmp_path / "store",
        bulk_chunk_size=20,
        es_retry_deadline_s=240,
        es_retry_max_backoff_s=2,
    )
    if is_reachable(restart_node):
        names = list(restart_node.indices.get(index=f"{alias}-*", expand_wildcards="all"))
        if names:
            restart_node.indices.delete(index=",".join(names))
        restart_node.options(ignore_status=404).indices.delete_index_template(name=alias)


class RetryWatcher(logging.Handler):
    """Sets ``retrying`` when the loader logs that it waits to send something again."""

    def __init__(self) -> None:
        super().__init__()
        self.retrying = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.retrying.set()


@pytest.fixture
def retry_watcher() -> Iterator[RetryWatcher]:
    watcher = RetryWatcher()
    logger = logging.getLogger("earshot.es")
    logger.addHandler(watcher)
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)


def generated_calls(n: int) -> list[Call]:
    return [
        make_call(
            f"gen-{i:04d}",
            [("manager", f"good morning this is call {i}"), ("client", "what does it cost")],
        )
        for i in range(n)
    ]


class GatedSource:
    """The calls to load; after ``gate_at`` of them it waits until ``opened`` is set, so the
    test knows the load is half done and still running when it stops the node."""

    def __init__(self, calls: list[Call], gate_at: int) -> None:
        self.calls = calls
        self.gate_at = gate_at
        self.reached = threading.Event()
        self.opened = threading.Event()

    def _gated(self) -> Iterator[Call]:
        for number, call in enumerate(self.calls):
            if number == self.gate_at:
                self.reached.set()
                if not self.opened.wait(timeout=STEP_TIMEOUT_S):
                    raise TimeoutError("the test never opened the gate")
            yield call

    def __iter__(self) -> Iterator[SourcedCall]:
        return (SourcedCall("generated", call) for call in self._gated())

    def raw(self) -> Iterator[RawTranscript]:
        """The same calls as JSON Lines lines, for the loader's worker processes."""
        for number, call in enumerate(self._gated(), start=1):
            yield RawTranscript(f"generated:{number}", line=call.model_dump_json().encode())


class LoadInThread:
    """``load_calls`` of the parsed calls (built in the loader's process, batch after batch),
    or with ``workers`` > 1 ``load_transcripts`` of their lines (built in worker processes,
    batches ahead of the sends)."""

    def __init__(
        self, es: Elasticsearch, settings: Settings, source: GatedSource, workers: int = 1
    ) -> None:
        self.summary: LoadSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(es, settings, source, workers))
        self.thread.start()

    def _run(
        self, es: Elasticsearch, settings: Settings, source: GatedSource, workers: int
    ) -> None:
        tag = current_tagger(es, settings)
        try:
            if workers == 1:
                self.summary = load_calls(es, settings, source, tag=tag)
            else:
                with_workers = settings.model_copy(update={"load_workers": workers})
                self.summary = load_transcripts(es, with_workers, source.raw(), tag=tag)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(timeout=STEP_TIMEOUT_S)
        assert not self.thread.is_alive(), "the load did not finish in time"


def indexed_ids(es: Elasticsearch, alias: str) -> list[str]:
    es.indices.refresh(index=alias)
    return sorted(hit["_id"] for hit in helpers.scan(es, index=alias, source=False))


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_elasticsearch_restarted_mid_load_loses_and_doubles_nothing(
    restart_node: Elasticsearch,
    restart_settings: Settings,
    retry_watcher: RetryWatcher,
    workers: int,
) -> None:
    calls = generated_calls(400)
    source = GatedSource(calls, gate_at=200)
    loader = LoadInThread(restart_node, restart_settings, source, workers)
    try:
        assert source.reached.wait(timeout=STEP_TIMEOUT_S), "the load never got half way"
        es_local("stop")
        assert not is_reachable(restart_node)
    finally:
        source.opened.set()  # the second half is sent to a stopped node
    assert retry_watcher.retrying.wait(timeout=STEP_TIMEOUT_S), "the loader never retried"
    es_local("start")
    loader.join()

    assert loader.error is None, loader.error
    assert loader.summary is not None
    assert loader.summary.failures == []
    assert loader.summary.loaded == 400
    assert loader.summary.retries > 0
    assert indexed_ids(restart_node, restart_settings.calls_alias) == [c.call_id for c in calls]
    assert restart_node.count(index=restart_settings.calls_alias)["count"] == 400


# In-process only: it relies on reading call N meaning every batch before N's was sent, which
# load_calls promises and load_transcripts (its workers build batches ahead) does not.
def test_a_load_past_its_deadline_says_so_and_a_rerun_completes_it(
    restart_node: Elasticsearch, restart_settings: Settings
) -> None:
    settings = restart_settings.model_copy(update={"es_retry_deadline_s": 3.0})
    calls = generated_calls(100)
    source = GatedSource(calls, gate_at=40)
    loader = LoadInThread(restart_node, settings, source)
    try:
        assert source.reached.wait(timeout=STEP_TIMEOUT_S), "the load never got under way"
        es_local("stop")
    finally:
        source.opened.set()
    loader.join()
    es_local("start")

    assert isinstance(loader.error, SearchBackendError)
    assert "still failing after 3 s" in str(loader.error)
    assert "40 calls loaded before, the rest not: run the same load again" in str(loader.error)
    # What was acknowledged before the node went away survived it.
    assert indexed_ids(restart_node, settings.calls_alias) == [c.call_id for c in calls[:40]]

    again = load_calls(
        restart_node,
        settings,
        [SourcedCall("generated", c) for c in calls],
        tag=current_tagger(restart_node, settings),
    )

    assert (again.loaded, again.failures) == (100, [])
    assert indexed_ids(restart_node, settings.calls_alias) == [c.call_id for c in calls]


def test_documents_the_mapping_refuses_are_reported_and_the_others_land(
    es: Elasticsearch, settings: Settings
) -> None:
    # An index whose strict mapping wants a number for manager.team (same schema number, so
    # the loader writes into it): calls with a team are refused one by one, the rest land.
    definition = copy.deepcopy(index_definition())
    mappings = definition["mappings"]
    mappings["properties"]["manager"]["properties"]["team"] = {"type": "integer"}
    es.indices.create(
        index=versioned_index_name(settings.calls_alias),
        settings=definition["settings"],
        mappings=mappings,
        aliases={settings.calls_alias: {"is_write_index": True}},
    )
    calls = generated_calls(6)
    with_team = {"gen-0001", "gen-0004"}
    calls = [
        call.model_copy(update={"manager": Manager(id="m-1", team="north")})
        if call.call_id in with_team
        else call
        for call in calls
    ]

    summary = load_calls(
        es,
        settings,
        [SourcedCall(f"file-{c.call_id}", c) for c in calls],
        tag=current_tagger(es, settings),
    )

    assert summary.loaded == 4
    assert len(summary.failures) == 2
    for failure, call_id in zip(sorted(summary.failures), sorted(with_team), strict=True):
        assert failure.startswith(f"file-{call_id}: call {call_id} rejected by Elasticsearch: ")
        assert "failed to parse field [manager.team] of type [integer]" in failure
    assert indexed_ids(es, settings.calls_alias) == sorted(
        c.call_id for c in calls if c.call_id not in with_team
    )
