"""An independent oracle for search: what a transcript's words mean as terms, and where a query
matches, worked out by hand for the property tests' vocabulary — never by ``indexer.search``.

The property tests once computed their expected answer with the production tokenizer and matcher,
so a bug in either could not fail them. Here every spoken word of the generators' vocabulary is
mapped to its terms by a table written from the README's rules (case, punctuation and ``ё``/``е``
ignored, numbers however written, hyphens split), the only rule computed is joining bare digit
groups (``15 000``), and matching is a literal scan and a brute-force enumeration of spans.
A word outside the table is a KeyError: the oracle never guesses.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

from indexer.transcript import Call

# Spoken word -> its terms, by hand. Digit-only words are absent: they are their own term and
# may join (see ``oracle_terms``).
SPOKEN_TERMS: dict[str, tuple[str, ...]] = {
    "Цена": ("цена",),
    "цена,": ("цена",),
    "ЦЕНА": ("цена",),
    "(цена": ("цена",),
    "цены,": ("цены",),
    "цену": ("цену",),
    "ещё": ("еще",),
    "ЕЩЁ": ("еще",),
    "Ещё": ("еще",),
    "еще": ("еще",),
    "«дорого»": ("дорого",),
    "дорого!": ("дорого",),
    "Дорого": ("дорого",),
    "дорогой": ("дорогой",),
    "скидка": ("скидка",),
    "Скидка?": ("скидка",),
    "да": ("да",),
    "нет": ("нет",),
    "Price": ("price",),
    "price.": ("price",),
    "prices.": ("prices",),
    "—": (),
    "...": (),
    "e-mail": ("e", "mail"),
    "mail": ("mail",),
    "10%": ("10",),
    ".20": ("20",),
    "15000": ("15000",),
    "15,000": ("15000",),
    "$15,000": ("15000",),
    "2,5": ("2.5",),
    "2.5": ("2.5",),
}
DIGIT_WORDS = ["15", "000", "10", "20", "2"]
VOCABULARY = [*SPOKEN_TERMS, *DIGIT_WORDS]
# What a user types, as query words (each also a spoken word, so the oracle knows it).
TYPED = ["цена", "цены", "еще", "ЕЩЁ", "дорого", "скидка", "да", "нет", "price", "mail"]
TYPED += ["15 000", "15000", "15,000", "2,5", "10%", "e-mail", "«дорого»"]
PREFIXES = ["цен", "дор", "pri", "ск", "15"]
SPOKEN_TERMS.update({word: (word.casefold().replace("ё", "е"),) for word in TYPED[:10]})


@dataclass(frozen=True)
class OracleTerm:
    text: str
    first_word: int
    last_word: int


def oracle_terms(words: Sequence[str]) -> list[OracleTerm]:
    """Terms of spoken words: the table, plus bare digit groups joined — a 1-3 digit word
    followed directly by 3-digit words is one number; anything between (``—``) keeps them
    apart."""
    terms: list[OracleTerm] = []
    group_open = False
    for index, word in enumerate(words):
        if word.isdigit():
            if group_open and len(word) == 3:
                last = terms[-1]
                terms[-1] = OracleTerm(last.text + word, last.first_word, index)
                continue
            terms.append(OracleTerm(word, index, index))
            group_open = len(word) <= 3
            continue
        group_open = False
        terms.extend(OracleTerm(text, index, index) for text in SPOKEN_TERMS[word])
    return terms


def typed_terms(typed: str) -> tuple[str, ...]:
    return tuple(term.text for term in oracle_terms(typed.split()))


def phrase_spans(terms: Sequence[OracleTerm], wanted: Sequence[str]) -> list[tuple[int, int]]:
    """Literal scan: every (first, last) term index where ``wanted`` is said."""
    width = len(wanted)
    return [
        (start, start + width - 1)
        for start in range(len(terms) - width + 1)
        if [term.text for term in terms[start : start + width]] == list(wanted)
    ]


# --- Generated transcripts ------------------------------------------------------------------


@dataclass(frozen=True)
class GenWord:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class GenUtterance:
    role: str
    words: tuple[GenWord, ...]


def _word_st(clock: float) -> st.SearchStrategy[GenWord]:
    """A word near ``clock``: usually after it, sometimes overlapping, zero-length or untimed
    (0, 0). Times on a half-second grid, so window edges are hit exactly."""
    return st.builds(
        lambda text, shape, length: GenWord(
            text,
            *{
                "after": (clock, clock + length),
                "overlap": (max(clock - 0.5, 0.0), clock + length),
                "zero": (clock, clock),
                "untimed": (0.0, 0.0),
            }[shape],
        ),
        st.sampled_from(VOCABULARY),
        st.sampled_from(["after", "after", "after", "overlap", "zero", "untimed"]),
        st.sampled_from([0.5, 1.0, 1.5]),
    )


@st.composite
def utterance_st(draw: st.DrawFn, clock: float) -> GenUtterance:
    role = draw(st.sampled_from(["manager", "client", "manager", "client", "unknown"]))
    words = []
    for _ in range(draw(st.integers(1, 7))):
        word = draw(_word_st(clock))
        words.append(word)
        clock = max(clock, word.end)
    return GenUtterance(role, tuple(words))


@st.composite
def transcript_st(draw: st.DrawFn) -> list[GenUtterance]:
    """Utterances in file order; sometimes shuffled so that file order is not time order."""
    utterances = []
    clock = 0.0
    for _ in range(draw(st.integers(1, 4))):
        utterance = draw(utterance_st(clock))
        utterances.append(utterance)
        # Sometimes a pause of 9.5 s, so that utterances reach past the ten-second tokens.
        clock = max([clock, *(w.end for w in utterance.words)]) + draw(
            st.sampled_from([0, 1, 0, 1, 9.5])
        )
    if draw(st.booleans()):
        random.Random(draw(st.integers(0, 2**16))).shuffle(utterances)
    return utterances


def gen_call(call_id: str, manager_id: str, utterances: Sequence[GenUtterance]) -> Call:
    """A contract call from generated utterances; it lasts until a second after the last word."""
    ends = [w.end for u in utterances for w in u.words]
    duration = max(ends, default=0.0) + 1.0
    speakers = {"manager": "SPEAKER_00", "client": "SPEAKER_01", "unknown": "SPEAKER_02"}
    return Call.model_validate(
        {
            "call_id": call_id,
            "started_at": "2026-03-02T10:00:00+00:00",
            "duration_s": duration,
            "language": "ru",
            "direction": "inbound",
            "manager": {"id": manager_id, "name": f"Manager {manager_id}"},
            "client": {"id": "c-1", "name": "Client", "phone": "+70000000000"},
            "audio": {"uri": f"file:///calls/{call_id}.wav", "channels": 2, "sample_rate": 8000},
            "asr": {"engine": "test", "model": "generated", "aligned": False, "diarization": "x"},
            "utterances": [
                {
                    "speaker": speakers[u.role],
                    "role": u.role,
                    "start": min(w.start for w in u.words),
                    "end": max(w.end for w in u.words),
                    "text": " ".join(w.text for w in u.words),
                    "words": [{"text": w.text, "start": w.start, "end": w.end} for w in u.words],
                }
                for u in utterances
            ],
        }
    )


# --- Queries, as the test's own tree ---------------------------------------------------------

RoleName = Literal["", "client:", "manager:", "клиент:", "менеджер:"]
ROLE_OF = {"": None, "client:": "client", "manager:": "manager"}
ROLE_OF |= {"клиент:": "client", "менеджер:": "manager"}


@dataclass(frozen=True)
class Pattern:
    """A word, a phrase (several typed words) or a prefix."""

    typed: tuple[str, ...]
    prefix: bool = False

    def render(self) -> str:
        if self.prefix:
            return f"{self.typed[0]}*"
        return f'"{" ".join(self.typed)}"' if len(self.typed) > 1 else self.typed[0]

    def terms(self) -> tuple[str, ...]:
        if self.prefix:
            return self.typed
        return typed_terms(" ".join(self.typed))

    def spans(self, terms: Sequence[OracleTerm]) -> list[tuple[int, int]]:
        if self.prefix:
            return [(i, i) for i, term in enumerate(terms) if term.text.startswith(self.typed[0])]
        return phrase_spans(terms, self.terms())


@dataclass(frozen=True)
class Leaf:
    left: Pattern
    right: Pattern | None = None  # NEAR
    gap: int = 0
    role: RoleName = ""
    window: tuple[Literal["first", "last"], int] | None = None

    def render(self) -> str:
        what = self.left.render()
        if self.right is not None:
            what = f"{what} NEAR/{self.gap} {self.right.render()}"
        window = f" WITHIN {self.window[0]} {self.window[1]}s" if self.window else ""
        return f"{self.role}{what}{window}"

    def spans(self, terms: Sequence[OracleTerm]) -> list[tuple[int, int]]:
        """Brute force: every span of term positions where the leaf is said (before the
        window). NEAR: the minimal spans holding an occurrence of each side (two distinct
        occurrences when both sides are the same pattern), at most ``gap`` positions in them
        besides the sides' own."""
        lefts = self.left.spans(terms)
        if self.right is None:
            return lefts
        rights = self.right.spans(terms)
        same = self.left.terms() == self.right.terms() and self.left.prefix == self.right.prefix

        def holds(first: int, last: int) -> bool:
            inside_left = [s for s in lefts if first <= s[0] and s[1] <= last]
            inside_right = [s for s in rights if first <= s[0] and s[1] <= last]
            if same:
                return len(inside_left) >= 2
            return bool(inside_left) and bool(inside_right)

        holding = [
            (first, last)
            for first in range(len(terms))
            for last in range(first, len(terms))
            if holds(first, last)
        ]
        minimal = [
            span
            for span in holding
            if not any(o != span and span[0] <= o[0] and o[1] <= span[1] for o in holding)
        ]
        inner = len(self.left.terms()) + len(self.right.terms())
        return [(a, b) for a, b in minimal if (b - a + 1) - inner <= self.gap]


