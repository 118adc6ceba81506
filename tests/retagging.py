"""What the tests of re-tagging jobs (tracker and vocabulary changes) share: a corpus where
every tracker tags a different subset of calls, the tags worked out by brute force — never by
``indexer.search`` — the tags stored, and an API stopped in the middle of a job."""

from __future__ import annotations

import time
from collections.abc import Mapping, Set
from typing import Any

import httpx
from builders import make_call, wait_for_job
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from api.main import create_app
from indexer.settings import Settings
from indexer.transcript import Call

WORDS = ["price", "deal", "contract", "discount", "hello"]


def corpus(count: int) -> list[Call]:
    """Calls each saying a different mix of WORDS (call n says WORDS[i] when bit i of n is
    set), so every tracker tags a different subset of calls."""
    calls = []
    for number in range(count):
        said = [word for bit, word in enumerate(WORDS) if number >> bit & 1] or ["nothing"]
        calls.append(make_call(f"c{number:04d}", [("client", " ".join(said))]))
    return calls


def expected_tags(
    trackers: list[dict[str, Any]],
    calls: list[Call],
    spellings: Mapping[str, Set[str]] | None = None,
) -> dict[str, list[str]]:
    """Brute force: a call carries a tracker when one of its words is one of its phrases, or
    (``spellings``: a one-word phrase → every word the vocabulary makes it match) one of the
    words a phrase stands for."""
    spellings = spellings or {}
    tags = {}
    for call in calls:
        said = {word.text.lower() for u in call.utterances for word in u.words}
        tags[call.call_id] = sorted(
            t["id"]
            for t in trackers
            if any(said & ({p} | spellings.get(p, set())) for p in t["phrases"])
        )
    return tags


def stored_tags(es: Elasticsearch, settings: Settings) -> dict[str, list[str]]:
    es.indices.refresh(index=settings.calls_alias)
    found = es.search(
        index=settings.calls_alias, size=10_000, source_includes=["trackers"], sort=["call_id"]
    )
    return {hit["_id"]: hit["_source"]["trackers"] for hit in found["hits"]["hits"]}


def wait_for_all(api: TestClient, answers: list[httpx.Response]) -> list[dict[str, Any]]:
    return [wait_for_job(api, answer.headers["location"]) for answer in answers]


def small_batches(settings: Settings, **changes: Any) -> Settings:
    """Re-tagging in batches of 4 calls: a job spans many batches, so writes land mid-job."""
    return settings.model_copy(update={"bulk_chunk_size": 4, **changes})


def all_jobs_finished(es: Elasticsearch, settings: Settings) -> bool:
    index = f"{settings.calls_alias}-jobs"
    es.indices.refresh(index=index)
    unfinished = es.count(
        index=index,
        query={
            "bool": {
                "filter": [
                    {"term": {"kind": "retag"}},
                    {"terms": {"state": ["queued", "running"]}},
                ]
            }
        },
    )
    return int(unfinished["count"]) == 0


def write_then_stop_mid_job(
    es: Elasticsearch, settings: Settings, method: str, path: str, body: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """Send a write to an API whose worker re-tags in batches of 2 calls, and stop that API
    as soon as the write's job has reported progress; the job's ``Location`` and the job as
    the stopped API left it in Elasticsearch."""
    with TestClient(create_app(small_batches(settings, bulk_chunk_size=2))) as api:
        answer = api.request(method, path, json=body)
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        while api.get(location).json()["calls_examined"] == 0:
            time.sleep(0.01)
    job_id = answer.json()["job"]["id"]
    return location, es.get(index=f"{settings.calls_alias}-jobs", id=job_id)["_source"]
