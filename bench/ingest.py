"""Ingest benchmark: the project's loader (``indexer.index.loader.load_calls``) into a fresh index,
and where the time goes.

Three measurements:

* ``python``: the Python work per call on a sample, no Elasticsearch, as a worker process of
  the loader does it (``indexer.index.building``) — reading and validating the JSON line
  (``parse_raw``), tracker tags, building the document (``call_document``: terms, lemmas,
  second tokens, metrics), encoding the store's file, and serialising the document (orjson).
  A first pass over the sample runs with cold caches (lemmas are cached per process), a second
  with warm ones, as in a long load.
* ``es``: Elasticsearch alone: the same sample's documents, already serialised into bulk bodies
  of the loader's chunk size, sent into a scratch index created from the same template; with its
  CPU seconds per call.
* ``load``: the real thing, ``load_transcripts`` (what ``python -m indexer load`` runs) over
  the first N lines of the corpus into a fresh alias, with the CPU seconds of the loader (this
  process and its worker processes) and of Elasticsearch, then the index size on disk.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from bench.corpus import BENCH_TRACKERS, corpus_files
from bench.measure import Stopwatch, es_pid, load_average
from indexer.elastic import connect
from indexer.index.building import RawTranscript, parse_raw, settle_heap, worker_count
from indexer.index.definitions import ensure_calls_index
from indexer.index.documents import call_document
from indexer.index.loader import LoadSummary, load_transcripts, read_calls, read_transcripts
from indexer.settings import Settings
from indexer.trackers.changes import create_tracker
from indexer.trackers.model import Tracker, TrackerCreate
from indexer.trackers.tagging import current_tagger, tagger
from indexer.transcript import SourcedCall, encode_call_file


def first_calls(corpus: Path, count: int, summary: LoadSummary) -> Iterator[SourcedCall]:
    """The first ``count`` calls of the corpus, read and validated by the loader's reader."""
    return itertools.islice(read_calls(corpus_files(corpus), summary), count)


def drop_alias(es: Elasticsearch, alias: str) -> None:
    """Delete every index of ``alias`` (and its template) so the load starts from nothing."""
    names = list(es.indices.get(index=f"{alias}-*", expand_wildcards="all"))
    if names:
        es.indices.delete(index=",".join(names))
    es.options(ignore_status=404).indices.delete_index_template(name=alias)


def first_transcripts(corpus: Path, count: int) -> Iterator[RawTranscript]:
    """The first ``count`` lines of the corpus, unread, as the loader takes them."""
    return itertools.islice(read_transcripts(corpus_files(corpus), LoadSummary()), count)


def python_cost(
    es: Elasticsearch, settings: Settings, corpus: Path, sample: int
) -> dict[str, dict[str, float]]:
    """CPU milliseconds per call of each step of the Python work (a worker's, in one process),
    cold then warm (CPU time, not wall time: other work on the machine does not inflate it)."""
    raws = list(first_transcripts(corpus, sample))
    # The loader tags each call with the trackers stored now: the benchmark's, as in `load`.
    now = datetime.now(UTC)
    tag = tagger([Tracker(**spec, created_at=now, updated_at=now) for spec in BENCH_TRACKERS])
    passes: dict[str, dict[str, float]] = {}
    for name in ("cold", "warm"):
        steps: dict[str, float] = {}
        t0 = time.process_time()
        calls = [parse_raw(raw) for raw in raws]
        t1 = time.process_time()
        tags = [tag(call) for call in calls]
        t2 = time.process_time()
        documents = [call_document(c, t) for c, t in zip(calls, tags, strict=True)]
        t3 = time.process_time()
        if settings.store_dir is not None:
            for call in calls:
                encode_call_file(call, compressed=True)
        t4 = time.process_time()
        for document in documents:
            orjson.dumps(document)
        t5 = time.process_time()
        n = len(calls)
        steps = {
            "read_ms": (t1 - t0) * 1000 / n,
            "tags_ms": (t2 - t1) * 1000 / n,
            "document_ms": (t3 - t2) * 1000 / n,
            "store_ms": (t4 - t3) * 1000 / n,
            "serialise_ms": (t5 - t4) * 1000 / n,
        }
        steps["total_ms"] = sum(steps.values())
        steps["calls_per_s"] = 1000 / steps["total_ms"]
        passes[name] = steps
        if name == "cold":
            del calls, tags, documents
            settle_heap()  # as a loader's worker does after its first batch
    return passes