@dataclass(frozen=True)
class Both:
    items: tuple[Query, ...]
    kind: Literal["AND", "OR"]

    def render(self) -> str:
        return "(" + f" {self.kind} ".join(item.render() for item in self.items) + ")"


@dataclass(frozen=True)
class Negated:
    item: Query

    def render(self) -> str:
        return f"NOT {self.item.render()}"


Query = Leaf | Both | Negated


@dataclass
class Judge:
    """The oracle's verdict on one call for a query and the API's ``role`` parameter."""

    call: Call
    default_role: str  # "any", "manager", "client"
    terms: list[list[OracleTerm]] = field(init=False)

    def __post_init__(self) -> None:
        self.terms = [oracle_terms([w.text for w in u.words]) for u in self.call.utterances]

    def role_ok(self, leaf: Leaf, role: str) -> bool:
        wanted = ROLE_OF[leaf.role] or self.default_role
        return wanted == "any" or wanted == role

    def in_window(self, leaf: Leaf, utterance: int, span: tuple[int, int]) -> bool:
        if leaf.window is None:
            return True
        edge, seconds = leaf.window
        words = self.call.utterances[utterance].words
        terms = self.terms[utterance][span[0] : span[1] + 1]
        if edge == "first":
            # Said starting in the first N seconds: some term starts before second N.
            return any(words[t.first_word].start < seconds for t in terms)
        return any(self.call.duration_s - words[t.last_word].end < seconds for t in terms)

    def occurrences(self, leaf: Leaf) -> Iterator[tuple[int, tuple[int, int]]]:
        for index, utterance in enumerate(self.call.utterances):
            if not self.role_ok(leaf, utterance.role.value):
                continue
            for span in leaf.spans(self.terms[index]):
                if self.in_window(leaf, index, span):
                    yield index, span

    def matches(self, query: Query) -> bool:
        if isinstance(query, Leaf):
            return any(True for _ in self.occurrences(query))
        if isinstance(query, Negated):
            return not self.matches(query.item)
        results = [self.matches(item) for item in query.items]
        return all(results) if query.kind == "AND" else any(results)

    def hits(self, query: Query, positive: bool = True) -> set[tuple[int, float, float]]:
        """(utterance, start, end) of every occurrence of every leaf not under a NOT."""
        if isinstance(query, Negated):
            return self.hits(query.item, not positive)
        if isinstance(query, Both):
            return set().union(*(self.hits(item, positive) for item in query.items))
        if not positive:
            return set()
        found = set()
        for index, (first, last) in self.occurrences(query):
            words = self.call.utterances[index].words
            terms = self.terms[index]
            found.add(
                (index, words[terms[first].first_word].start, words[terms[last].last_word].end)
            )
        return found


