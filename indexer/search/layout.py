"""The term layout: an utterance's search positions, built one way for indexing, matching
and the hits of a search, so the three can never disagree.

Each utterance's words become *positions*: one per search term (``indexer.search.text``), and at
every position the same place holds a token in nine fields — the term, its two most likely
lemmas (``indexer.search.morphology``), the whole second it starts at, the whole seconds from
its end to the end of the call, those two by tens of seconds (for ``WITHIN`` windows), the
number a run of words says (``indexer.search.numbers``: its value and width at the run's first
position, ``+`` on the rest of the run, ``-`` elsewhere) and the term's Latin/Cyrillic sound key
(``indexer.search.transliteration``). So "15000 рублей" matches "пятнадцать тысяч рублей"
position by position.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate, chain, repeat
from operator import attrgetter, itemgetter, sub
from typing import Any, cast

from indexer.search.morphology import indexed_lemmas
from indexer.search.numbers import max_spoken_width, number_words, spoken_numbers
from indexer.search.text import Term, aligned_terms_of_words, single_terms, terms_of_singles
from indexer.search.transliteration import indexed_key
from indexer.transcript import Call, Word

MAX_SECOND = 99_999  # five-digit second tokens: 27 hours, far beyond any call
# A number said in more words than this is indexed as its words only (a query for its value
# compiles to one alternative per possible width).
MAX_NUMBER_WIDTH = 10
NOT_A_NUMBER = "-"
NUMBER_CONTINUES = "+"


def number_token(value: str, width: int) -> str:
    """The ``number`` token at the first position of a number said in ``width`` terms."""
    return value if width == 1 else f"{value}/{width}"


# The tokens of the first four hours, made once: two per search position are needed at index
# time and again for every hit the API returns, and a lookup is cheaper than formatting.
_SECOND_TOKENS = tuple(f"{second:05d}" for second in range(4 * 3600))


def second_token(seconds: float) -> str:
    """A whole second as a fixed-width token, so that token order is time order."""
    whole = min(max(math.floor(seconds), 0), MAX_SECOND)
    return _SECOND_TOKENS[whole] if whole < len(_SECOND_TOKENS) else f"{whole:05d}"


# A window "first N s" is every position whose whole second is below N. As a range of second
# tokens it is N terms, and every call has positions in its first seconds, so Lucene walks N
# dense postings lists for every candidate utterance (126 ms a search for 30 s at 100k calls).
# Each position therefore also carries its ten-second token — the second token without its last
# digit, so its order is time order too — and a window is the ten-second tokens it covers whole
# plus at most nine second tokens at its edge: 3 terms for 30 s.
TENS_S = 10


# The ten-second token of a second token, as a C callable: the layout maps it over every position.
_drop_last_digit = itemgetter(slice(None, -1))


def tens_token(second: str) -> str:
    """The ten-second token of a second token: ``00047`` lies in ``0004``."""
    token: str = _drop_last_digit(second)
    return token


def window_ranges(seconds: int) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """Whole seconds ``0 .. seconds - 1`` as an inclusive range of ten-second tokens (the tens
    the window covers whole; None when it covers none) and one of second tokens (the rest; None
    when the window ends on a ten)."""
    whole_tens = seconds // TENS_S
    tens = (
        (tens_token(second_token(0)), tens_token(second_token(whole_tens * TENS_S - 1)))
        if whole_tens
        else None
    )
    rest = (
        (second_token(whole_tens * TENS_S), second_token(seconds - 1)) if seconds % TENS_S else None
    )
    return tens, rest


def _second_tokens(seconds: list[float]) -> list[str]:
    """``second_token`` of each value; the first four hours by lookup alone (for values in
    [0, 14400) ``int`` is ``floor`` and no clamping applies), as two tokens per position of
    every indexed word are made here: when every value of the list is in that range (nearly
    every utterance), by one lookup mapped in C, without a Python step per position."""
    tokens, top = _SECOND_TOKENS, len(_SECOND_TOKENS)
    if seconds and min(seconds) >= 0 and max(seconds) < top:
        return list(map(tokens.__getitem__, map(int, seconds)))
    return [tokens[int(value)] if 0 <= value < top else second_token(value) for value in seconds]


# What the layout reads of each term and word, as C callables mapped over a whole utterance:
# a Python loop per position costs more than the work it does.
_text = attrgetter("text")
_start = attrgetter("start")
_end = attrgetter("end")
_words = attrgetter("words")
_first_word = attrgetter("first_word")
_last_word = attrgetter("last_word")
_stored_text = itemgetter("text")
_stored_start = itemgetter("start")
_stored_end = itemgetter("end")
_first_lemma = itemgetter(0)
_second_lemma = itemgetter(1)


# Each per-position field from the positions' texts or seconds, one element at a time: the
# lists of an utterance's layout, or of all of a call's positions at once (``_CallColumns``),
# are made by these alone, so the two agree element for element.
def _lemma_columns(texts: list[str]) -> tuple[list[str], list[str]]:
    pairs = list(map(indexed_lemmas, texts))
    return list(map(_first_lemma, pairs)), list(map(_second_lemma, pairs))


def _translit_column(texts: list[str]) -> list[str]:
    return list(map(indexed_key, texts))


def _to_end_column(ends: Iterable[float], duration_s: float) -> list[str]:
    return _second_tokens(list(map(sub, repeat(duration_s), ends)))


def _tens_column(second_tokens: list[str]) -> list[str]:
    return list(map(_drop_last_digit, second_tokens))


class _CallColumns:
    """Every search position of a call's aligned utterances (each word its one term), one list
    per field in utterance order, each made the first time it is read by one pass over the
    whole call: an utterance's layout reads its slice (``call_layout``).

    Why: a call has ~110 utterances of ~6 words, and per utterance the passes' own cost (a
    call, a list, a lookup of the mapped function) was as much as their work on its words:
    building a call's document took twice the time of the same words in one utterance
    (docs/benchmarks.md, "Call-wide layout columns").
    """

    __slots__ = (
        "_duration_s",
        "_ends",
        "_lemma",
        "_number_words",
        "_start_s",
        "_starts",
        "_to_end_s",
        "_translit",
        "texts",
    )

    def __init__(
        self, texts: list[str], starts: list[float], ends: list[float], duration_s: float
    ) -> None:
        self.texts = texts
        self._starts = starts
        self._ends = ends
        self._duration_s = duration_s
        self._lemma: tuple[list[str], list[str]] | None = None
        self._translit: list[str] | None = None
        self._start_s: tuple[list[str], list[str]] | None = None
        self._to_end_s: tuple[list[str], list[str]] | None = None
        self._number_words: list[object | None] | None = None

    @property
    def lemmas(self) -> tuple[list[str], list[str]]:
        if self._lemma is None:
            self._lemma = _lemma_columns(self.texts)
        return self._lemma

    @property
    def translit(self) -> list[str]:
        if self._translit is None:
            self._translit = _translit_column(self.texts)
        return self._translit

    @property
    def start_s(self) -> tuple[list[str], list[str]]:
        """The second tokens of the positions' starts, and their ten-second tokens."""
        if self._start_s is None:
            seconds = _second_tokens(self._starts)
            self._start_s = seconds, _tens_column(seconds)
        return self._start_s

    @property
    def to_end_s(self) -> tuple[list[str], list[str]]:
        """The second tokens from the positions' ends to the call's, and their tens."""
        if self._to_end_s is None:
            seconds = _to_end_column(self._ends, self._duration_s)
            self._to_end_s = seconds, _tens_column(seconds)
        return self._to_end_s

    def says_no_number(self, span: slice) -> bool:
        """Whether the positions of ``span`` say no number (most utterances)."""
        if self._number_words is None:
            self._number_words = number_words(self.texts)
        return not any(self._number_words[span])


