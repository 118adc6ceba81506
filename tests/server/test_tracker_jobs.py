"""Tracker changes as background jobs, on the real API and the real Elasticsearch: however
writes race (concurrent or interleaved creates, replaces and deletes of the same tracker), the
tags on every call end equal to what the final set of trackers dictates; the tracker cap holds
under concurrent creates; and a job cut off by an API shutdown resumes and completes on the
next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from builders import load_through_loader, make_call, tracker_write, wait_for_job
from elasticsearch import BadRequestError, Elasticsearch
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
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.changes import Progress, record_create, retag
from indexer.trackers.jobs import Job, JobAction, enqueue, next_job, run_job
from indexer.trackers.model import TrackerCreate
from indexer.transcript import Call

Load = Callable[..., None]


IndexCorpus = Callable[[int], list[Call]]


@pytest.fixture
def indexed_corpus(index_calls: Load) -> IndexCorpus:
    """The first `count` calls of the retagging corpus, loaded through the real loader."""

    def load(count: int) -> list[Call]:
        calls = corpus(count)
        index_calls(*calls)
        return calls

    return load


def test_a_write_answers_202_with_a_job_that_reports_progress(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    calls = indexed_corpus(64)
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
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    indexed_corpus(128)
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
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    calls = indexed_corpus(96)
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
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    calls = indexed_corpus(96)

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
            status: int = api.post("/v1/trackers", json=body).status_code
            return status

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
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    calls = indexed_corpus(256)
    tracker = {"id": "p", "name": "P", "phrases": ["price"]}
    location, cut = write_then_stop_mid_job(es, settings, "POST", "/v1/trackers", tracker)
    # The API is stopped: its worker left the job mid-way, handed back (no lease), so the
    # next start resumes it at once rather than after the lease.
    assert cut["state"] == "running"
    assert 0 < cut["calls_examined"] < 128
    assert "lease_owner" not in cut
    assert "lease_until" not in cut
    tagged = sum(1 for tags in stored_tags(es, settings).values() if tags)
    assert 0 < tagged < 128

    with TestClient(create_app(small_batches(settings))) as api:
        done = wait_for_job(api, location)
    assert done["state"] == "done"
    assert stored_tags(es, settings) == expected_tags([tracker], calls)


@pytest.mark.parametrize("processes", [0, 2], ids=["in-thread", "worker-processes"])
def test_calls_replaced_mid_retag_get_the_tags_of_what_they_say_now(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus, processes: int
) -> None:
    """The re-tagging decides from Elasticsearch's view of each call and writes only that
    version of it: a call a loader replaces after the query saw it is asked about again, so
    its tag follows its new words, not the old ones — in the job's thread and in the worker
    processes alike."""
    calls = indexed_corpus(64)
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


# --- One runner per job (leases) ---------------------------------------------------------------


def _queued_create(es: Elasticsearch, settings: Settings, tracker: dict[str, Any]) -> Job:
    """A tracker stored and its job queued, as an API write leaves them; no runner started."""
    stored = record_create(es, settings, TrackerCreate.model_validate(tracker))
    return enqueue(es, settings, stored.id, JobAction.CREATE, stored.version)


def _job_source(es: Elasticsearch, settings: Settings, job_id: str) -> dict[str, Any]:
    source: dict[str, Any] = es.get(index=f"{settings.calls_alias}-jobs", id=job_id)["_source"]
    return source


def test_two_runners_on_one_job_one_runs_it_and_the_other_skips(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    calls = indexed_corpus(64)
    tracker = {"id": "p", "name": "Price", "phrases": ["price"]}
    job = _queued_create(es, settings, tracker)
    batches = small_batches(settings)
    together = threading.Barrier(2)

    def runner(owner: str) -> Job | None:
        together.wait()
        return run_job(es, batches, job, owner=owner)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(runner, ["runner-a", "runner-b"]))
    ran = [result for result in results if result is not None]
    assert len(ran) == 1, results  # the other one skipped it
    # Whole counts: 32 calls say "price", every one examined and tagged by the one runner.
    assert (ran[0].state, ran[0].calls_examined, ran[0].calls_retagged) == ("done", 32, 32)
    stored = _job_source(es, settings, job.id)
    assert (stored["state"], stored["calls_examined"], stored["calls_retagged"]) == ("done", 32, 32)
    # Handed back when done.
    assert "lease_owner" not in stored
    assert "lease_until" not in stored
    assert stored_tags(es, settings) == expected_tags([tracker], calls)
    # A finished job is nobody's to claim again.
    assert run_job(es, batches, job, owner="runner-c") is None


def test_two_api_processes_run_each_job_once(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    """Two APIs on one cluster, each with its worker, take writes in turn: every job is run by
    one of them, so each job's counts are whole (calls examined = calls that gain the tag)."""
    calls = indexed_corpus(64)
    trackers = [{"id": word, "name": word, "phrases": [word]} for word in WORDS[:4]]
    batches = small_batches(settings)
    with TestClient(create_app(batches)) as first, TestClient(create_app(batches)) as second:
        answers = [
            (first if number % 2 else second).post("/v1/trackers", json=tracker)
            for number, tracker in enumerate(trackers)
        ]
        jobs = wait_for_all(first, answers)
    expected = expected_tags(trackers, calls)
    for tracker, job in zip(trackers, jobs, strict=True):
        tagged = sum(1 for tags in expected.values() if tracker["id"] in tags)
        assert (job["state"], job["calls_examined"], job["calls_retagged"]) == (
            "done",
            tagged,
            tagged,
        ), job
    assert stored_tags(es, settings) == expected


