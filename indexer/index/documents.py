"""Turning a transcript into the Elasticsearch document of ``mappings/calls.json`` and back.

Each utterance's words become *positions*: one per search term (``indexer.text``), and at every
position the same place holds a token in five fields — the term, its two most likely lemmas
(``indexer.morphology``), the whole second it starts at and the whole seconds from its end to
the end of the call. Elasticsearch's interval queries can then combine them position by
position (a phrase in its word forms, a phrase said within the first 30 s), and the API, which
rebuilds the same layout from the stored words, finds the exact words a query matched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from indexer.index.metrics import call_metrics
from indexer.search.morphology import indexed_lemmas
from indexer.search.text import Term, terms_of_words
from indexer.transcript import Call, Utterance, Word

MAX_SECOND = 99_999  # five-digit second tokens: 27 hours, far beyond any call
_WORDS = TypeAdapter(list[Word])
DERIVED_FIELDS = ("utterance_count", "metrics", "trackers")


# The tokens of the first four hours, made once: two per search position are needed at index
# time and again for every hit the API returns, and a lookup is cheaper than formatting.
_SECOND_TOKENS = tuple(f"{second:05d}" for second in range(4 * 3600))


def second_token(seconds: float) -> str:
    """A whole second as a fixed-width token, so that token order is time order."""
    whole = min(max(math.floor(seconds), 0), MAX_SECOND)
    return _SECOND_TOKENS[whole] if whole < len(_SECOND_TOKENS) else f"{whole:05d}"


class TermLayout:
    """An utterance's search positions: term ``i`` of every list belongs to position ``i``.

    Only ``terms`` is made up front; the lemmas and the second tokens are made the first time
    they are read. Exact-mode matching (most searches, each hit the API returns) never reads
    them, and a layout is rebuilt for every utterance the API shows.
    """

    __slots__ = (
        "_duration_s",
        "_ends",
        "_lemma",
        "_lemma_alt",
        "_start_s",
        "_starts",
        "_to_end_s",
        "terms",
    )

    def __init__(
        self,
        terms: list[Term],
        starts: Sequence[float],
        ends: Sequence[float],
        duration_s: float,
    ) -> None:
        self.terms = terms
        self._starts = starts
        self._ends = ends
        self._duration_s = duration_s
        self._lemma: list[str] | None = None
        self._lemma_alt: list[str] | None = None
        self._start_s: list[str] | None = None
        self._to_end_s: list[str] | None = None

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
        pairs = [indexed_lemmas(term.text) for term in self.terms]
        self._lemma = [pair[0] for pair in pairs]
        self._lemma_alt = [pair[1] for pair in pairs]

    @property
    def start_s(self) -> list[str]:
        if self._start_s is None:
            self._start_s = [second_token(self._starts[term.first_word]) for term in self.terms]
        return self._start_s

    @property
    def to_end_s(self) -> list[str]:
        if self._to_end_s is None:
            self._to_end_s = [
                second_token(self._duration_s - self._ends[term.last_word]) for term in self.terms
            ]
        return self._to_end_s


def term_layout(
    texts: Sequence[str], starts: Sequence[float], ends: Sequence[float], duration_s: float
) -> TermLayout:
    return TermLayout(terms_of_words(texts), starts, ends, duration_s)


def locate_words(text: str, words: list[Word]) -> list[tuple[int, int] | None]:
    """Character span of each word inside the utterance text, found left to right.

    A word the text does not contain (an ASR quirk) gets ``None``; the words after it are still
    found, so one odd word does not cost the highlighting of the rest.
    """
    spans: list[tuple[int, int] | None] = []
    folded = text.casefold()
    cursor = 0
    for word in words:
        needle = word.text.strip()
        at = text.find(needle, cursor)
        if at < 0:
            at = folded.find(needle.casefold(), cursor)
        if at < 0 or not needle:
            spans.append(None)
            continue
        spans.append((at, at + len(needle)))
        cursor = at + len(needle)
    return spans


def utterance_document(index: int, utterance: Utterance, duration_s: float) -> dict[str, Any]:
    spans = locate_words(utterance.text, utterance.words)
    # One serialiser call per utterance instead of one per word (the hottest loop of indexing).
    words: list[dict[str, Any]] = _WORDS.dump_python(utterance.words, mode="json")
    for entry, span in zip(words, spans, strict=True):
        entry["char_start"], entry["char_end"] = span if span else (None, None)
    layout = term_layout(
        [w.text for w in utterance.words],
        [w.start for w in utterance.words],
        [w.end for w in utterance.words],
        duration_s,
    )
    return {
        "index": index,
        "speaker": utterance.speaker,
        "role": utterance.role.value,
        "start": utterance.start,
        "end": utterance.end,
        "text": utterance.text,
        "terms": " ".join(term.text for term in layout.terms),
        "lemma": " ".join(layout.lemma),
        "lemma_alt": " ".join(layout.lemma_alt),
        "start_s": " ".join(layout.start_s),
        "to_end_s": " ".join(layout.to_end_s),
        "words": words,
    }


def call_document(call: Call, trackers: Sequence[str] = ()) -> dict[str, Any]:
    """The document stored for a call (its id is ``call.call_id``), with the ids of the
    trackers it mentions."""
    document = call.model_dump(mode="json", exclude={"utterances"})
    document["utterance_count"] = len(call.utterances)
    document["metrics"] = call_metrics(call).model_dump(mode="json")
    document["trackers"] = sorted(trackers)
    document["utterances"] = [
        utterance_document(index, utterance, call.duration_s)
        for index, utterance in enumerate(call.utterances)
    ]
    return document


def call_from_document(source: dict[str, Any]) -> Call:
    """The transcript back from a stored document (derived fields dropped)."""
    data = {key: value for key, value in source.items() if key not in DERIVED_FIELDS}
    data["utterances"] = [
        {
            "speaker": utt["speaker"],
            "role": utt["role"],
            "start": utt["start"],
            "end": utt["end"],
            "text": utt["text"],
            "words": [
                {key: w[key] for key in ("text", "start", "end", "score") if key in w}
                for w in utt["words"]
            ],
        }
        for utt in source.get("utterances", [])
    ]
    return Call.model_validate(data)