def es_cost(
    es: Elasticsearch, es_url: str, alias: str, corpus: Path, sample: int, chunk: int
) -> dict[str, Any]:
    """Elasticsearch alone: prebuilt bulk bodies into a scratch index of the same template
    (alias ``<alias>-scratch``, deleted afterwards), twice, each time into a fresh index: a
    cold pass, then the warm one that is the reference. A node just started spends twice the
    CPU per call on its first thousand calls (its JIT compiling the indexing path: 22.1 against
    8.7–9.2 ms on 2026-12-03), which no load of many calls pays; the cold pass is reported too.
    """
    alias = f"{alias}-scratch"
    bodies: list[bytes] = []
    utterances = 0
    summary = LoadSummary()
    batch: list[bytes] = []
    for item in first_calls(corpus, sample, summary):
        document = call_document(item.call)
        utterances += len(item.call.utterances)
        batch.append(orjson.dumps({"index": {"_id": item.call.call_id}}))
        batch.append(orjson.dumps(document))
        if len(batch) == 2 * chunk:
            bodies.append(b"\n".join(batch) + b"\n")
            batch = []
    if batch:
        bodies.append(b"\n".join(batch) + b"\n")
    calls = sample - summary.failed
    bulk = es.options(request_timeout=Settings().bulk_request_timeout_s)  # as the loader's
    passes: dict[str, dict[str, Any]] = {}
    for name in ("cold", "warm"):
        drop_alias(es, alias)
        index = ensure_calls_index(es, alias)
        try:
            with Stopwatch({"es": es_pid(es_url)}) as watch:
                for body in bodies:
                    # A prebuilt NDJSON body goes out as is (the client passes bytes through).
                    answer = bulk.bulk(index=index, operations=body)  # type: ignore[arg-type]
                    if answer["errors"]:
                        raise RuntimeError(f"bulk errors: {str(answer.body)[:500]}")
                es.indices.refresh(index=index)
        finally:
            drop_alias(es, alias)
        assert watch.cpu_s is not None
        passes[name] = {
            "calls": calls,
            "bulk_megabytes": sum(map(len, bodies)) / 1e6,
            "wall_s": watch.wall_s,
            "calls_per_s": calls / watch.wall_s,
            "utterances_per_s": utterances / watch.wall_s,
            "es_cpu_ms_per_call": watch.cpu_s["es"] * 1000 / calls,
        }
    return {**passes["warm"], "cold": passes["cold"]}


def index_facts(es: Elasticsearch, alias: str) -> dict[str, Any]:
    es.indices.flush(index=alias)
    stats = es.indices.stats(index=alias, metric="docs,store,segments")["_all"]["primaries"]
    settings = es.indices.get_settings(index=alias, include_defaults=True)
    index_settings = next(iter(settings.values()))
    merged = {**index_settings.get("defaults", {}), **index_settings["settings"]}
    return {
        "store_bytes": stats["store"]["size_in_bytes"],
        "lucene_docs": stats["docs"]["count"],
        "segments": stats["segments"]["count"],
        "refresh_interval": merged["index"].get("refresh_interval", "1s"),
        "translog_durability": merged["index"].get("translog", {}).get("durability", "request"),
    }


def load(
    es: Elasticsearch, es_url: str, settings: Settings, corpus: Path, count: int
) -> dict[str, Any]:
    """``load_calls`` over the first ``count`` calls into a fresh alias that has the benchmark's
    trackers (so the loader tags calls, as it does for a team that uses trackers)."""
    drop_alias(es, settings.calls_alias)
    if settings.store_dir is not None:
        shutil.rmtree(settings.store_dir / settings.calls_alias, ignore_errors=True)
    ensure_calls_index(es, settings.calls_alias)
    for spec in BENCH_TRACKERS:
        create_tracker(es, settings, TrackerCreate(**spec))
    load_before = load_average()
    with Stopwatch({"es": es_pid(es_url)}) as watch:
        summary = load_transcripts(
            es,
            settings,
            first_transcripts(corpus, count),
            tag=current_tagger(es, settings),
        )
    assert watch.cpu_s is not None
    if summary.failures:
        raise RuntimeError(f"{summary.failed} calls failed, first: {summary.failures[0]}")
    utterances = es.search(
        index=settings.calls_alias,
        size=0,
        aggs={"utterances": {"sum": {"field": "utterance_count"}}},
    )["aggregations"]["utterances"]["value"]
    facts = index_facts(es, settings.calls_alias)
    calls = summary.loaded
    return {
        "calls": calls,
        "utterances": int(utterances),
        "wall_s": watch.wall_s,
        "calls_per_s": calls / watch.wall_s,
        "utterances_per_s": utterances / watch.wall_s,
        "workers": worker_count(settings),
        # The loader's own process and its worker processes (they end with the load).
        "loader_cpu_ms_per_call": (watch.cpu_s["bench"] + watch.cpu_s["children"]) * 1000 / calls,
        "loader_main_cpu_ms_per_call": watch.cpu_s["bench"] * 1000 / calls,
        "es_cpu_ms_per_call": watch.cpu_s["es"] * 1000 / calls,
        "bulk_chunk_size": settings.bulk_chunk_size,
        "trackers": len(BENCH_TRACKERS),
        "store": str(settings.store_dir) if settings.store_dir else "off",
        "index_bytes_per_call": facts["store_bytes"] / calls,
        "index_megabytes": facts["store_bytes"] / 1e6,
        **facts,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def run(
    *,
    corpus: Path,
    count: int,
    es_url: str,
    alias: str,
    sample: int,
    phases: list[str],
    store_dir: Path | None,
) -> dict[str, Any]:
    settings = Settings(es_url=es_url, calls_alias=alias, store_dir=store_dir)
    es = connect(settings)
    results: dict[str, Any] = {"count": count, "alias": alias, "es_url": es_url}
    sample = min(sample, count)
    if "python" in phases:
        results["python"] = python_cost(es, settings, corpus, sample)
    if "es" in phases:
        results["es"] = es_cost(es, es_url, alias, corpus, sample, settings.bulk_chunk_size)
    if "load" in phases:
        results["load"] = load(es, es_url, settings, corpus, count)
    es.close()
    return results


def dumps(results: dict[str, Any]) -> str:
    return json.dumps(results, ensure_ascii=False, indent=2)