def test_a_job_another_runner_holds_is_not_run_nor_anything_that_must_not_overlap_it(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    """While another runner holds a job of tracker p, a runner gets neither p's later job nor
    a vocabulary job (which re-tags every tracker), but does get another tracker's job; and a
    vocabulary job another runner holds leaves it nothing at all."""
    indexed_corpus(8)
    held = enqueue(es, settings, "p", JobAction.CREATE, 1, owner="elsewhere")
    enqueue(es, settings, "p", JobAction.REPLACE, 2)
    vocabulary = enqueue(es, settings, None, JobAction.VOCABULARY, 1)
    other = enqueue(es, settings, "q", JobAction.CREATE, 3)

    found = next_job(es, settings, "here")
    assert found is not None
    assert found.id == other.id
    # Asked to run the vocabulary job anyway, the runner hands its claim back untouched.
    assert run_job(es, settings, vocabulary, owner="here") is None
    returned = _job_source(es, settings, vocabulary.id)
    assert returned["state"] == "queued"
    assert "lease_owner" not in returned
    # The holder itself is not kept from its own job.
    mine = next_job(es, settings, "elsewhere")
    assert mine is not None
    assert mine.id == held.id

    run_job(es, settings, other, owner="here")  # q's job finished (q was never stored)
    free = enqueue(es, settings, "r", JobAction.CREATE, 4)
    found = next_job(es, settings, "here")
    assert found is not None
    assert found.id == free.id
    enqueue(es, settings, None, JobAction.VOCABULARY, 2, owner="elsewhere")
    assert next_job(es, settings, "here") is None


# A runner in a process of its own: a tracker job run to its end by ``run_job``, as the API's
# worker runs it; prints how it ended (None: it found the job was not its own any more).
RUNNER = """
import sys
from indexer.elastic import connect
from indexer.settings import Settings
from indexer.trackers.jobs import get_job, run_job
settings = Settings()
es = connect(settings)
ended = run_job(es, settings, get_job(es, settings, sys.argv[1]), owner="frozen")
print("ended:", None if ended is None else ended.state.value, flush=True)
"""


def test_a_runner_whose_lease_ran_out_is_taken_over_and_the_job_finishes_once(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    """A runner frozen mid-job (SIGSTOP: its heartbeat stops too, as in a crashed or hung
    process) keeps its job until its lease runs out, not a moment longer; then an API takes it
    over and finishes it; and the frozen runner, let go again, finds at its next save that the
    job is no longer its own and stops quietly, leaving the tags right."""
    calls = indexed_corpus(256)
    tracker = {"id": "p", "name": "Price", "phrases": ["price"]}
    job = _queued_create(es, settings, tracker)
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
        "EARSHOT_BULK_CHUNK_SIZE": "1",
        "EARSHOT_RETAG_PROCESSES": "0",
        "EARSHOT_JOB_LEASE_S": "3",
    }
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, job.id],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _job_source(es, settings, job.id)["calls_examined"] == 0:
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline, "the runner never got going"
            time.sleep(0.01)
        runner.send_signal(signal.SIGSTOP)
        time.sleep(0.5)  # a write already on its way lands
        left = _job_source(es, settings, job.id)
        assert (left["state"], left["lease_owner"]) == ("running", "frozen")
        assert 0 < left["calls_examined"] < 128
        until = datetime.fromisoformat(left["lease_until"])

        seen: list[tuple[datetime, str | None]] = []
        with TestClient(create_app(small_batches(settings))) as api:
            while True:
                current = api.get(f"/v1/jobs/{job.id}").json()
                seen.append((datetime.now(UTC), current["lease_owner"]))
                if current["state"] in ("done", "superseded", "failed"):
                    break
                assert datetime.now(UTC) < until + timedelta(seconds=60), "never taken over"
                time.sleep(0.05)
        runner.send_signal(signal.SIGCONT)
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGCONT)
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, err
    assert out.strip() == "ended: None", (out, err)
    # Nobody took the job before the frozen runner's lease ran out; an API did after.
    assert all(owner == "frozen" for at, owner in seen if at < until)
    assert any(owner not in ("frozen", None) for _, owner in seen)
    assert datetime.fromisoformat(current["updated_at"]) >= until
    # Finished once, by the API: what was left to tag, counted whole (less the one call the
    # frozen runner may have tagged after its last progress save: batches of one call).
    assert current["state"] == "done"
    assert current["lease_owner"] is None
    assert current["calls_examined"] == current["calls_retagged"]
    assert 0 <= 128 - left["calls_examined"] - current["calls_examined"] <= 1
    assert _job_source(es, settings, job.id)["state"] == "done"
    assert stored_tags(es, settings) == expected_tags([tracker], calls)


