"""The company vocabulary: the words a sales team searches for most, in every spelling.

A term ("Битрикс24": also "Bitrix24", "битрикс 24") has a canonical form, the other spellings
the recognizer or people write, and a language (``any`` when it is said in calls of every
language). Terms live in the index ``<alias>-vocabulary`` (``mappings/vocabulary.json``) beside
the trackers; each carries a ``revision`` counted up on every change, and the vocabulary as a
whole a ``version`` (a digest of every term), which the recognizer's prompt and the call tags
follow.

It feeds both ends:

* search: a query or tracker term that is one of a term's spellings matches all of them, in
  every mode (``expand``: the query tree is rewritten before it is compiled to Elasticsearch or
  matched in Python, so both run the same tree and cannot disagree);
* recognition: the terms of a call's language are offered to the model (``hotwords``).

A change re-tags past calls, as a tracker change does: what a tracker matches depends on it.
The writer stores the term here, then queues the job that does it
(``indexer.trackers.jobs.enqueue_vocabulary_change``; this module sits below the trackers).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import product
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.elastic import backend_errors, index_path, json_request
from indexer.errors import QueryError, TrackerConflictError, VocabularyTermNotFoundError
from indexer.index.definitions import ensure_index
from indexer.search.query import And, Match, Near, Node, Not, Or, Pattern
from indexer.search.text import fold, terms_of_text
from indexer.settings import Settings

VOCABULARY_MAPPING = "vocabulary.json"
TERM_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_SPELLINGS = 20
MAX_TERMS = 1000
MAX_SPELLING_LENGTH = 100
# One query pattern expanded into at most this many spellings (terms multiply each other).
MAX_EXPANSIONS = 64
LANGUAGE_PATTERN = r"^(any|[a-z]{2})$"
# Whisper keeps the last 223 tokens of a prompt; Cyrillic takes about a token per 2 characters.
MAX_HOTWORDS_CHARS = 400


def vocabulary_index(alias: str) -> str:
    """Where the vocabulary of the calls behind ``alias`` is stored."""
    return f"{alias}-vocabulary"


# --- The term record ---------------------------------------------------------------------------


class TermSpec(BaseModel):
    """What a user writes to define a vocabulary term."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canonical: str = Field(
        min_length=1,
        max_length=MAX_SPELLING_LENGTH,
        examples=["Битрикс24"],
        description="How the term should be written (what the recognizer is offered).",
    )
    spellings: list[str] = Field(
        default_factory=list,
        max_length=MAX_SPELLINGS,
        description="Other ways it comes out in transcripts; each matches wherever any does.",
        examples=[["Bitrix24", "битрикс 24", "bitrix"]],
    )
    language: str = Field(
        default="any",
        pattern=LANGUAGE_PATTERN,
        description="The language of the calls it is said in (ISO 639-1, e.g. ru), or any.",
    )

    @field_validator("canonical")
    @classmethod
    def _canonical(cls, text: str) -> str:
        text = " ".join(text.split())
        if not terms_of_text(text):
            raise ValueError(f"{text!r} has no searchable words (letters or digits)")
        return text

    @field_validator("spellings")
    @classmethod
    def _spellings(cls, spellings: list[str]) -> list[str]:
        kept: list[str] = []
        for number, spelling in enumerate(spellings, start=1):
            text = " ".join(spelling.split())
            if len(text) > MAX_SPELLING_LENGTH:
                raise ValueError(
                    f"spelling {number} is longer than {MAX_SPELLING_LENGTH} characters"
                )
            if not terms_of_text(text):
                raise ValueError(
                    f"spelling {number} ({spelling!r}) has no searchable words (letters or digits)"
                )
            kept.append(text)
        return list(dict.fromkeys(kept))

    def forms(self) -> list[tuple[str, ...]]:
        """Every spelling (the canonical one first) as search terms, without repeats."""
        found = [tuple(terms_of_text(text)) for text in [self.canonical, *self.spellings]]
        return list(dict.fromkeys(found))


class TermCreate(TermSpec):
    id: str | None = Field(
        default=None,
        pattern=TERM_ID_PATTERN,
        description="Lower-case letters, digits, - and _. Left out: made from the canonical form.",
        examples=["bitrix24"],
    )


class VocabularyTerm(TermSpec):
    id: str
    revision: int = Field(ge=1, description="Counted up on every change of this term.")
    created_at: datetime
    updated_at: datetime


class VocabularyList(BaseModel):
    version: str = Field(description="Changes whenever any term changes (a digest of them all).")
    terms: list[VocabularyTerm]


