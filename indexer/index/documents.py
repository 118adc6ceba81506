"""Turning a transcript into the Elasticsearch document of ``mappings/calls.json`` and back.

Each utterance's words become *positions*: one per search term (``indexer.search.text``), and at
every position the same place holds a token in five fields — the term, its two most likely lemmas
(``indexer.search.morphology``), the whole second it starts at and the whole seconds from its end to
the end of the call. Elasticsearch's interval queries can then combine them position by position (a
phrase in its word forms, a phrase said within the first 30 s), and the API, which rebuilds the same
layout from the stored words, finds the exact words a query matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexer.metrics import call_metrics
from indexer.search.layout import TermLayout, call_layout, term_layout
from indexer.transcript import Call, Utterance, Word

DERIVED_FIELDS = ("utterance_count", "metrics", "trackers")


def word_entries(text: str, words: list[Word]) -> list[dict[str, Any]]:
    """Each word's stored entry: its fields, in ``Word``'s order, then its character span
    inside the utterance text (``char_start``, ``char_end``), found left to right.

    A word the text does not contain (an ASR quirk) gets ``None`` for both; the words after it
    are still found, so one odd word does not cost the highlighting of the rest.
    """
    # The hottest loop of indexing (~700 words a call), so the entries are made in the same
    # pass that finds the spans, and the text is case-folded only when a word is not found as
    # it is written (hardly ever).
    entries: list[dict[str, Any]] = []
    folded: str | None = None
    cursor = 0
    for word in words:
        needle = word.text.strip()
        at = text.find(needle, cursor)
        if at < 0:
            if folded is None:
                folded = text.casefold()
            at = folded.find(needle.casefold(), cursor)
        if at < 0 or not needle:
            char_start = char_end = None
        else:
            char_start, char_end = at, at + len(needle)
            cursor = char_end
        entries.append(
            {
                "text": word.text,
                "start": word.start,
                "end": word.end,
                "score": word.score,
                "char_start": char_start,
                "char_end": char_end,
            }
        )
    return entries


def locate_words(text: str, words: list[Word]) -> list[tuple[int, int] | None]:
    """Character span of each word inside the utterance text (``None``: not found), as its
    stored entry has it."""
    return [
        None if entry["char_start"] is None else (entry["char_start"], entry["char_end"])
        for entry in word_entries(text, words)
    ]


def utterance_document(
    index: int, utterance: Utterance, duration_s: float, layout: TermLayout | None = None
) -> dict[str, Any]:
    words = word_entries(utterance.text, utterance.words)
    if layout is None:
        layout = term_layout(utterance.words, duration_s)
    return {
        "index": index,
        "speaker": utterance.speaker,
        "role": utterance.role.value,
        "start": utterance.start,
        "end": utterance.end,
        "text": utterance.text,
        "terms": " ".join(layout.texts),
        "lemma": " ".join(layout.lemma),
        "lemma_alt": " ".join(layout.lemma_alt),
        "start_s": " ".join(layout.start_s),
        "to_end_s": " ".join(layout.to_end_s),
        "start_tens": " ".join(layout.start_tens),
        "to_end_tens": " ".join(layout.to_end_tens),
        "number": " ".join(layout.number),
        "translit": " ".join(layout.translit),
        "words": words,
    }


def call_document(call: Call, trackers: Sequence[str] = ()) -> dict[str, Any]:
    """The document stored for a call (its id is ``call.call_id``), with the ids of the
    trackers it mentions."""
    document = call.model_dump(mode="json", exclude={"utterances"})
    document["utterance_count"] = len(call.utterances)
    document["metrics"] = call_metrics(call).model_dump(mode="json")
    document["trackers"] = sorted(trackers)
    # Made by the tagger just before, when trackers exist; nothing needs it after this.
    layouts = call_layout(call, keep=False)
    document["utterances"] = [
        utterance_document(index, utterance, call.duration_s, layout)
        for index, (utterance, layout) in enumerate(zip(call.utterances, layouts, strict=True))
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
