"""Small-N runs of the benchmark scripts (scripts/gen-corpus, bench-ingest, bench-search), so they
never rot. They assert what the scripts promise — a deterministic corpus that fits the contract,
a load that indexes every call, searches whose totals equal what the generator planted, a load
test without errors — and nothing about time: the figures are for docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import parse_call

SCRIPTS = PROJECT_ROOT / "scripts"


def run(
    script: str, *args: str | Path, timeout: float = 120, store_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if store_dir is not None:
        env["EARSHOT_STORE_DIR"] = str(store_dir)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    done = run("gen-corpus", "--count", "40", "--seed", "3", "--out", out, "--workers", "2")
    assert done.returncode == 0, done.stderr
    return out


def test_the_corpus_fits_the_contract_and_its_manifest(corpus: Path) -> None:
    lines = (corpus / "calls-0000.jsonl").read_text(encoding="utf-8").splitlines()
    calls = [parse_call(json.loads(line), f"line {n}") for n, line in enumerate(lines, 1)]
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    truth = (corpus / "truth.jsonl").read_text(encoding="utf-8").splitlines()

    assert len(calls) == len(truth) == manifest["count"] == 40
    assert len({call.call_id for call in calls}) == 40
    assert {call.language for call in calls} == {"ru", "en"}
    for call in calls:
        assert 120 <= call.duration_s <= 600
        assert 40 <= len(call.utterances) <= 200
        assert all(u.end <= call.duration_s for u in call.utterances)
        assert all(w.start <= w.end for u in call.utterances for w in u.words)
    # Each manifest count is the number of truth records that say the phrase.
    said = [json.loads(line)["said"] for line in truth]
    for key, roles in manifest["calls_saying"].items():
        assert roles["any"] == sum(1 for record in said if key in record)


def test_the_corpus_is_deterministic_and_prefix_stable(corpus: Path, tmp_path: Path) -> None:
    smaller = run("gen-corpus", "--count", "15", "--seed", "3", "--out", tmp_path, "--workers", "1")
    assert smaller.returncode == 0, smaller.stderr

    whole = (corpus / "calls-0000.jsonl").read_text(encoding="utf-8").splitlines()
    prefix = (tmp_path / "calls-0000.jsonl").read_text(encoding="utf-8").splitlines()
    assert prefix == whole[:15]


def test_ingest_then_search_finds_exactly_the_planted_calls(
    corpus: Path, es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    alias = settings.calls_alias  # the fixture deletes its indices afterwards
    ingest = run(
        "bench-ingest",
        "--count", "40",
        "--corpus", corpus,
        "--es-url", settings.es_url,
        "--alias", alias,
        "--sample", "10",
        "--no-store",
        "--json", tmp_path / "ingest.json",
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stderr
    figures = json.loads((tmp_path / "ingest.json").read_text(encoding="utf-8"))
    assert figures["load"]["calls"] == 40
    assert figures["load"]["index_bytes_per_call"] > 0
    assert figures["es"]["calls"] == figures["es"]["cold"]["calls"] == 10  # warm, and cold
    assert set(figures["python"]) == {"cold", "warm"}
    assert es.count(index=alias)["count"] == 40

    search = run(
        "bench-search",
        "--alias", alias,
        "--corpus", corpus,
        "--es-url", settings.es_url,
        "--clients", "1,2",
        "--requests", "2",
        "--duration", "0.3",
        "--api-port", str(free_port()),
        "--json", tmp_path / "search.json",
    )  # fmt: skip
    # Exit status 1 means a total disagreed with the corpus or between the API and Elasticsearch.
    assert search.returncode == 0, search.stdout + search.stderr
    results = json.loads((tmp_path / "search.json").read_text(encoding="utf-8"))
    names = [query["name"] for query in results["queries"]]
    assert "tracker stats" in names
    assert "role-negative" in names
    checked = [q for q in results["queries"] if q["expected"] is not None]
    assert checked
    assert all(q["api_total"] == q["expected"] for q in checked)
    for level in results["levels"].values():
        assert all(row["api"]["errors"] == row["es"]["errors"] == 0 for row in level["rows"])

    load = run(
        "bench-search",
        "--alias", alias,
        "--corpus", corpus,
        "--es-url", settings.es_url,
        "--load",
        "--load-clients", "4",
        "--load-duration", "1",
        "--api-port", str(free_port()),
        "--json", tmp_path / "load.json",
    )  # fmt: skip
    assert load.returncode == 0, load.stdout + load.stderr
    figures = json.loads((tmp_path / "load.json").read_text(encoding="utf-8"))["load"]
    assert figures["errors"] == 0
    assert figures["requests"] > 0

    windows = run(
        "bench-search",
        "--alias", alias,
        "--corpus", corpus,
        "--es-url", settings.es_url,
        "--window-variants", "2",
        "--json", tmp_path / "windows.json",
    )  # fmt: skip
    assert windows.returncode == 0, windows.stdout + windows.stderr
    (row,) = json.loads((tmp_path / "windows.json").read_text(encoding="utf-8"))["window_variants"]
    variants = row["variants"]
    # The window by ten-second tokens and by one term per second finds the same calls.
    assert variants["as sent"]["total"] == variants["one term per second"]["total"] > 0
    assert variants["no window"]["total"] >= variants["as sent"]["total"]


def test_bench_reindex_times_every_stage_of_a_real_reindex(
    corpus: Path, es: Elasticsearch, settings: Settings, tmp_path: Path
) -> None:
    alias = settings.calls_alias  # the fixture deletes its indices afterwards
    store = tmp_path / "store"
    loaded = run(
        "bench-ingest",
        "--count", "20",
        "--corpus", corpus,
        "--es-url", settings.es_url,
        "--alias", alias,
        "--phases", "load",
        store_dir=store,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    first = es.indices.get_alias(name=alias)

    done = run(
        "bench-reindex",
        "--alias", alias,
        "--from", "store",
        "--es-url", settings.es_url,
        "--json", tmp_path / "reindex.json",
        store_dir=store,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads((tmp_path / "reindex.json").read_text(encoding="utf-8"))
    assert [stage["stage"] for stage in figures["stages"]] == [
        "prepare", "build", "refresh", "count check", "probes", "new fields", "alias move"
    ]  # fmt: skip
    assert figures["calls"] == 20
    assert figures["probes"] > 0
    # The alias moved to the version the script reports, which holds every call.
    (now,) = es.indices.get_alias(name=alias)
    assert now == figures["target"]
    assert now not in first
    assert es.count(index=alias)["count"] == 20


def test_bench_store_measures_both_stores(tmp_path: Path) -> None:
    out = tmp_path / "store.json"
    done = run("bench-store", "--count", "20", "--levels", "3", "--json", out)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["count"] == 20
    before, after = figures["indented JSON (before)"], figures["zstd JSON (after)"]
    assert before["bytes_per_call"] > after["bytes_per_call"] > 0
    assert figures["ratio_bytes"] >= 5, "the store's target: at least 5x smaller"
    assert "| zstd JSON (after) |" in done.stdout


@pytest.mark.asr
def test_bench_asr_ray_compares_worker_counts(shared_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray.json"
    done = run(
        "bench-asr-ray", shared_dir / "real-audio" / "short_ru.wav", "--copies", "2",
        "--repeat", "1", "--workers", "1,2", "--no-local", "--json", out, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    assert set(results) == {"Ray, 1 worker", "Ray, 2 workers"}
    assert all(speed > 0 for speed in results.values())
    assert "| Ray, 2 workers |" in done.stdout
