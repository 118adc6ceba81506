"""Tracker and vocabulary changes as background jobs: a write is stored at once and answered
with a job; a worker thread of the API makes the calls' tags follow it.

Jobs are documents in ``<alias>-jobs`` (mappings/jobs.json), so they outlive the process that
took them: the worker picks up queued jobs and those left running by a stopped API, oldest
first, one at a time — so the changes of one tracker are applied in the order they were
written, and a job for an older version stops (``superseded``) as soon as a newer write is
stored, leaving the tags to the newer write's job (``indexer.trackers.changes.retag``).

One runner per job, however many there are (several API processes, a CLI run beside them): a
runner (``owner``) claims a job with a write conditional on the ``_seq_no`` of the job
document it read, so of two runners that read it together one claim is refused (409) and that
runner skips the job. The claim is a lease (``lease_owner``, ``lease_until``), renewed by every
progress save and by a heartbeat every third of ``job_lease_s`` — between two progress saves
there can be much more than one batch: worker processes starting, the count and scan before
each tracker's first batch, a vocabulary job's trackers with nothing to change — and each of
those writes is conditional on the ``_seq_no`` of the runner's own last write: a runner whose
lease ran out and was taken over stops at its next save, quietly (its writes so far are tags
the taker sets again anyway). A graceful stop hands the job back (no lease: the next start
resumes it at once); a crashed runner's job waits until its lease runs out (``job_lease_s``,
60 s by default), then the next runner to look takes it over and starts it over.

Runners serialise as one worker did: a tracker's jobs run one at a time, and a vocabulary job
(which re-tags every tracker, from a vocabulary a tracker job may have read before it changed)
runs alone. A runner that finds, after its claim, a job it must not overlap held by another
runner hands its claim back and looks again later: of two overlapping claims the later one
always sees the earlier (claims are written with refresh), so they never both run.

A vocabulary write changes what every tracker matches, so its job re-tags every call for every
tracker. Vocabulary writes are numbered in the order they were stored (``claim_vocabulary_write``:
the number is claimed *after* the term is stored, so the job with the highest number starts
after every stored change and reads them all); a job stops (``superseded``) as soon as a job
for a higher number is queued, which leaves the tags to the last write's job.

States: ``queued`` → ``running`` → ``done`` | ``superseded`` | ``failed`` (with ``errors``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import elastic_transport
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError
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
    lease_owner: str | None = Field(
        default=None,
        description="The runner holding the job (an API worker 'api-…' or a CLI run 'cli-…'); "
        "null when none does.",
    )
    lease_until: datetime | None = Field(
        default=None,
        description="Until when the runner holds it unless it renews: past this (a runner "
        "that crashed), another runner takes the job over and starts it again.",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def new_owner(role: str) -> str:
    """A runner's id (``role``: ``api``, ``cli``…), different for every runner started."""
    return f"{role}-{uuid.uuid4().hex[:12]}"


LEASE_FIELDS = ("lease_owner", "lease_until")


def _document(job: Job) -> dict[str, Any]:
    document = {"kind": "retag", **job.model_dump(mode="json")}
    # No lease is no lease fields, as in a job written before leases existed.
    for field in LEASE_FIELDS:
        if document[field] is None:
            del document[field]
    return document


def ensure_jobs_index(es: Elasticsearch, settings: Settings) -> None:
    """The jobs index, with every field of mappings/jobs.json (an index created by an older
    version gets the lease fields before the first document that has them)."""
    ensure_index(es, jobs_index(settings.calls_alias), JOBS_MAPPING, add_new_fields=True)


def enqueue(
    es: Elasticsearch,
    settings: Settings,
    tracker_id: str | None,
    action: JobAction,
    version: int,
    *,
    owner: str | None = None,
) -> Job:
    """Store a queued job; with ``owner``, already claimed by that runner (which runs it next
    itself: the CLI), so no other runner starts it meanwhile."""
    now = _now()
    job = Job(
        id=uuid.uuid4().hex,
        tracker_id=tracker_id,
        action=action,
        version=version,
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
        lease_owner=owner,
        lease_until=None if owner is None else now + timedelta(seconds=settings.job_lease_s),
    )
    with backend_errors(settings.es_url):
        ensure_jobs_index(es, settings)
        es.index(
            index=jobs_index(settings.calls_alias),
            id=job.id,
            document=_document(job),
            op_type="create",
            refresh=True,
        )
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


