"""How spoken words become searchable terms: the one tokenizer shared by indexing and querying.

Elasticsearch only splits the ``terms`` field on whitespace (the ``whitespace`` analyzer, which
the stripped test distribution and the full one both have). Everything else — case, ``ё``/``е``,
punctuation, number formats — is decided here, in Python, for both the indexed words and the
user's query. So the index and the query can never disagree on what a term is, and a matched
term maps back to the exact ASR words it came from.

Rules, in order:

* Unicode NFKC, then case-folding, then ``ё`` → ``е``; typographic apostrophes become ``'``.
* A term is a run of letters and digits, with inner apostrophes kept (``don't``, ``o'neil``).
  Everything else (punctuation, symbols, hyphens) separates terms: ``e-mail`` → ``e``, ``mail``.
* Numbers: thousands separators are dropped (``15,000``, ``15.000`` → ``15000``) and a decimal
  comma becomes a point (``2,5`` → ``2.5``). Digit groups that the recogniser wrote as separate
  words (``15 000``) are joined into one term when each later group has exactly three digits
  and no punctuation stands between them.
* A redaction class token (``[card]``, ``[phone]``, ...: ``indexer.redaction.classes``), which
  masking leaves where personal data was said, is one term, brackets included, so that it is
  searched as itself and never as the word "card".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, partial
from operator import itemgetter
from typing import NamedTuple, cast

from indexer.redaction.classes import CLASS_TOKEN_PATTERN

# Lucene's whitespace tokenizer cuts tokens at 255 characters; we cut first so both agree.
MAX_TERM_LENGTH = 255
# Distinct recognised words (with their case and punctuation) whose analysis is kept.
WORD_CACHE_SIZE = 200_000

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'", "´": "'"})
_NUMBER = r"\d+(?:[.,]\d+)*"
_WORD = r"[^\W_]+(?:'[^\W_]+)*"
# A number only when no letter follows (so "3d" and "mp3" stay single terms).
_TERM_RE = re.compile(
    rf"(?P<token>{CLASS_TOKEN_PATTERN})|(?P<number>{_NUMBER})(?![^\W_])|(?P<word>{_WORD})"
)
_THOUSANDS_COMMA = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUSANDS_DOT = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_DECIMAL = re.compile(r"^\d+[.,]\d+$")
_DIGIT_GROUP_HEAD = re.compile(r"^\d{1,3}$")
_DIGIT_GROUP = re.compile(r"^\d{3}$")


class Term(NamedTuple):
    """One searchable term and the span of source words it came from (inclusive).

    A named tuple, not a dataclass, so that the terms of an utterance can be made in C, without
    a Python ``__init__`` per position (``aligned_terms_of_words``)."""

    text: str
    first_word: int
    last_word: int


# Term(text, first, last) from a (text, first, last) tuple, all in C.
_term_of = cast(Callable[[tuple[str, int, int]], Term], partial(tuple.__new__, Term))


def fold(text: str) -> str:
    """Case, width and ``ё`` folding, as applied before splitting into terms."""
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е").translate(_APOSTROPHES)


def _normalise_number(raw: str) -> list[str]:
    if _THOUSANDS_COMMA.match(raw):
        return [raw.replace(",", "")]
    if _THOUSANDS_DOT.match(raw):
        return [raw.replace(".", "").replace(",", ".")]
    if _DECIMAL.match(raw):
        return [raw.replace(",", ".")]
    if raw.isdigit():
        return [raw]
    # Anything else ("1.2.3", "10,20,30"): each digit run is its own term.
    return re.findall(r"\d+", raw)


def _cut(term: str) -> list[str]:
    return [term[i : i + MAX_TERM_LENGTH] for i in range(0, len(term), MAX_TERM_LENGTH)]


# How a word's terms join a digit group (see terms_of_words), decided once per distinct word.
_CONTINUES = 1  # its first term is a three-digit group written in digits: it may continue one
_DIGITS_ONLY = 2  # the word is nothing but digits
_HEAD = 4  # ...and one 1-3 digit group: the head of a group the next word may continue


@lru_cache(maxsize=WORD_CACHE_SIZE)
def _analysed(word: str) -> tuple[tuple[str, ...], int, str | None]:
    """A word's terms, how they may join a digit group (the flags above), and its one term when
    it is one term that joins no group (None otherwise: see terms_of_words). Cached because
    speech repeats a small vocabulary: this runs for every word indexed and every word of every
    hit the API returns, and folding plus the term regex cost more than the lookup. What it
    holds depends on the word alone (no vocabulary, no policy), so it is never stale."""
    folded = fold(word)
    terms: list[str] = []
    for match in _TERM_RE.finditer(folded):
        if match.group("token") is not None:
            pieces = [match.group("token")]
        elif match.group("number") is not None:
            pieces = _normalise_number(match.group("number"))
        else:
            pieces = [match.group("word")]
        for piece in pieces:
            terms.extend(_cut(piece))
    folded = folded.strip()
    digit_group = 0
    if terms and folded[:1].isdigit() and _DIGIT_GROUP.match(terms[0]):
        digit_group |= _CONTINUES
    if folded.isdigit():
        digit_group |= _DIGITS_ONLY
        if len(terms) == 1 and _DIGIT_GROUP_HEAD.match(folded):
            digit_group |= _HEAD
    single = terms[0] if len(terms) == 1 and not digit_group else None
    return tuple(terms), digit_group, single


_single_term = itemgetter(2)


def word_terms(word: str) -> list[str]:
    """The terms of one recognised word (zero for pure punctuation, several for ``e-mail``)."""
    return list(_analysed(word)[0])


def terms_of_words(words: Sequence[str]) -> list[Term]:
    """Terms of a word sequence, each pointing back at the words it covers."""
    return aligned_terms_of_words(words)[0]


def single_terms(words: Iterable[str]) -> list[str | None]:
    """Each word's one term, or None where the word makes other than one term of its own (none,
    several, or a digit group that may join its neighbour): where no word is None, term ``i`` is
    word ``i``'s only term (``aligned_terms_of_words``)."""
    return list(map(_single_term, map(_analysed, words)))


