"""``/v1/vocabulary``: the company's terms and their spellings (``indexer.vocabulary``).

Reading needs any API key, writing an admin key. A write answers once the calls' ``trackers``
tags follow the change (what a tracker matches depends on the vocabulary).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from api.deps import AdminAccess, EsDep, SettingsDep
from api.schemas import Problem
from indexer.trackers.changes import retag_all
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


@router.post(
    "",
    status_code=201,
    response_model=VocabularyTerm,
    dependencies=[AdminAccess],
    responses={409: {"model": Problem, "description": "The id is taken, or too many terms."}},
    summary="Add a term; searches and trackers match each of its spellings from now on",
)
def create(spec: TermCreate, es: EsDep, settings: SettingsDep) -> VocabularyTerm:
    term = create_term(es, settings, spec)
    retag_all(es, settings)
    return term


@router.get("", response_model=VocabularyList, summary="Every term, by id, and the version")
def list_all(es: EsDep, settings: SettingsDep) -> VocabularyList:
    terms = list_terms(es, settings)
    return VocabularyList(version=vocabulary_version(terms), terms=terms)


@router.get("/{term_id}", response_model=VocabularyTerm, responses=NOT_FOUND, summary="One term")
def get_one(term_id: TermId, es: EsDep, settings: SettingsDep) -> VocabularyTerm:
    return get_term(es, settings, term_id)


@router.put(
    "/{term_id}",
    response_model=VocabularyTerm,
    dependencies=[AdminAccess],
    responses=NOT_FOUND,
    summary="Change a term (canonical form, spellings, language); calls are re-tagged",
)
def replace(term_id: TermId, spec: TermSpec, es: EsDep, settings: SettingsDep) -> VocabularyTerm:
    term = replace_term(es, settings, term_id, spec)
    retag_all(es, settings)
    return term


@router.delete(
    "/{term_id}",
    status_code=204,
    response_class=Response,
    dependencies=[AdminAccess],
    responses=NOT_FOUND,
    summary="Delete a term; calls are re-tagged",
)
def delete(term_id: TermId, es: EsDep, settings: SettingsDep) -> Response:
    delete_term(es, settings, term_id)
    retag_all(es, settings)
    return Response(status_code=204)