def enqueue_vocabulary_change(
    es: Elasticsearch, settings: Settings, *, owner: str | None = None
) -> Job:
    """After a vocabulary term is stored (created, replaced or deleted): the job that makes
    every call's tags follow the vocabulary (claimed by ``owner`` when given, as ``enqueue``)."""
    version = claim_vocabulary_write(es, settings)
    return enqueue(es, settings, None, JobAction.VOCABULARY, version, owner=owner)


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


def _held_elsewhere(owner: str | None, now: datetime) -> dict[str, Any]:
    """Jobs whose lease another runner than ``owner`` holds at ``now`` (by this runner's
    clock: runners' clocks must agree to well within ``job_lease_s``)."""
    live: dict[str, Any] = {"range": {"lease_until": {"gt": now.isoformat()}}}
    if owner is None:
        return live
    return {"bool": {"filter": [live], "must_not": [{"term": {"lease_owner": owner}}]}}


def _unfinished() -> list[dict[str, Any]]:
    return [{"term": {"kind": "retag"}}, {"terms": {"state": list(UNFINISHED)}}]


def next_job(es: Elasticsearch, settings: Settings, owner: str | None = None) -> Job | None:
    """The oldest unfinished job ``owner`` may run: none that another runner holds, none of a
    tracker whose job another runner holds, no vocabulary job while another runner holds any
    job, and nothing while another runner holds a vocabulary job. Jobs written before leases
    existed, released ones and those whose lease ran out are free."""
    index = jobs_index(settings.calls_alias)
    held_elsewhere = _held_elsewhere(owner, _now())
    try:
        held = es.search(
            index=index,
            query={"bool": {"filter": [*_unfinished(), held_elsewhere]}},
            source_includes=["tracker_id", "action"],
            size=100,
        )["hits"]["hits"]
        busy = [_key(hit["_source"]) for hit in held]
        if None in busy:
            return None  # a vocabulary job runs alone
        skipped: list[dict[str, Any]] = [held_elsewhere]
        if busy:
            skipped += [
                {"terms": {"tracker_id": busy}},
                {"term": {"action": JobAction.VOCABULARY.value}},
            ]
        found = es.search(
            index=index,
            query={"bool": {"filter": _unfinished(), "must_not": skipped}},
            sort=[{"created_at": "asc"}, {"id": "asc"}],
            size=1,
        )
    except NotFoundError:
        return None
    hits = found["hits"]["hits"]
    return _job(hits[0]["_source"]) if hits else None


def _key(source: dict[str, Any]) -> str | None:
    """What a job serialises on: its tracker, or None for a vocabulary job (every tracker)."""
    tracker_id = source.get("tracker_id")
    return None if source.get("action") == JobAction.VOCABULARY.value else str(tracker_id)


class StopRequestedError(Exception):
    """The worker is stopping: the job stays ``running``, handed back, and resumes on the next
    start."""


class LeaseLostError(Exception):
    """Another runner took the job over (this runner's lease ran out): this one stops."""