pattern_st = st.one_of(
    st.sampled_from(TYPED).map(lambda typed: Pattern((typed,))),
    st.sampled_from(PREFIXES).map(lambda prefix: Pattern((prefix,), prefix=True)),
    st.lists(st.sampled_from(TYPED), min_size=2, max_size=3).map(lambda w: Pattern(tuple(w))),
)
role_st: st.SearchStrategy[Any] = st.sampled_from(
    ["", "", "client:", "manager:", "клиент:", "менеджер:"]
)
window_st: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.none(),
    st.tuples(
        st.sampled_from(["first", "last"]),
        # Below ten (second tokens only), whole tens (ten-second tokens only) and both.
        st.one_of(st.integers(1, 12), st.sampled_from([10, 20, 21, 29, 30, 31])),
    ),
)
leaf_st = st.builds(
    Leaf,
    left=pattern_st,
    right=st.one_of(st.none(), pattern_st),
    gap=st.integers(0, 10),
    role=role_st,
    window=window_st,
)
query_st: st.SearchStrategy[Query] = st.recursive(
    leaf_st,
    lambda inner: st.one_of(
        st.builds(lambda a, b: Both((a, b), "AND"), inner, inner),
        st.builds(lambda a, b: Both((a, b), "OR"), inner, inner),
        inner.map(Negated),
    ),
    max_leaves=3,
)