def terms_of_singles(singles: Iterable[str], positions: Sequence[int]) -> list[Term]:
    """The terms of words that are each their one term (``single_terms`` without a None), each
    at its word's position, made without a Python step per word."""
    return list(map(_term_of, zip(singles, positions, positions, strict=True)))


def aligned_terms_of_words(words: Sequence[str]) -> tuple[list[Term], bool]:
    """``terms_of_words``, and whether term ``i`` is word ``i``'s only term for every ``i``
    (the term layout then reads the words' seconds as they are)."""
    analysed = list(map(_analysed, words))
    singles = list(map(_single_term, analysed))
    if None not in singles:
        # Nearly every utterance (all but 0.2 % of the benchmark corpus's): each word is one
        # term and no digit group joins, so the terms are made without a Python step per word.
        positions = range(len(singles))
        return terms_of_singles(cast(list[str], singles), positions), True
    terms: list[Term] = []
    # A word that is nothing but a 1-3 digit group may be continued by the next word.
    open_group = False
    for index, (pieces, digit_group, _) in enumerate(analysed):
        if not digit_group:  # most words: no digits, so no group to join or open
            open_group = False
            if len(pieces) == 1:
                terms.append(Term(pieces[0], index, index))
            else:
                terms.extend([Term(piece, index, index) for piece in pieces])
            continue
        if open_group and digit_group & _CONTINUES and terms:
            previous = terms[-1]
            terms[-1] = Term(previous.text + pieces[0], previous.first_word, index)
            pieces = pieces[1:]
            # The group stays open only while the word is a bare three-digit group.
            open_group = not pieces and bool(digit_group & _DIGITS_ONLY)
        else:
            open_group = False
        terms.extend([Term(piece, index, index) for piece in pieces])
        if not open_group and len(pieces) == 1 and digit_group & _HEAD:
            open_group = True
    return terms, False


def terms_of_text(text: str) -> list[str]:
    """Terms of free text as a user types it (a query phrase): split into words, then as above."""
    return [term.text for term in terms_of_words(text.split())]


def find_phrase(terms: Sequence[Term], phrase: Sequence[str]) -> Iterable[tuple[int, int]]:
    """Every occurrence of ``phrase`` in ``terms``, as inclusive (first, last) term indices."""
    size = len(phrase)
    if size == 0:
        return
    for start in range(len(terms) - size + 1):
        if all(terms[start + k].text == phrase[k] for k in range(size)):
            yield start, start + size - 1
