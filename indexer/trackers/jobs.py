"""Tracker and vocabulary changes as background jobs: a write is stored at once and answered
with a job; a worker thread of the API makes the calls' tags follow it.

Jobs are documents in ``<alias>-jobs`` (mappings/jobs.json), so they outlive the process that
took them: the worker picks up queued jobs and those left running by a stopped API, oldest
first, one at a time — so the changes of one tracker are applied in the order they were
written, and a job for an older version stops (``superseded``) as soon as a newer write is
stored, leaving the tags to the newer write's job (``indexer.trackers.changes.retag``).

A vocabulary write changes what every tracker matches, so its job re-tags every call for every
tracker. Vocabulary writes are numbered in the order they were stored (``claim_vocabulary_write``:
the number is claimed *after* the term is stored, so the job with the highest number starts
after every stored change and reads them all); a job stops (``superseded``) as soon as a job
for a higher number is queued, which leaves the tags to the last write's job.

States: ``queued`` → ``running`` → ``done`` | ``superseded`` | ``failed`` (with ``errors``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import elastic_transport
from elasticsearch import ApiError, Elasticsearch, NotFoundError
from pydantic import BaseModel, Field

from indexer.elastic import backend_errors, describe
from indexer.errors import EarshotError, JobNotFoundError
from indexer.index.definitions import ensure_index
from indexer.settings import Settings
from indexer.trackers.changes import (
    JOBS_MAPPING,
    Progress,
    SupersededError,
    jobs_index,
    retag,
    retag_all,
)

log = logging.getLogger("earshot.trackers.jobs")

# How often the worker looks for work it was not told about (jobs of another API process,
# or left by a stopped one).
POLL_S = 1.0
UNFINISHED = ("queued", "running")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    SUPERSEDED = "superseded"
    FAILED = "failed"


class JobAction(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    DELETE = "delete"
    VOCABULARY = "vocabulary"  # a vocabulary term added, changed or deleted: every tracker


class Job(BaseModel):
    """One tracker or vocabulary change being applied to the calls' tags."""

    id: str
    tracker_id: str | None = Field(
        description="The tracker changed; null for a vocabulary change (every tracker)."
    )
    action: JobAction
    version: int = Field(
        description="The tracker version whose tags this job sets; for a vocabulary change, "
        "the number of the vocabulary write (writes are numbered in the order stored)."
    )
    state: JobState
    calls_examined: int = Field(
        default=0,
        description="Candidate calls decided so far (a vocabulary change: added up over the "
        "trackers, a call once per tracker it is a candidate for).",
    )
    calls_retagged: int = Field(
        default=0, description="Calls whose tags changed so far (the same way)."
    )
    errors: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _save(es: Elasticsearch, settings: Settings, job: Job) -> None:
    es.index(
        index=jobs_index(settings.calls_alias),
        id=job.id,
        document={"kind": "retag", **job.model_dump(mode="json")},
        refresh=True,
    )


def enqueue(
    es: Elasticsearch, settings: Settings, tracker_id: str | None, action: JobAction, version: int
) -> Job:
    now = _now()
    job = Job(
        id=uuid.uuid4().hex,
        tracker_id=tracker_id,
        action=action,
        version=version,
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
    )
    with backend_errors(settings.es_url):
        ensure_index(es, jobs_index(settings.calls_alias), JOBS_MAPPING)
        _save(es, settings, job)
    return job


VOCABULARY_REGISTRY_ID = "vocabulary-registry"


def claim_vocabulary_write(es: Elasticsearch, settings: Settings) -> int:
    """The number of a vocabulary write just stored: every write of the registry document
    counts its ``_version`` up by one on the primary shard, so numbers only grow and no two
    writes share one, however many API processes write at once."""
    with backend_errors(settings.es_url):
        ensure_index(es, jobs_index(settings.calls_alias), JOBS_MAPPING)
        written = es.index(
            index=jobs_index(settings.calls_alias),
            id=VOCABULARY_REGISTRY_ID,
            document={"kind": "registry", "updated_at": _now().isoformat()},
        )
    return int(written["_version"])


def enqueue_vocabulary_change(es: Elasticsearch, settings: Settings) -> Job:
    """After a vocabulary term is stored (created, replaced or deleted): the job that makes
    every call's tags follow the vocabulary."""
    version = claim_vocabulary_write(es, settings)
    return enqueue(es, settings, None, JobAction.VOCABULARY, version)


