"""``/v1/vocabulary``: the company's terms and their spellings (``indexer.vocabulary``).

Reading needs any API key, writing an admin key. What a tracker matches depends on the
vocabulary, so a write is stored at once and answers 202 with a job (``Location:
/v1/jobs/{id}``); the API's worker then makes every call's ``trackers`` tags follow it
(``indexer.trackers.jobs``). Searches use the new term from the moment the write answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from elasticsearch import Elasticsearch
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from api.deps import AdminAccess, EsDep, SettingsDep
from api.routes.jobs import ACCEPTED, JobAccepted, accepted
from api.schemas import Problem
from indexer.settings import Settings
from indexer.trackers.jobs import enqueue_vocabulary_change
from indexer.vocabulary import (
    TermCreate,
    TermSpec,
    VocabularyList,
    VocabularyTerm,
    create_term,
    delete_term,
    get_term,
    list_terms,
    replace_term,
    vocabulary_version,
)

router = APIRouter(prefix="/v1/vocabulary", tags=["vocabulary"])

TermId = Annotated[str, Path(max_length=64, description="The term's id.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No vocabulary term with that id."}
}


class VocabularyChange(JobAccepted):
    """A vocabulary write as taken: the term now stored (none after a delete), and the job
    that re-tags the calls for every tracker (poll it at ``Location``)."""

    term: VocabularyTerm | None


def _accepted(
    request: Request, es: Elasticsearch, settings: Settings, term: VocabularyTerm | None
) -> JSONResponse:
    """The term is stored: number the write and queue its job (``indexer.trackers.jobs``)."""
    job = enqueue_vocabulary_change(es, settings)
    return accepted(request, VocabularyChange(term=term, job=job))


@router.post(
    "",
    status_code=202,
    response_model=VocabularyChange,
    dependencies=[AdminAccess],
    responses={
        **ACCEPTED,
        409: {"model": Problem, "description": "The id is taken, or too many terms."},
    },
    summary="Add a term; searches match each of its spellings at once, a job re-tags the calls",
)
def create(spec: TermCreate, request: Request, es: EsDep, settings: SettingsDep) -> JSONResponse:
    return _accepted(request, es, settings, create_term(es, settings, spec))


@router.get("", response_model=VocabularyList, summary="Every term, by id, and the version")
def list_all(es: EsDep, settings: SettingsDep) -> VocabularyList:
    terms = list_terms(es, settings)
    return VocabularyList(version=vocabulary_version(terms), terms=terms)


@router.get("/{term_id}", response_model=VocabularyTerm, responses=NOT_FOUND, summary="One term")
def get_one(term_id: TermId, es: EsDep, settings: SettingsDep) -> VocabularyTerm:
    return get_term(es, settings, term_id)


@router.put(
    "/{term_id}",
    status_code=202,
    response_model=VocabularyChange,
    dependencies=[AdminAccess],
    responses={**ACCEPTED, **NOT_FOUND},
    summary="Change a term (canonical form, spellings, language); a job re-tags the calls",
)
def replace(
    term_id: TermId, spec: TermSpec, request: Request, es: EsDep, settings: SettingsDep
) -> JSONResponse:
    return _accepted(request, es, settings, replace_term(es, settings, term_id, spec))


@router.delete(
    "/{term_id}",
    status_code=202,
    response_model=VocabularyChange,
    dependencies=[AdminAccess],
    responses={**ACCEPTED, **NOT_FOUND},
    summary="Delete a term; a job re-tags the calls",
)
def delete(term_id: TermId, request: Request, es: EsDep, settings: SettingsDep) -> JSONResponse:
    delete_term(es, settings, term_id)
    return _accepted(request, es, settings, None)
