"""``GET /v1/jobs/{job_id}``: a tracker or vocabulary change's job — its state and progress;
and how a write that leaves work to a job answers (202, ``Location``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import EsDep, SettingsDep
from api.schemas import Problem
from indexer.trackers.jobs import Job, get_job

router = APIRouter(prefix="/v1/jobs", tags=["trackers"])

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Stored; the calls are re-tagged by the job the `Location` header names.",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/jobs/{id}"}},
    }
}


class JobAccepted(BaseModel):
    """A write as taken, with the job that re-tags the calls (poll it at ``Location``)."""

    job: Job = Field(description="Also at /v1/jobs/{id}: state and progress.")


def accepted(request: Request, change: JobAccepted) -> JSONResponse:
    """202 with ``change``, its job at ``Location``; the API's worker is told at once rather
    than at its next poll."""
    worker = getattr(request.app.state, "job_worker", None)
    if worker is not None:
        worker.wake()
    return JSONResponse(
        status_code=202,
        content=change.model_dump(mode="json"),
        headers={"Location": f"/v1/jobs/{change.job.id}"},
    )


@router.get(
    "/{job_id}",
    response_model=Job,
    responses={404: {"model": Problem, "description": "No job with that id."}},
    summary="A tracker or vocabulary change's job: state (queued, running, done, superseded, "
    "failed), calls examined and re-tagged, errors",
)
def get_one(job_id: Annotated[str, Path(max_length=64)], es: EsDep, settings: SettingsDep) -> Job:
    return get_job(es, settings, job_id)
