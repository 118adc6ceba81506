"""Tracker changes as background jobs, on the real API and the real Elasticsearch: however
writes race (concurrent or interleaved creates, replaces and deletes of the same tracker), the
tags on every call end equal to what the final set of trackers dictates; the tracker cap holds
under concurrent creates; and a job cut off by an API shutdown resumes and completes on the
next start."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from builders import load_through_loader, make_call, tracker_write, wait_for_job
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from retagging import (
    WORDS,
    all_jobs_finished,
    corpus,
    expected_tags,
    small_batches,
    stored_tags,
    wait_for_all,
    write_then_stop_mid_job,
)

from api.main import create_app
from indexer.settings import Settings
from indexer.trackers.changes import Progress, record_create, retag
from indexer.trackers.model import TrackerCreate

Load = Callable[..., None]


def test_a_write_answers_202_with_a_job_that_reports_progress(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    calls = corpus(64)
    index_calls(*calls)
    tracker = {"id": "p", "name": "Price", "phrases": ["price"]}
    with TestClient(create_app(small_batches(settings))) as api:
        answer = api.post("/v1/trackers", json=tracker)
        assert answer.status_code == 202
        job = answer.json()["job"]
        assert job["state"] in ("queued", "running")
        assert answer.json()["tracker"]["version"] == job["version"]
        done = wait_for_job(api, answer.headers["location"])
        assert api.get("/v1/jobs/nope").status_code == 404
    assert done["state"] == "done"
    assert done["calls_retagged"] == 32 == done["calls_examined"]
    assert done["errors"] == []
    assert stored_tags(es, settings) == expected_tags([tracker], calls)


def test_a_tracker_deleted_while_its_creation_retags_leaves_no_tag(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    calls = corpus(128)
    index_calls(*calls)
    with TestClient(create_app(small_batches(settings))) as api:
        for _ in range(3):
            created = api.post("/v1/trackers", json={"id": "p", "name": "P", "phrases": ["price"]})
            assert created.status_code == 202, created.text
            # The creation's job is still running (64 calls in batches of 4) when this lands.
            deleted = api.delete("/v1/trackers/p")
            assert deleted.status_code == 202, deleted.text
            states = [job["state"] for job in wait_for_all(api, [created, deleted])]
            assert states[1] == "done"
            assert states[0] in ("done", "superseded")
            assert all(tags == [] for tags in stored_tags(es, settings).values())
        assert api.get("/v1/trackers").json() == {"trackers": []}


def test_interleaved_writes_end_with_the_tags_of_the_last_ones(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    calls = corpus(96)
    index_calls(*calls)
    with TestClient(create_app(small_batches(settings))) as api:
        script: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", "/v1/trackers", {"id": "a", "name": "A", "phrases": ["price"]}),
            ("POST", "/v1/trackers", {"id": "b", "name": "B", "phrases": ["deal"]}),
            ("PUT", "/v1/trackers/a", {"name": "A", "phrases": ["contract"]}),
            ("DELETE", "/v1/trackers/b", None),
            ("POST", "/v1/trackers", {"id": "b", "name": "B", "phrases": ["discount"]}),
            ("PUT", "/v1/trackers/a", {"name": "A", "phrases": ["deal", "hello"]}),
            ("DELETE", "/v1/trackers/a", None),
            ("POST", "/v1/trackers", {"id": "a", "name": "A", "phrases": ["price", "hello"]}),
            ("PUT", "/v1/trackers/b", {"name": "B", "phrases": ["contract"]}),
        ]
        answers = [api.request(method, path, json=body) for method, path, body in script]
        assert [answer.status_code for answer in answers] == [202] * len(script)
        jobs = wait_for_all(api, answers)
        final = api.get("/v1/trackers").json()["trackers"]
    assert {job["state"] for job in jobs} <= {"done", "superseded"}
    assert jobs[-1]["state"] == jobs[-2]["state"] == "done"
    assert [(t["id"], t["phrases"]) for t in final] == [
        ("a", ["price", "hello"]),
        ("b", ["contract"]),
    ]
    assert stored_tags(es, settings) == expected_tags(final, calls)


def test_concurrent_writes_of_the_same_trackers_end_consistent(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    calls = corpus(96)
    index_calls(*calls)

    def writer(number: int) -> list[int]:
        tracker_id = f"t{number % 2}"
        statuses = []
        for step in range(4):
            phrases = [WORDS[(number + step) % len(WORDS)]]
            body = {"id": tracker_id, "name": tracker_id, "phrases": phrases}
            statuses.append(api.post("/v1/trackers", json=body).status_code)
            del body["id"]
            statuses.append(api.put(f"/v1/trackers/{tracker_id}", json=body).status_code)
            if step % 2:
                statuses.append(api.delete(f"/v1/trackers/{tracker_id}").status_code)
        return statuses

    with TestClient(create_app(small_batches(settings))) as api:
        with ThreadPoolExecutor(6) as pool:
            statuses = [status for result in pool.map(writer, range(6)) for status in result]
        # Only the answers a race allows: taken (409), gone (404), or accepted.
        assert set(statuses) <= {202, 404, 409}
        assert 202 in statuses
        deadline = time.monotonic() + 120
        while not all_jobs_finished(es, settings):
            assert time.monotonic() < deadline, "jobs still unfinished"
            time.sleep(0.2)
        final = api.get("/v1/trackers").json()["trackers"]
    assert stored_tags(es, settings) == expected_tags(final, calls)


def test_the_tracker_cap_holds_under_concurrent_creates(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_trackers": 3})
    with TestClient(create_app(capped)) as api:

        def create(number: int) -> int:
            body = {"id": f"t{number}", "name": f"t{number}", "phrases": ["price"]}
            return api.post("/v1/trackers", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(create, range(16)))
        listed = api.get("/v1/trackers").json()["trackers"]
    assert sorted(statuses) == [202] * 3 + [409] * 13
    assert len(listed) == 3


def test_the_list_shows_trackers_past_a_lowered_cap(settings: Settings) -> None:
    with TestClient(create_app(settings)) as api:
        for number in range(4):
            tracker_write(
                api, "POST", "/v1/trackers", {"id": f"t{number}", "name": "t", "phrases": ["price"]}
            )
    lowered = settings.model_copy(update={"max_trackers": 2})
    with TestClient(create_app(lowered)) as api:
        listed = [t["id"] for t in api.get("/v1/trackers").json()["trackers"]]
        refused = api.post("/v1/trackers", json={"id": "t9", "name": "t", "phrases": ["a"]})
    assert listed == ["t0", "t1", "t2", "t3"]
    assert refused.status_code == 409


def test_a_job_cut_off_by_a_shutdown_resumes_on_the_next_start(
    es: Elasticsearch, settings: Settings, index_calls: Load
) -> None:
    calls = corpus(256)
    index_calls(*calls)
    tracker = {"id": "p", "name": "P", "phrases": ["price"]}
    location, cut = write_then_stop_mid_job(es, settings, "POST", "/v1/trackers", tracker)
    # The API is stopped: its worker left the job mid-way.
    assert cut["state"] == "running"
    assert 0 < cut["calls_examined"] < 128
    tagged = sum(1 for tags in stored_tags(es, settings).values() if tags)
    assert 0 < tagged < 128

    with TestClient(create_app(small_batches(settings))) as api:
        done = wait_for_job(api, location)
    assert done["state"] == "done"
    assert stored_tags(es, settings) == expected_tags([tracker], calls)


@pytest.mark.parametrize("processes", [0, 2], ids=["in-thread", "worker-processes"])
def test_calls_replaced_mid_retag_get_the_tags_of_what_they_say_now(
    es: Elasticsearch, settings: Settings, index_calls: Load, processes: int
) -> None:
    """The re-tagging decides from Elasticsearch's view of each call and writes only that
    version of it: a call a loader replaces after the query saw it is asked about again, so
    its tag follows its new words, not the old ones — in the job's thread and in the worker
    processes alike."""
    calls = corpus(64)
    index_calls(*calls)
    one_at_a_time = small_batches(settings, bulk_chunk_size=1, retag_processes=processes)
    record_create(es, one_at_a_time, TrackerCreate(id="p", name="P", phrases=["price"]))
    # After the first call is tagged, every call is replaced: those that said "price" say
    # "deal" now, and those that did not say "price" now.
    replaced = [
        make_call(call.call_id, [("client", "deal" if said else "price")])
        for call, said in ((call, int(call.call_id[1:]) & 1) for call in calls)
    ]
    swapped = False

    def replace_all(_: Progress) -> None:
        nonlocal swapped
        if not swapped:
            swapped = True
            load_through_loader(es, one_at_a_time, replaced)

    retag(es, one_at_a_time, "p", progress=Progress(report=replace_all))
    tracker = {"id": "p", "phrases": ["price"]}
    assert swapped
    assert stored_tags(es, settings) == expected_tags([tracker], replaced)
