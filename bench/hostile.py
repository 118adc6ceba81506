"""Worst-case queries against a real API process: several at once (a common word repeated, the
largest page), while ``/healthz`` is polled; the API's peak memory and the probe's latency.

Used by ``scripts/bench-hostile`` (figures for docs/benchmarks.md) and by the test that holds
the API to a generous bound (tests/server/test_api_hardening.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.measure import ROOT, children, latency_summary

# The probe's query: one common word repeated to 59 characters.
WORST_QUERY = " ".join(["the"] * 15)


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM); 0 for one that is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve(
    env: Mapping[str, str], port: int, log: Path, code: Path = ROOT
) -> subprocess.Popen[bytes]:
    """A real uvicorn serving the API of the checkout ``code`` with ``env`` on
    127.0.0.1:port; waits until it answers."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=code,  # first on sys.path: that checkout's api and indexer are served
        env={**os.environ, **env, "PYTHONPATH": str(code)},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API did not start: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the API did not answer /healthz within 60 s")


def worst_case(
    base: str, pid: int, *, query: str = WORST_QUERY, size: int = 100, concurrency: int = 4
) -> dict[str, Any]:
    """``concurrency`` searches for ``query`` at once, ``/healthz`` polled every 20 ms until
    they are all answered; statuses, body sizes, search and probe latencies (summed up, and
    every probe's), the API's memory before and its peak."""
    url = f"{base}/v1/search?" + urllib.parse.urlencode({"q": query, "size": size})
    rss_before = rss_mb(pid)
    results: list[tuple[int, int, float]] = []
    lock = threading.Lock()

    def one() -> None:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=300) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        with lock:
            results.append((status, len(body), time.monotonic() - started))

    searches = [threading.Thread(target=one) for _ in range(concurrency)]
    for thread in searches:
        thread.start()
    probes: list[float] = []
    peak_sampled = rss_before
    while any(thread.is_alive() for thread in searches):
        started = time.monotonic()
        with urllib.request.urlopen(f"{base}/healthz", timeout=60) as answer:
            answer.read()
        probes.append(time.monotonic() - started)
        peak_sampled = max(peak_sampled, rss_mb(pid))
        time.sleep(0.02)
    for thread in searches:
        thread.join()
    # The API's worker processes (searches, re-tagging), each at its own high-water mark:
    # their sum bounds what they held at once.
    workers = children(pid)
    return {
        "statuses": sorted(status for status, _, _ in results),
        "body_mb": round(max(size for _, size, _ in results) / 1e6, 3),
        "search": latency_summary([seconds for _, _, seconds in results]),
        "healthz": latency_summary(probes),
        "healthz_probes": len(probes),
        "healthz_ms": [round(seconds * 1000, 2) for seconds in probes],
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(max(peak_sampled, peak_rss_mb(pid)), 1),
        "workers": len(workers),
        "workers_rss_peak_mb": round(sum(peak_rss_mb(worker) for worker in workers), 1),
    }


def common_word_calls(count: int) -> list[Any]:
    """Calls whose every utterance says "the" several times among other words: the probe's
    worst case for a repeated common word."""
    from indexer.transcript import Call

    words = ["the", "deal", "price", "the", "contract", "is", "the", "best", "for", "you"]
    calls = []
    for number in range(count):
        clock = 0.0
        utterances = []
        for turn in range(20):
            spoken = []
            for index in range(40):
                spoken.append(
                    {
                        "text": words[(number + turn + index) % len(words)],
                        "start": round(clock, 3),
                        "end": round(clock + 0.3, 3),
                    }
                )
                clock += 0.4
            utterances.append(
                {
                    "speaker": f"SPEAKER_0{turn % 2}",
                    "role": "client" if turn % 2 else "manager",
                    "start": spoken[0]["start"],
                    "end": spoken[-1]["end"],
                    "text": " ".join(str(word["text"]) for word in spoken),
                    "words": spoken,
                }
            )
            clock += 0.5
        calls.append(
            Call.model_validate(
                {
                    "call_id": f"hostile-{number:05d}",
                    "started_at": "2026-03-02T10:00:00+00:00",
                    "duration_s": round(clock, 3),
                    "language": "en",
                    "direction": "outbound",
                    "manager": {"id": "m-1", "name": "Manager"},
                    "client": {"id": "c-1", "name": "Client", "phone": "+70000000000"},
                    "audio": {"uri": f"{number}.wav", "channels": 2, "sample_rate": 8000},
                    "asr": {
                        "engine": "bench",
                        "model": "generated",
                        "aligned": False,
                        "diarization": "manual",
                    },
                    "utterances": utterances,
                }
            )
        )
    return calls


def profile_one(settings: Any, *, query: str = WORST_QUERY, size: int = 100) -> dict[str, Any]:
    """One worst-case search taken apart, by this checkout's code: the bytes Elasticsearch
    answers, decoding them (one C call that holds the GIL throughout: the longest hold of a
    search, in whichever process decodes) and rebuilding the page's hits (CPU ms; best and
    worst of 5)."""
    import json
    from dataclasses import replace

    import orjson

    from api.routes.search import search_request
    from indexer.elastic import connect
    from indexer.search import Mode, RoleFilter
    from indexer.search.runner import _call_result, build_query

    es = connect(settings)
    try:
        parsed = search_request(settings, q=query, role=RoleFilter.ANY, mode=Mode.EXACT)
        body, named = build_query(replace(parsed, size=size), settings.max_hits_per_call)
    finally:
        es.close()
    sent = urllib.request.Request(
        f"{settings.es_url}/{settings.calls_alias}/_search",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(sent, timeout=120) as answer:
        data = answer.read()
    decode_ms, rebuild_ms = [], []
    for _ in range(5):
        started = time.perf_counter()
        documents = orjson.loads(data)["hits"]["hits"]
        decode_ms.append((time.perf_counter() - started) * 1000)
        cpu = time.process_time()
        for document in documents:
            _call_result(document, named, settings.max_hits_per_call)
        rebuild_ms.append((time.process_time() - cpu) * 1000)
    return {
        "es_answer_mb": round(len(data) / 1e6, 2),
        "decode_ms_min_max": [round(min(decode_ms), 1), round(max(decode_ms), 1)],
        "rebuild_cpu_ms_min_max": [round(min(rebuild_ms), 1), round(max(rebuild_ms), 1)],
    }