# --- Query expansion ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """The terms in a form ready to rewrite queries: each spelling's term tuple → every
    spelling of its term."""

    terms: tuple[TermSpec, ...] = ()
    _groups: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, terms: Iterable[TermSpec]) -> Vocabulary:
        kept = tuple(terms)
        groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for term in kept:
            forms = term.forms()
            for form in forms:
                # Two terms sharing a spelling: it stands for the spellings of both.
                merged = groups.setdefault(form, [])
                merged.extend(f for f in forms if f not in merged)
        return cls(kept, {form: tuple(found) for form, found in groups.items()})

    @property
    def longest(self) -> int:
        return max((len(form) for form in self._groups), default=0)

    def version(self) -> str:
        return vocabulary_version(self.terms)

    def spellings(self, terms: tuple[str, ...], *, prefix: bool) -> list[tuple[str, ...]]:
        """Every term sequence ``terms`` stands for: each run of them that is a spelling of a
        vocabulary term may be any of its spellings (longest run first, left to right). The
        last term of a prefix pattern is a prefix, never a spelling."""
        if not self._groups:
            return [terms]
        fixed = len(terms) - 1 if prefix else len(terms)
        choices: list[tuple[tuple[str, ...], ...]] = []
        at = 0
        while at < len(terms):
            for size in range(min(self.longest, fixed - at), 0, -1):
                group = self._groups.get(terms[at : at + size])
                if group is not None:
                    choices.append(group)
                    at += size
                    break
            else:
                choices.append((terms[at : at + 1],))
                at += 1
        total = 1
        for choice in choices:
            total *= len(choice)
        if total > MAX_EXPANSIONS:
            raise QueryError(
                f"the vocabulary turns {' '.join(terms)!r} into {total} spellings (at most "
                f"{MAX_EXPANSIONS}): search for fewer vocabulary terms in one phrase"
            )
        return [tuple(t for part in combination for t in part) for combination in product(*choices)]

    def expand(self, node: Node) -> Node:
        """The tree with every pattern replaced by OR of all its vocabulary spellings."""
        if not self._groups:
            return node
        if isinstance(node, Match):
            return self._expand_match(node)
        if isinstance(node, Not):
            return Not(self.expand(node.item))
        items = tuple(self.expand(item) for item in node.items)
        return And(items) if isinstance(node, And) else Or(items)

    def _patterns(self, pattern: Pattern) -> list[Pattern]:
        return [
            Pattern(terms, pattern.prefix)
            for terms in self.spellings(pattern.terms, prefix=pattern.prefix)
        ]

    def _expand_match(self, match: Match) -> Node:
        what = match.what
        options: list[Pattern | Near]
        if isinstance(what, Near):
            options = [
                Near(left, right, what.gap)
                for left in self._patterns(what.left)
                for right in self._patterns(what.right)
            ]
            if len(options) > MAX_EXPANSIONS:
                raise QueryError(
                    f"the vocabulary turns {match.typed!r} into {len(options)} pairs of "
                    f"spellings (at most {MAX_EXPANSIONS})"
                )
        else:
            options = list(self._patterns(what))
        if len(options) == 1:
            return match
        return Or(tuple(replace(match, what=option) for option in options))

    def hotwords(self, language: str) -> list[str]:
        """The canonical forms offered to the recognizer for calls in ``language``."""
        return [t.canonical for t in self.terms if t.language in ("any", language)]

    def hotwords_by_language(self) -> dict[str, str]:
        """Language (``any`` for the rest) → the terms as one prompt, within what Whisper
        keeps of a prompt (it drops all but the last ~220 tokens: terms past
        ``MAX_HOTWORDS_CHARS`` are left out, the first ones kept)."""
        languages = {"any"} | {t.language for t in self.terms}
        found: dict[str, str] = {}
        for language in sorted(languages):
            kept: list[str] = []
            for term in self.hotwords(language):
                if len(", ".join([*kept, term])) > MAX_HOTWORDS_CHARS:
                    break
                kept.append(term)
            if kept:
                found[language] = ", ".join(kept)
        return found


EMPTY = Vocabulary()


def vocabulary_version(terms: Sequence[TermSpec]) -> str:
    digest = hashlib.sha256()
    for term in sorted(terms, key=lambda t: (t.canonical, t.language, t.spellings)):
        digest.update(term.model_dump_json(include={"canonical", "spellings", "language"}).encode())
    return digest.hexdigest()[:16]


# --- Storage -----------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _id_from(canonical: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(canonical)).strip("-")[:64].strip("-")
    return slug if re.fullmatch(TERM_ID_PATTERN, slug) else f"term-{uuid.uuid4().hex[:8]}"


# Every stored term, by id: the one search of the vocabulary, its body written once (a search
# page sends it too, in the same request as the page: indexer.search.runner).
TERMS_SEARCH = json.dumps(
    {"query": {"match_all": {}}, "sort": [{"id": "asc"}], "size": MAX_TERMS}
).encode()


def stored_terms_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored terms in an answer to ``TERMS_SEARCH`` (each hit's ``_source``)."""
    return [hit["_source"] for hit in answer["hits"]["hits"]]


