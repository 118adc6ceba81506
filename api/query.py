"""The search box: what a user types, parsed into clauses Earshot can run.

Syntax (this slice): words and "exact phrases", separated by spaces. Every word and every
phrase must occur in the call, each inside a single utterance of the chosen role; a phrase must
occur word for word, in order, with nothing in between. Case, punctuation and ``ё``/``е`` do not
matter, and numbers match however they were written (``15000``, ``15 000``, ``15,000``), because
the query goes through the same term rules as the transcripts (``indexer.text``).

User text is never handed to Elasticsearch as query syntax: it becomes lists of terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.errors import QueryError
from indexer.text import terms_of_text

QUOTES = {'"': '"', "«": "»", "“": "”", "„": "“"}


@dataclass(frozen=True, slots=True)
class Clause:
    """One word or phrase that must occur: its terms, and the text the user typed for it."""

    terms: tuple[str, ...]
    typed: str


def parse_query(text: str, *, max_length: int = 500, max_clauses: int = 20) -> list[Clause]:
    """Parse the search box into clauses; raise QueryError naming the position on bad input."""
    if len(text) > max_length:
        raise QueryError(f"query is longer than {max_length} characters", position=max_length)
    clauses: list[Clause] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char in QUOTES:
            closing = QUOTES[char]
            end = text.find(closing, position + 1)
            if end < 0:
                raise QueryError(f"unclosed quote: expected {closing}", position=position)
            typed = text[position + 1 : end]
            terms = terms_of_text(typed)
            if not terms:
                raise QueryError("empty phrase: expected words between the quotes", position)
            clauses.append(Clause(tuple(terms), typed))
            position = end + 1
            continue
        end = position
        while end < len(text) and not text[end].isspace() and text[end] not in QUOTES:
            end += 1
        typed = text[position:end]
        # A bare token such as "e-mail" can hold several terms; they must then occur together.
        terms = terms_of_text(typed)
        if terms:
            clauses.append(Clause(tuple(terms), typed))
        position = end
    if not clauses:
        raise QueryError("query has no searchable words")
    if len(clauses) > max_clauses:
        raise QueryError(f"query has more than {max_clauses} words and phrases")
    return _merge_number_groups(clauses)


def _merge_number_groups(clauses: list[Clause]) -> list[Clause]:
    """``15 000`` typed without quotes is one number, not two numbers that must both occur."""
    merged: list[Clause] = []
    for clause in clauses:
        if merged and len(clause.terms) == 1 and len(merged[-1].terms) == 1:
            combined = f"{merged[-1].typed} {clause.typed}"
            terms = terms_of_text(combined)
            if len(terms) == 1:
                merged[-1] = Clause(tuple(terms), combined)
                continue
        merged.append(clause)
    return merged