class TermLayout:
    """An utterance's search positions: term ``i`` of every list belongs to position ``i``.

    Only ``terms`` is made up front; the lemmas and the second tokens are made the first time
    they are read. Exact-mode matching (most searches, each hit the API returns) never reads
    them, and a layout is rebuilt for every utterance the API shows. A layout made by
    ``call_layout`` reads them as its slice of the call's columns (``_CallColumns``), made for
    the whole call the first time any of its utterances reads them.
    """

    __slots__ = (
        "_aligned",
        "_columns",
        "_duration_s",
        "_ends",
        "_lemma",
        "_lemma_alt",
        "_lemma_positions",
        "_number",
        "_number_width",
        "_span",
        "_start_s",
        "_start_tens",
        "_starts",
        "_texts",
        "_to_end_s",
        "_to_end_tens",
        "_translit",
        "_translit_positions",
        "terms",
    )

    def __init__(
        self,
        terms: list[Term],
        starts: Sequence[float],
        ends: Sequence[float],
        duration_s: float,
        aligned: bool = False,
        columns: _CallColumns | None = None,
        offset: int = 0,
    ) -> None:
        self.terms = terms
        # The call's columns this utterance's positions are ``offset`` onwards of (aligned
        # utterances laid out by ``call_layout``); None: the lists are made from its own words.
        self._columns = columns
        self._span = slice(offset, offset + len(terms))
        # Term i is word i's only term: its seconds are the words' own, in order.
        self._aligned = aligned
        self._texts: list[str] | None = None
        self._starts = starts
        self._ends = ends
        self._duration_s = duration_s
        self._lemma: list[str] | None = None
        self._lemma_alt: list[str] | None = None
        self._start_s: list[str] | None = None
        self._to_end_s: list[str] | None = None
        self._start_tens: list[str] | None = None
        self._to_end_tens: list[str] | None = None
        self._number: list[str] | None = None
        self._number_width: dict[int, tuple[str, int]] | None = None
        self._translit: list[str] | None = None
        self._lemma_positions: dict[str, list[int]] | None = None
        self._translit_positions: dict[str, list[int]] | None = None

    @property
    def texts(self) -> list[str]:
        """The text of each term, made once: the document, the lemmas, the numbers, the
        transliteration and the token index all read it."""
        if self._texts is None:
            if self._columns is None:
                self._texts = list(map(_text, self.terms))
            else:
                self._texts = self._columns.texts[self._span]
        return self._texts

    @property
    def lemma(self) -> list[str]:
        if self._lemma is None:
            self._make_lemmas()
        assert self._lemma is not None
        return self._lemma

    @property
    def lemma_alt(self) -> list[str]:
        if self._lemma_alt is None:
            self._make_lemmas()
        assert self._lemma_alt is not None
        return self._lemma_alt

    def _make_lemmas(self) -> None:
        if self._columns is None:
            self._lemma, self._lemma_alt = _lemma_columns(self.texts)
        else:
            lemma, lemma_alt = self._columns.lemmas
            self._lemma, self._lemma_alt = lemma[self._span], lemma_alt[self._span]

    @property
    def number(self) -> list[str]:
        if self._number is None:
            self._make_numbers()
        assert self._number is not None
        return self._number

    @property
    def numbers_at(self) -> dict[int, tuple[str, int]]:
        """First position of each spoken number → (its value, its width in positions)."""
        if self._number_width is None:
            self._make_numbers()
        assert self._number_width is not None
        return self._number_width

    def _make_numbers(self) -> None:
        tokens = [NOT_A_NUMBER] * len(self.terms)
        widths: dict[int, tuple[str, int]] = {}
        if self._columns is not None and self._columns.says_no_number(self._span):
            self._number, self._number_width = tokens, widths
            return
        for spoken in spoken_numbers(self.texts):
            width = spoken.last - spoken.first + 1
            # The query side looks no wider (indexer.search.compiler); both agree by construction.
            if width > min(MAX_NUMBER_WIDTH, max_spoken_width(spoken.value)):
                continue
            widths[spoken.first] = (spoken.value, width)
            tokens[spoken.first] = number_token(spoken.value, width)
            for position in range(spoken.first + 1, spoken.last + 1):
                tokens[position] = NUMBER_CONTINUES
        self._number, self._number_width = tokens, widths

    @property
    def translit(self) -> list[str]:
        if self._translit is None:
            if self._columns is None:
                self._translit = _translit_column(self.texts)
            else:
                self._translit = self._columns.translit[self._span]
        return self._translit

    def positions_of(self, term: str) -> list[int]:
        """Every position of ``term``, in order: the matcher looks a pattern's first term up
        here instead of testing every position (tagging runs every tracker phrase over every
        utterance). Found by the texts' own C searches (``count``, then ``index`` per
        occurrence), not an index of every term: a hit is rebuilt by one lookup per utterance
        (and tagging looks up only terms its call says), where an index cost more to build
        than all its lookups (docs/benchmarks.md, "Search pages, round 5")."""
        texts = self.texts
        found: list[int] = []
        at = -1
        for _ in range(texts.count(term)):
            at = texts.index(term, at + 1)
            found.append(at)
        return found

    @property
    def lemma_positions(self) -> dict[str, list[int]]:
        """Both lemma fields: a position is listed under its lemma and its second lemma."""
        if self._lemma_positions is None:
            self._lemma_positions = _positions(self.lemma, self.lemma_alt)
        return self._lemma_positions

    @property
    def translit_positions(self) -> dict[str, list[int]]:
        if self._translit_positions is None:
            self._translit_positions = _positions(self.translit)
        return self._translit_positions

    @property
    def start_s(self) -> list[str]:
        if self._start_s is None:
            if self._columns is not None:
                seconds, tens = self._columns.start_s
                self._start_s, self._start_tens = seconds[self._span], tens[self._span]
            elif self._aligned:
                self._start_s = _second_tokens(list(self._starts))
            else:
                starts = list(map(self._starts.__getitem__, map(_first_word, self.terms)))
                self._start_s = _second_tokens(starts)
        return self._start_s

    @property
    def to_end_s(self) -> list[str]:
        if self._to_end_s is None:
            if self._columns is not None:
                seconds, tens = self._columns.to_end_s
                self._to_end_s, self._to_end_tens = seconds[self._span], tens[self._span]
            else:
                ends: Iterable[float] = self._ends
                if not self._aligned:
                    ends = map(self._ends.__getitem__, map(_last_word, self.terms))
                self._to_end_s = _to_end_column(ends, self._duration_s)
        return self._to_end_s

    @property
    def start_tens(self) -> list[str]:
        if self._start_tens is None:
            start_s = self.start_s  # from the call's columns: its tens come with it
            if self._start_tens is None:
                self._start_tens = _tens_column(start_s)
        return self._start_tens

    @property
    def to_end_tens(self) -> list[str]:
        if self._to_end_tens is None:
            to_end_s = self.to_end_s
            if self._to_end_tens is None:
                self._to_end_tens = _tens_column(to_end_s)
        return self._to_end_tens