def _stored_terms(es: Elasticsearch, settings: Settings) -> list[dict[str, Any]]:
    """The stored terms as Elasticsearch answers them; none when the index does not exist yet."""
    with backend_errors(settings.es_url):
        try:
            found = json_request(
                es,
                "POST",
                index_path(vocabulary_index(settings.calls_alias), "_search"),
                body=TERMS_SEARCH,
            )
        except NotFoundError:
            return []
    return stored_terms_of(found.body)


def list_terms(es: Elasticsearch, settings: Settings) -> list[VocabularyTerm]:
    """Every stored term, by id; none when the index does not exist yet."""
    return [VocabularyTerm.model_validate(source) for source in _stored_terms(es, settings)]


# The last vocabulary built from each vocabulary index's stored terms, with those terms.
_BUILT: dict[str, tuple[list[dict[str, Any]], Vocabulary]] = {}
_MAX_BUILT = 16


def load_vocabulary(es: Elasticsearch, settings: Settings) -> Vocabulary:
    """The stored vocabulary, ready to expand queries.

    Read on every call: a term written a moment ago, by any process, already counts (every
    write refreshes the index before it returns). What is not repeated is building it
    (``vocabulary_of``)."""
    return vocabulary_of(settings, _stored_terms(es, settings))


def vocabulary_of(settings: Settings, stored: list[dict[str, Any]]) -> Vocabulary:
    """The vocabulary of these stored terms (as read from the vocabulary of the calls behind
    ``settings``). When they are the very ones it was last built from, that vocabulary is
    returned (a search pays the read, not the validation and grouping of every term).
    Compared by content, not by a version or sequence number, so nothing a write, a deleted
    and recreated index or another process does can make it stale."""
    index = vocabulary_index(settings.calls_alias)
    built = _BUILT.get(index)
    if built is not None and built[0] == stored:
        return built[1]
    vocabulary = (
        Vocabulary.of(VocabularyTerm.model_validate(source) for source in stored)
        if stored
        else EMPTY
    )
    if len(_BUILT) >= _MAX_BUILT:
        _BUILT.clear()
    # One assignment: another thread reads the old pair or the new one, never a mix.
    _BUILT[index] = (stored, vocabulary)
    return vocabulary


def last_built(settings: Settings) -> tuple[list[dict[str, Any]], Vocabulary]:
    """The vocabulary last built for the calls behind ``settings``, with the stored terms it
    was built from (none and ``EMPTY`` before any), read from nothing: for a search page that
    reads the stored terms in the same request as the page and compares them
    (``indexer.search.runner``)."""
    return _BUILT.get(vocabulary_index(settings.calls_alias), ([], EMPTY))


def get_term(es: Elasticsearch, settings: Settings, term_id: str) -> VocabularyTerm:
    with backend_errors(settings.es_url):
        try:
            found = es.get(index=vocabulary_index(settings.calls_alias), id=term_id)
        except NotFoundError as exc:
            raise VocabularyTermNotFoundError(term_id) from exc
    return VocabularyTerm.model_validate(found["_source"])


def _write(es: Elasticsearch, settings: Settings, term: VocabularyTerm, *, create: bool) -> None:
    index = vocabulary_index(settings.calls_alias)
    with backend_errors(settings.es_url):
        ensure_index(es, index, VOCABULARY_MAPPING)
        if create and es.count(index=index)["count"] >= MAX_TERMS:
            raise TrackerConflictError(
                f"the vocabulary already holds {MAX_TERMS} terms: delete one first"
            )
        try:
            es.index(
                index=index,
                id=term.id,
                document=term.model_dump(mode="json"),
                op_type="create" if create else "index",
                refresh=True,
            )
        except ConflictError as exc:
            raise TrackerConflictError(
                f"a vocabulary term with id '{term.id}' exists: give another id, or change it "
                "with PUT"
            ) from exc


def create_term(es: Elasticsearch, settings: Settings, spec: TermCreate) -> VocabularyTerm:
    """Store a new term (past calls' tags follow by the job the caller queues next)."""
    now = _now()
    term = VocabularyTerm(
        **spec.model_dump(exclude={"id"}),
        id=spec.id or _id_from(spec.canonical),
        revision=1,
        created_at=now,
        updated_at=now,
    )
    _write(es, settings, term, create=True)
    return term


def replace_term(
    es: Elasticsearch, settings: Settings, term_id: str, spec: TermSpec
) -> VocabularyTerm:
    old = get_term(es, settings, term_id)
    term = VocabularyTerm(
        **spec.model_dump(),
        id=term_id,
        revision=old.revision + 1,
        created_at=old.created_at,
        updated_at=_now(),
    )
    _write(es, settings, term, create=False)
    return term


def delete_term(es: Elasticsearch, settings: Settings, term_id: str) -> None:
    with backend_errors(settings.es_url):
        try:
            es.delete(index=vocabulary_index(settings.calls_alias), id=term_id, refresh=True)
        except NotFoundError as exc:
            raise VocabularyTermNotFoundError(term_id) from exc