def test_a_jobs_index_of_an_older_install_gets_the_lease_fields_and_its_jobs_run(
    es: Elasticsearch, settings: Settings, indexed_corpus: IndexCorpus
) -> None:
    """An install from before leases: its jobs index has the old strict mapping and a job
    queued by the old code (no lease fields). The new API adds the fields to the live index,
    claims that job and runs it."""
    calls = indexed_corpus(32)
    tracker = {"id": "p", "name": "Price", "phrases": ["price"]}
    # Recording the tracker creates the jobs index.
    stored = record_create(es, settings, TrackerCreate.model_validate(tracker))
    index = f"{settings.calls_alias}-jobs"
    registry = es.get(index=index, id="tracker-registry")["_source"]
    es.indices.delete(index=index)
    definition = json.loads((PROJECT_ROOT / "mappings" / "jobs.json").read_text())
    old_fields = {
        name: field
        for name, field in definition["mappings"]["properties"].items()
        if name not in ("lease_owner", "lease_until")
    }
    es.indices.create(
        index=index,
        settings=definition["settings"],
        mappings={"dynamic": "strict", "properties": old_fields},
    )
    es.index(index=index, id="tracker-registry", document=registry, refresh=True)
    now = datetime.now(UTC).isoformat()
    old_job = {
        "kind": "retag",
        "id": "old-job",
        "tracker_id": "p",
        "action": "create",
        "version": stored.version,
        "state": "queued",
        "calls_examined": 0,
        "calls_retagged": 0,
        "errors": [],
        "created_at": now,
        "updated_at": now,
    }
    es.index(index=index, id="old-job", document=old_job, refresh=True)
    # The old mapping refuses a lease: what the new code must not meet unprepared.
    with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
        es.index(index=index, id="probe", document={**old_job, "lease_owner": "x"})

    with TestClient(create_app(small_batches(settings))) as api:
        done = wait_for_job(api, "/v1/jobs/old-job")
    assert (done["state"], done["calls_examined"], done["calls_retagged"]) == ("done", 16, 16)
    properties = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert properties["lease_owner"] == {"type": "keyword"}
    assert properties["lease_until"] == {"type": "date"}
    assert stored_tags(es, settings) == expected_tags([tracker], calls)
