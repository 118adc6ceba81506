"""Turning a transcript into the Elasticsearch document of ``mappings/calls.json`` and back."""

from __future__ import annotations

from typing import Any

from indexer.text import terms_of_words
from indexer.transcript import Call, Utterance, Word


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


def utterance_document(index: int, utterance: Utterance) -> dict[str, Any]:
    spans = locate_words(utterance.text, utterance.words)
    words = []
    for word, span in zip(utterance.words, spans, strict=True):
        entry: dict[str, Any] = word.model_dump(mode="json")
        entry["char_start"], entry["char_end"] = span if span else (None, None)
        words.append(entry)
    terms = terms_of_words([word.text for word in utterance.words])
    return {
        "index": index,
        "speaker": utterance.speaker,
        "role": utterance.role.value,
        "start": utterance.start,
        "end": utterance.end,
        "text": utterance.text,
        "terms": " ".join(term.text for term in terms),
        "words": words,
    }


def call_document(call: Call) -> dict[str, Any]:
    """The document stored for a call; its id is ``call.call_id``."""
    document = call.model_dump(mode="json", exclude={"utterances"})
    document["utterance_count"] = len(call.utterances)
    document["utterances"] = [
        utterance_document(index, utterance) for index, utterance in enumerate(call.utterances)
    ]
    return document


def call_from_document(source: dict[str, Any]) -> Call:
    """The transcript back from a stored document (derived fields dropped)."""
    data = {key: value for key, value in source.items() if key != "utterance_count"}
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
