"""``/v1/trackers``: named sets of phrases watched across every call (``indexer.trackers``).

Reading needs any API key, writing an admin key. A write is stored at once and answers 202
with a job (``Location: /v1/jobs/{id}``); the API's worker then makes the calls' ``trackers``
tags follow it (``indexer.trackers.jobs``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from api.deps import AdminAccess, EsDep, SettingsDep
from api.routes.jobs import ACCEPTED, JobAccepted, accepted
from api.schemas import Problem
from indexer.search import parse_date_param
from indexer.trackers.changes import record_create, record_delete, record_replace
from indexer.trackers.jobs import JobAction, enqueue
from indexer.trackers.model import Tracker, TrackerCreate, TrackerList, TrackerSpec
from indexer.trackers.stats import GroupBy, TrackerStats, tracker_stats
from indexer.trackers.storage import get_tracker, list_trackers

router = APIRouter(prefix="/v1/trackers", tags=["trackers"])

TrackerId = Annotated[str, Path(max_length=64, description="The tracker's id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No tracker with that id."}
}

MENTION = """A *mention* is an utterance of the tracker's role (either role when it has none) in
which at least one of its phrases is said; an utterance saying a phrase twice, or two phrases,
is one mention."""


class TrackerChange(JobAccepted):
    """A tracker write as taken: the tracker now stored (none after a delete), and the job
    that re-tags the calls (poll it at ``Location``)."""

    tracker: Tracker | None


@router.post(
    "",
    status_code=202,
    response_model=TrackerChange,
    dependencies=[AdminAccess],
    responses={
        **ACCEPTED,
        409: {"model": Problem, "description": "The id is taken, or too many trackers."},
    },
    summary="Create a tracker; a job tags every call already indexed that mentions it",
)
def create(spec: TrackerCreate, request: Request, es: EsDep, settings: SettingsDep) -> JSONResponse:
    tracker = record_create(es, settings, spec)
    job = enqueue(es, settings, tracker.id, JobAction.CREATE, tracker.version)
    return accepted(request, TrackerChange(tracker=tracker, job=job))


@router.get("", response_model=TrackerList, summary="Every tracker, by id")
def list_all(es: EsDep, settings: SettingsDep) -> TrackerList:
    return TrackerList(trackers=list_trackers(es, settings))


@router.get("/{tracker_id}", response_model=Tracker, responses=NOT_FOUND, summary="One tracker")
def get_one(tracker_id: TrackerId, es: EsDep, settings: SettingsDep) -> Tracker:
    return get_tracker(es, settings, tracker_id)


@router.put(
    "/{tracker_id}",
    status_code=202,
    response_model=TrackerChange,
    dependencies=[AdminAccess],
    responses={**ACCEPTED, **NOT_FOUND},
    summary="Change a tracker (name, phrases, role, mode); a job re-tags the calls",
)
def replace(
    tracker_id: TrackerId, spec: TrackerSpec, request: Request, es: EsDep, settings: SettingsDep
) -> JSONResponse:
    tracker = record_replace(es, settings, tracker_id, spec)
    job = enqueue(es, settings, tracker_id, JobAction.REPLACE, tracker.version)
    return accepted(request, TrackerChange(tracker=tracker, job=job))


@router.delete(
    "/{tracker_id}",
    status_code=202,
    response_model=TrackerChange,
    dependencies=[AdminAccess],
    responses={**ACCEPTED, **NOT_FOUND},
    summary="Delete a tracker; a job removes its tag from every call",
)
def delete(
    tracker_id: TrackerId, request: Request, es: EsDep, settings: SettingsDep
) -> JSONResponse:
    version = record_delete(es, settings, tracker_id)
    job = enqueue(es, settings, tracker_id, JobAction.DELETE, version)
    return accepted(request, TrackerChange(tracker=None, job=job))


@router.get(
    "/{tracker_id}/stats",
    response_model=TrackerStats,
    responses=NOT_FOUND,
    summary="Calls, calls mentioning the tracker, and mentions, per manager, team or period",
    description=f"""Counted at query time over every call indexed now (a tracker created a
minute ago counts old calls). {MENTION} Each group also gives its number of calls, so
`rate` = calls_mentioning / calls. Groups are in key order; only groups with calls appear.""",
)
def stats(
    tracker_id: TrackerId,
    es: EsDep,
    settings: SettingsDep,
    group_by: Annotated[
        GroupBy,
        Query(
            description="`manager` (key: manager id, label: name), `team` (null key: no "
            "team), or calendar `day`, `week` (ISO, from Monday) or `month` of the call's "
            "start in `tz` (key: the period's first day)."
        ),
    ] = GroupBy.MANAGER,
    date_from: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Calls started at or after: a date (from its start in `tz`) or an ISO "
            "date-time (without an offset: in `tz`).",
            examples=["2026-03-01"],
        ),
    ] = None,
    date_to: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Calls started at or before: a date (to its end in `tz`) or an ISO "
            "date-time.",
            examples=["2026-03-31"],
        ),
    ] = None,
    tz: Annotated[
        str,
        Query(
            max_length=64,
            description="IANA time zone of day/week/month buckets and of bare dates.",
            examples=["Europe/Moscow"],
        ),
    ] = "UTC",
) -> TrackerStats:
    return tracker_stats(
        es,
        settings,
        tracker_id,
        group_by,
        date_from=parse_date_param("date_from", date_from),
        date_to=parse_date_param("date_to", date_to),
        tz=tz,
    )
