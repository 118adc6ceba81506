"""Word forms: the dictionary forms (lemmas) a search term may stand for, for ``mode=forms``.

Elasticsearch's stemmers live in the ``analysis-common`` module, which the test distribution
lacks, so lemmas are computed here, in Python, at index time and at query time — the same code
on both sides, identical on every Elasticsearch. Russian uses pymorphy3 (OpenCorpora
dictionary), English uses simplemma; the language is chosen per term by its script, so a
Russian call quoting an English product name still gets both right.

A term is indexed with its two most likely lemmas (``lemma`` and ``lemma_alt``, one token each,
aligned position for position with ``terms``), because a word form is often ambiguous:
"дорого" is "дорого" (adverb) or "дорогой" (adjective), "стали" is "стать" or "сталь". A query
term matches a position when any of its own lemmas equals either indexed lemma.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pymorphy3
import simplemma

from indexer.search.text import fold

_CYRILLIC = re.compile(r"^[а-яё'-]+$")
_LATIN = re.compile(r"^[a-z'-]+$")


@lru_cache(maxsize=1)
def _russian() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=200_000)
def lemmas(term: str) -> tuple[str, ...]:
    """Distinct lemmas of a folded term, most likely first; the term itself when it has none."""
    found: list[str] = []
    if _CYRILLIC.match(term):
        found = [fold(parse.normal_form) for parse in _russian().parse(term)]
    elif _LATIN.match(term):
        found = [fold(simplemma.lemmatize(term, lang="en"))]
    # A lemma is stored as one whitespace-separated token, so it must not contain spaces.
    unique = tuple(dict.fromkeys(lemma for lemma in found if lemma and " " not in lemma))
    return unique or (term,)


@lru_cache(maxsize=200_000)  # every indexed position asks; the pair depends on the term alone
def indexed_lemmas(term: str) -> tuple[str, str]:
    """The two lemmas stored for a term (the same one twice when it has only one)."""
    found = lemmas(term)
    return found[0], found[1] if len(found) > 1 else found[0]