class _Lease:
    """A job this runner holds: every write of its document renews the lease and is
    conditional on the sequence number of this runner's previous write, so a runner whose
    lease was taken over learns it at its next write (409) and never overwrites the taker."""

    def __init__(
        self,
        es: Elasticsearch,
        settings: Settings,
        owner: str,
        job: Job,
        seq_no: int,
        primary_term: int,
    ) -> None:
        self.es = es
        self.settings = settings
        self.owner = owner
        self.job = job
        self._seq_no = seq_no
        self._primary_term = primary_term
        self._lock = threading.Lock()
        self._lost = False
        self._released = False
        self._written_at = 0.0
        self._beating = threading.Event()
        self._heart: threading.Thread | None = None

    def _write(self, job: Job) -> None:
        try:
            written = self.es.index(
                index=jobs_index(self.settings.calls_alias),
                id=job.id,
                document=_document(job),
                if_seq_no=self._seq_no,
                if_primary_term=self._primary_term,
                refresh=True,
            )
        except ConflictError as exc:
            self._lost = True
            raise LeaseLostError(f"job {job.id} was taken over by another runner") from exc
        self._seq_no, self._primary_term = int(written["_seq_no"]), int(written["_primary_term"])
        self._written_at = time.monotonic()
        self.job = job

    def save(self, job: Job) -> Job:
        """Write ``job`` (its progress, its state) and renew the lease."""
        with self._lock:
            self.check()
            self._renew(job)
            return self.job

    def _renew(self, job: Job) -> None:
        until = _now() + timedelta(seconds=self.settings.job_lease_s)
        self._write(job.model_copy(update={"lease_owner": self.owner, "lease_until": until}))

    def renew(self) -> None:
        """Renew the lease on the job as last saved (the heartbeat), unless it was handed back."""
        with self._lock:
            self.check()
            if not self._released:
                self._renew(self.job)

    def release(self, job: Job | None = None) -> Job:
        """Write ``job`` (by default as last saved) without a lease: the next runner to look
        may take it at once."""
        with self._lock:
            self.check()
            self._released = True
            self._write(
                (job or self.job).model_copy(update={"lease_owner": None, "lease_until": None})
            )
            return self.job

    def check(self) -> None:
        if self._lost:
            raise LeaseLostError(f"job {self.job.id} was taken over by another runner")

    def start_heartbeat(self) -> None:
        self._heart = threading.Thread(target=self._beat, name="job-lease", daemon=True)
        self._heart.start()

    def stop_heartbeat(self) -> None:
        self._beating.set()
        if self._heart is not None:
            self._heart.join()

    def _beat(self) -> None:
        every_s = self.settings.job_lease_s / 3
        while not self._beating.wait(max(self._written_at + every_s - time.monotonic(), 0.01)):
            if time.monotonic() - self._written_at < every_s:
                continue  # a progress save renewed it meanwhile
            try:
                self.renew()
            except LeaseLostError:
                return  # the run stops at its next progress save or check
            except (ApiError, elastic_transport.TransportError, OSError) as exc:
                # Tried again a beat later (counted as a beat, so not at once); the lease runs
                # out if Elasticsearch stays away longer.
                log.warning("job %s: renewing the lease: %s", self.job.id, describe(exc))
                self._written_at = time.monotonic()


def _claim(es: Elasticsearch, settings: Settings, job_id: str, owner: str) -> _Lease | None:
    """Claim an unfinished job for ``owner``, unless another runner holds it; None when it is
    held, finished, or another runner's claim came first."""
    try:
        found = es.get(index=jobs_index(settings.calls_alias), id=job_id)
    except NotFoundError:
        return None
    source = found["_source"]
    if source.get("kind") != "retag":
        return None
    job = _job(source)
    held_elsewhere = (
        job.lease_owner not in (None, owner)
        and job.lease_until is not None
        and job.lease_until > _now()
    )
    if job.state not in UNFINISHED or held_elsewhere:
        return None
    lease = _Lease(es, settings, owner, job, int(found["_seq_no"]), int(found["_primary_term"]))
    try:
        lease.save(job)
    except LeaseLostError:
        return None
    return lease