def _positions(*fields: Iterable[str]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for tokens in fields:
        for position, token in enumerate(tokens):
            at = index.setdefault(token, [])
            if not at or at[-1] != position:
                at.append(position)
    return index


class CallLayout(list[TermLayout]):
    """The layouts of a call's utterances, in order, with the set of every term and lemma said
    anywhere in the call: a tracker phrase whose first term the call never says cannot match
    any of its utterances, and most calls say most phrases nowhere."""

    def __init__(self, layouts: Iterable[TermLayout], columns: _CallColumns | None = None) -> None:
        super().__init__(layouts)
        # The call's columns when every layout is a slice of them: the sets are made from them.
        self._columns = columns
        self._terms: set[str] | None = None
        self._lemmas: set[str] | None = None

    @property
    def terms(self) -> set[str]:
        if self._terms is None:
            if self._columns is None:
                self._terms = set().union(*(layout.texts for layout in self))
            else:
                self._terms = set(self._columns.texts)
        return self._terms

    @property
    def lemmas(self) -> set[str]:
        if self._lemmas is None:
            if self._columns is None:
                self._lemmas = set().union(*(layout.lemma for layout in self))
                self._lemmas.update(*(layout.lemma_alt for layout in self))
            else:
                lemma, lemma_alt = self._columns.lemmas
                self._lemmas = set(lemma)
                self._lemmas.update(lemma_alt)
        return self._lemmas


# The last call laid out, and its layout: tagging a call and building its document both need
# it, one after the other, and making it twice cost a tenth of the loader's time. The call is
# held, so its id cannot be reused while it is the key; one tuple, so threads see a whole entry.
_last_laid_out: tuple[Call, CallLayout] | None = None


def call_layout(call: Call, *, keep: bool = True) -> CallLayout:
    """The layouts of the call's utterances (made once while it is the last call asked for).

    ``keep=False``: the caller is the layout's last user (the document builder), so it is let
    go. Why: a worker builds each call with the collector off and collects after it
    (``indexer.index.building.collected_after``); a layout kept alive there, with the call it
    holds, is ~30,000 objects that collection walks for nothing (3 % of a build's
    instructions), where let go they are freed by reference counting before it runs."""
    global _last_laid_out
    last = _last_laid_out
    layout = last[1] if last is not None and last[0] is call else _laid_out(call)
    _last_laid_out = (call, layout) if keep else None
    return layout


def _laid_out(call: Call) -> CallLayout:
    """``term_layout`` of each utterance; the aligned ones (each word its one term: nearly
    all) as slices of the call's columns, the others by ``term_layout`` itself."""
    layouts, columns = _column_layouts(
        list(map(_words, call.utterances)), call.duration_s, _CONTRACT_WORD
    )
    return CallLayout(layouts, columns)


def stored_layouts(
    word_lists: Sequence[Sequence[Mapping[str, Any]]], duration_s: float
) -> list[TermLayout]:
    """``term_layout`` of each list of a document's stored words (the utterances a search
    returned for one call), laid out together as a call is: the API rebuilds every hit it
    shows from these, and one utterance at a time the passes' own cost was most of it."""
    if len(word_lists) == 1:  # one utterance (a rare word's calls): alone costs less
        return [term_layout(word_lists[0], duration_s)]
    layouts, _ = _column_layouts(word_lists, duration_s, _STORED_WORD)
    return layouts


# How a word's text, start and end are read: a contract Word's attributes, a stored word's keys.
_WordFields = tuple[Callable[[Any], str], Callable[[Any], float], Callable[[Any], float]]
_CONTRACT_WORD: _WordFields = (_text, _start, _end)
_STORED_WORD: _WordFields = (_stored_text, _stored_start, _stored_end)


def _column_layouts(
    word_lists: Sequence[Sequence[Word]] | Sequence[Sequence[Mapping[str, Any]]],
    duration_s: float,
    fields: _WordFields,
) -> tuple[list[TermLayout], _CallColumns | None]:
    """The layouts of utterances with these words, their text and seconds read by
    ``fields``; the columns they are slices of, when every one is (None when some utterance
    was laid out by ``term_layout``)."""
    text, start_of, end_of = fields
    words = list(chain.from_iterable(word_lists))
    texts = list(map(text, words))
    starts, ends = list(map(start_of, words)), list(map(end_of, words))
    lengths = list(map(len, word_lists))
    singles = single_terms(texts)
    bounds = list(accumulate(lengths, initial=0))
    apart: set[int] = set()  # the utterances laid out by term_layout
    if None in singles:
        at = singles.index(None)
        while True:
            apart.add(bisect_right(bounds, at) - 1)
            singles[at] = ""  # a placeholder: its utterance never reads the columns
            try:
                at = singles.index(None, at + 1)
            except ValueError:
                break
    terms = cast(list[str], singles)
    columns = _CallColumns(terms, starts, ends, duration_s)
    # Each word's place in its utterance: the terms' word indices are the utterance's own.
    places = list(chain.from_iterable(map(range, lengths)))
    every_term = terms_of_singles(terms, places)
    layouts = []
    for index in range(len(word_lists)):
        if index in apart:
            layouts.append(term_layout(word_lists[index], duration_s))
            continue
        start, stop = bounds[index], bounds[index + 1]
        layouts.append(
            TermLayout(
                every_term[start:stop],
                starts[start:stop],
                ends[start:stop],
                duration_s,
                aligned=True,
                columns=columns,
                offset=start,
            )
        )
    return layouts, None if apart else columns


def term_layout(
    words: Sequence[Word] | Sequence[Mapping[str, Any]], duration_s: float
) -> TermLayout:
    """The one builder of an utterance's layout, from the contract's words (indexing, the
    matcher) or from the stored words of a document (the hits of a search)."""
    text, start, end = _STORED_WORD if words and isinstance(words[0], Mapping) else _CONTRACT_WORD
    texts = list(map(text, words))
    starts = list(map(start, words))
    ends = list(map(end, words))
    terms, aligned = aligned_terms_of_words(texts)
    return TermLayout(terms, starts, ends, duration_s, aligned)
