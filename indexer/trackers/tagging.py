"""Which trackers a call mentions: a tracker's phrases as a query, and the per-call tagger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from indexer.index.loader import Tagger
from indexer.search.compiler import CompiledQuery, utterance_query
from indexer.search.layout import call_layout
from indexer.search.matching import call_matches
from indexer.search.query import Match, Node, Or, Pattern, matches
from indexer.search.text import terms_of_text
from indexer.settings import Settings
from indexer.trackers.model import Tracker, TrackerSpec
from indexer.trackers.storage import list_trackers
from indexer.transcript import Call
from indexer.vocabulary import EMPTY, Vocabulary, load_vocabulary


def tracker_matches(tracker: TrackerSpec) -> tuple[Match, ...]:
    """One query-language match per phrase, with the tracker's role and mode."""
    return tuple(
        Match(
            Pattern(tuple(terms_of_text(phrase))),
            role=tracker.role,
            mode=tracker.mode,
            typed=phrase,
        )
        for phrase in tracker.phrases
    )


def tracker_tree(tracker: TrackerSpec, vocabulary: Vocabulary = EMPTY) -> Node:
    """The tracker as a query tree: any of its phrases, each in every spelling the vocabulary
    gives it (what ``call_matches`` evaluates)."""
    found = tracker_matches(tracker)
    return vocabulary.expand(found[0] if len(found) == 1 else Or(found))


def mention_query(tracker: TrackerSpec, vocabulary: Vocabulary = EMPTY) -> dict[str, Any]:
    """The query an utterance (a nested document) satisfies when it is a mention."""
    return {
        "bool": {
            "should": [
                utterance_query(match) for match, _ in matches(tracker_tree(tracker, vocabulary))
            ],
            "minimum_should_match": 1,
        }
    }


def call_query(tracker: TrackerSpec, vocabulary: Vocabulary = EMPTY) -> dict[str, Any]:
    """The query a call satisfies when it mentions the tracker."""
    return CompiledQuery(tracker_tree(tracker, vocabulary)).query


@dataclass(frozen=True)
class TrackerTagger:
    """The tags of a call: the ids of the trackers it mentions, sorted. A plain object, not a
    closure, so the loader can send it to its worker processes."""

    trees: tuple[tuple[str, Node], ...]

    def __call__(self, call: Call) -> list[str]:
        if not self.trees:
            return []
        layout = call_layout(call)  # the document of the call is built from it next
        return sorted(
            tracker_id for tracker_id, tree in self.trees if call_matches(tree, call, layout)
        )


def tagger(trackers: Sequence[Tracker], vocabulary: Vocabulary = EMPTY) -> Tagger:
    """The tags of a call: the ids of the given trackers it mentions, sorted."""
    return TrackerTagger(
        tuple((tracker.id, tracker_tree(tracker, vocabulary)) for tracker in trackers)
    )


def current_tagger(es: Elasticsearch, settings: Settings) -> Tagger:
    """Tags by the trackers and vocabulary stored now (for the loader: read once per load)."""
    return tagger(list_trackers(es, settings), load_vocabulary(es, settings))