def _overlapping_held(es: Elasticsearch, settings: Settings, job: Job, owner: str) -> bool:
    """Whether another runner holds a job that must not run beside ``job``: one of the same
    tracker, or a vocabulary job, or (``job`` being a vocabulary job) any."""
    overlaps: list[dict[str, Any]] = [_held_elsewhere(owner, _now())]
    if job.action is not JobAction.VOCABULARY:
        overlaps.append(
            {
                "bool": {
                    "should": [
                        {"term": {"action": JobAction.VOCABULARY.value}},
                        {"term": {"tracker_id": job.tracker_id}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    found = es.count(
        index=jobs_index(settings.calls_alias),
        query={
            "bool": {
                "filter": [*_unfinished(), *overlaps],
                "must_not": [{"ids": {"values": [job.id]}}],
            }
        },
    )
    return int(found["count"]) > 0


def run_job(
    es: Elasticsearch,
    settings: Settings,
    job: Job,
    stop: threading.Event | None = None,
    *,
    owner: str | None = None,
) -> Job | None:
    """Claim ``job`` for ``owner`` and run it to its end (or until ``stop`` is set, between
    batches); save its progress after every batch. A rerun starts the tagging over: it is
    idempotent. The job as it ended; None when this runner does not run it (another runner
    holds it or a job it must not overlap, or took it over mid-run: this one stops quietly)."""
    owner = owner or new_owner("run")
    with backend_errors(settings.es_url):
        ensure_jobs_index(es, settings)
        lease = _claim(es, settings, job.id, owner)
        if lease is None:
            return None
        try:
            if _overlapping_held(es, settings, lease.job, owner):
                lease.release()
                return None
            job = lease.save(
                lease.job.model_copy(
                    update={
                        "state": JobState.RUNNING,
                        "calls_examined": 0,
                        "calls_retagged": 0,
                        "updated_at": _now(),
                    }
                )
            )
        except LeaseLostError:
            return None

    vocabulary = job.tracker_id is None

    def check_current() -> None:
        """A runner taken over stops; a vocabulary job stops once a later vocabulary write has
        a job of its own."""
        lease.check()
        if vocabulary and _newer_vocabulary_job(es, settings, job.version):
            raise SupersededError(f"the vocabulary changed again after write {job.version}")

    def report(progress: Progress) -> None:
        lease.save(
            lease.job.model_copy(
                update={
                    "calls_examined": progress.calls_examined,
                    "calls_retagged": progress.calls_retagged,
                    "updated_at": _now(),
                }
            )
        )
        if stop is not None and stop.is_set():
            raise StopRequestedError
        check_current()

    state = JobState.DONE
    errors: list[str] = []
    lease.start_heartbeat()
    try:
        try:
            if job.tracker_id is None:
                retag_all(
                    es, settings, progress=Progress(report=report), check_current=check_current
                )
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
        lease.stop_heartbeat()
        return lease.release(
            lease.job.model_copy(update={"state": state, "errors": errors, "updated_at": _now()})
        )
    except LeaseLostError:
        log.info("job %s: taken over by another runner; %s stops", job.id, owner)
        return None
    except BaseException:
        # Stopping, or Elasticsearch away mid-save: the job is handed back so that the next
        # start (or another runner) resumes it at once; if even that fails, its lease runs out.
        lease.stop_heartbeat()
        with contextlib.suppress(
            LeaseLostError, ApiError, elastic_transport.TransportError, OSError
        ):
            lease.release()
        raise
    finally:
        lease.stop_heartbeat()


FINISHED = (JobState.DONE, JobState.SUPERSEDED, JobState.FAILED)


def finish_job(
    es: Elasticsearch, settings: Settings, job: Job, owner: str, poll_s: float = POLL_S
) -> Job:
    """See ``job`` to its end: run it (``owner`` holding it), or, while another runner holds
    it or a job it must not overlap, wait — for that runner to finish it, or for its lease to
    run out and then run it here. The job as it ended, counted by the one runner that ran it."""
    while True:
        done = run_job(es, settings, job, owner=owner)
        if done is not None:
            return done
        current = get_job(es, settings, job.id)
        if current.state in FINISHED:
            return current
        time.sleep(poll_s)


class JobWorker:
    """The API's worker thread: runs unfinished jobs one at a time, oldest first, as one
    runner (``owner``) beside any other API process's."""

    def __init__(self, es: Elasticsearch, settings: Settings) -> None:
        self.es = es
        self.settings = settings
        self.owner = new_owner("api")
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
        """Stop after the current batch; an unfinished job is handed back and resumes on the
        next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        log.info("tracker jobs: this worker runs them as %s", self.owner)
        while not self._stop.is_set():
            try:
                job = next_job(self.es, self.settings, self.owner)
                if job is not None:
                    log.info("job %s: %s %s", job.id, job.action, job.tracker_id or "trackers")
                    done = run_job(self.es, self.settings, job, self._stop, owner=self.owner)
                    if done is not None:
                        log.info("job %s: %s", done.id, done.state)
                        continue
                    log.info("job %s: held by another runner, left to it", job.id)
            except StopRequestedError:
                return
            except (ApiError, elastic_transport.TransportError, EarshotError, OSError) as exc:
                # Elasticsearch away for a while: the job stays unfinished and is retried.
                log.warning("tracker jobs: %s", describe(exc))
            # Spread out, so two runners that handed their claims back to each other do not
            # meet again at the same moment.
            self._wake.wait(POLL_S * random.uniform(0.5, 1.5))
            self._wake.clear()