def _newer_vocabulary_job(es: Elasticsearch, settings: Settings, version: int) -> bool:
    found = es.count(
        index=jobs_index(settings.calls_alias),
        query={
            "bool": {
                "filter": [
                    {"term": {"kind": "retag"}},
                    {"term": {"action": JobAction.VOCABULARY.value}},
                    {"range": {"version": {"gt": version}}},
                ]
            }
        },
    )
    return int(found["count"]) > 0


def get_job(es: Elasticsearch, settings: Settings, job_id: str) -> Job:
    with backend_errors(settings.es_url):
        try:
            found = es.get(index=jobs_index(settings.calls_alias), id=job_id)
        except NotFoundError as exc:
            raise JobNotFoundError(job_id) from exc
    if found["_source"].get("kind") != "retag":
        raise JobNotFoundError(job_id)
    return _job(found["_source"])


def _job(source: dict[str, Any]) -> Job:
    return Job.model_validate({key: value for key, value in source.items() if key != "kind"})


def next_job(es: Elasticsearch, settings: Settings) -> Job | None:
    """The oldest unfinished job, if any."""
    try:
        found = es.search(
            index=jobs_index(settings.calls_alias),
            query={
                "bool": {
                    "filter": [
                        {"term": {"kind": "retag"}},
                        {"terms": {"state": list(UNFINISHED)}},
                    ]
                }
            },
            sort=[{"created_at": "asc"}, {"id": "asc"}],
            size=1,
        )
    except NotFoundError:
        return None
    hits = found["hits"]["hits"]
    return _job(hits[0]["_source"]) if hits else None


class StopRequestedError(Exception):
    """The worker is stopping: the job stays ``running`` and resumes on the next start."""


def run_job(
    es: Elasticsearch, settings: Settings, job: Job, stop: threading.Event | None = None
) -> Job:
    """Run one job to its end (or until ``stop`` is set, between batches); save its progress
    after every batch. A rerun starts the tagging over: it is idempotent."""
    job = job.model_copy(
        update={"state": JobState.RUNNING, "calls_examined": 0, "calls_retagged": 0}
    )
    _save(es, settings, job)

    vocabulary = job.tracker_id is None

    def check_current() -> None:
        """A vocabulary job stops once a later vocabulary write has a job of its own."""
        if vocabulary and _newer_vocabulary_job(es, settings, job.version):
            raise SupersededError(f"the vocabulary changed again after write {job.version}")

    def report(progress: Progress) -> None:
        nonlocal job
        job = job.model_copy(
            update={
                "calls_examined": progress.calls_examined,
                "calls_retagged": progress.calls_retagged,
                "updated_at": _now(),
            }
        )
        _save(es, settings, job)
        if stop is not None and stop.is_set():
            raise StopRequestedError
        check_current()

    state = JobState.DONE
    errors: list[str] = []
    try:
        if job.tracker_id is None:
            retag_all(es, settings, progress=Progress(report=report), check_current=check_current)
        else:
            retag(
                es,
                settings,
                job.tracker_id,
                version=job.version,
                deleted=job.action is JobAction.DELETE,
                progress=Progress(report=report),
            )
    except SupersededError:
        state = JobState.SUPERSEDED
    except EarshotError as exc:
        state, errors = JobState.FAILED, [str(exc)]
    job = job.model_copy(update={"state": state, "errors": errors, "updated_at": _now()})
    _save(es, settings, job)
    return job


class JobWorker:
    """The API's worker thread: runs unfinished jobs one at a time, oldest first."""

    def __init__(self, es: Elasticsearch, settings: Settings) -> None:
        self.es = es
        self.settings = settings
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tracker-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the current batch; an unfinished job resumes on the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = next_job(self.es, self.settings)
                if job is not None:
                    log.info("job %s: %s %s", job.id, job.action, job.tracker_id or "trackers")
                    done = run_job(self.es, self.settings, job, self._stop)
                    log.info("job %s: %s", done.id, done.state)
                    continue
            except StopRequestedError:
                return
            except (ApiError, elastic_transport.TransportError, EarshotError, OSError) as exc:
                # Elasticsearch away for a while: the job stays unfinished and is retried.
                log.warning("tracker jobs: %s", describe(exc))
            self._wake.wait(POLL_S)
            self._wake.clear()
