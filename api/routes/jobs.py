"""``GET /v1/jobs/{job_id}``: a tracker change's job — its state and progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import EsDep, SettingsDep
from api.schemas import Problem
from indexer.trackers.jobs import Job, get_job

router = APIRouter(prefix="/v1/jobs", tags=["trackers"])


@router.get(
    "/{job_id}",
    response_model=Job,
    responses={404: {"model": Problem, "description": "No job with that id."}},
    summary="A tracker change's job: state (queued, running, done, superseded, failed), "
    "calls examined and re-tagged, errors",
)
def get_one(job_id: Annotated[str, Path(max_length=64)], es: EsDep, settings: SettingsDep) -> Job:
    return get_job(es, settings, job_id)
