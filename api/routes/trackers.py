"""``/v1/trackers``: named sets of phrases watched across every call (``indexer.trackers``).

Reading needs any API key, writing an admin key. A write answers once the calls' ``trackers``
tags follow the change.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import AdminAccess, EsDep, SettingsDep
from api.schemas import Problem
from indexer.search import parse_date_param
from indexer.trackers.changes import create_tracker, delete_tracker, replace_tracker
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


@router.post(
    "",
    status_code=201,
    response_model=Tracker,
    dependencies=[AdminAccess],
    responses={409: {"model": Problem, "description": "The id is taken, or too many trackers."}},
    summary="Create a tracker; every call already indexed that mentions it is tagged at once",
)
def create(spec: TrackerCreate, es: EsDep, settings: SettingsDep) -> Tracker:
    return create_tracker(es, settings, spec)


@router.get("", response_model=TrackerList, summary="Every tracker, by id")
def list_all(es: EsDep, settings: SettingsDep) -> TrackerList:
    return TrackerList(trackers=list_trackers(es, settings))


@router.get("/{tracker_id}", response_model=Tracker, responses=NOT_FOUND, summary="One tracker")
def get_one(tracker_id: TrackerId, es: EsDep, settings: SettingsDep) -> Tracker:
    return get_tracker(es, settings, tracker_id)


@router.put(
    "/{tracker_id}",
    response_model=Tracker,
    dependencies=[AdminAccess],
    responses=NOT_FOUND,
    summary="Change a tracker (name, phrases, role, mode); calls are re-tagged",
)
def replace(tracker_id: TrackerId, spec: TrackerSpec, es: EsDep, settings: SettingsDep) -> Tracker:
    return replace_tracker(es, settings, tracker_id, spec)


@router.delete(
    "/{tracker_id}",
    status_code=204,
    response_class=Response,
    dependencies=[AdminAccess],
    responses=NOT_FOUND,
    summary="Delete a tracker and its tag from every call",
)
def delete(tracker_id: TrackerId, es: EsDep, settings: SettingsDep) -> Response:
    delete_tracker(es, settings, tracker_id)
    return Response(status_code=204)


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
