"""Where a query matches, computed in Python over an utterance's positions.

Elasticsearch decides *which* calls and utterances match (``indexer.search.compiler``); this module
finds *where* inside an utterance — the term positions, hence the exact words, their seconds and
character spans — and decides whether a whole call matches a query tree (used to tag calls with
trackers at index time). It follows Lucene's interval semantics exactly, including minimal
intervals for NEAR, and a property test compares the two on generated transcripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from indexer.search.layout import TermLayout, second_token, term_layout
from indexer.search.morphology import lemmas
from indexer.search.query import And, Match, Mode, Near, Node, Not, Pattern, RoleFilter, Window
from indexer.transcript import Call


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A match inside one utterance: term positions ``first``..``last`` (inclusive), and the
    parts to highlight (the pattern itself, or both sides of a NEAR)."""

    first: int
    last: int
    parts: tuple[tuple[int, int], ...]


def _term_matches(pattern: Pattern, k: int, layout: TermLayout, position: int, mode: Mode) -> bool:
    wanted = pattern.terms[k]
    if pattern.prefix and k == pattern.width - 1:
        return layout.terms[position].text.startswith(wanted)
    if mode is Mode.FORMS:
        forms = lemmas(wanted)
        return layout.lemma[position] in forms or layout.lemma_alt[position] in forms
    return layout.terms[position].text == wanted


def pattern_spans(pattern: Pattern, layout: TermLayout, mode: Mode) -> list[tuple[int, int]]:
    width = pattern.width
    # The first term rules out almost every position: test it alone before the rest.
    return [
        (start, start + width - 1)
        for start in range(len(layout.terms) - width + 1)
        if _term_matches(pattern, 0, layout, start, mode)
        and all(_term_matches(pattern, k, layout, start + k, mode) for k in range(1, width))
    ]


def _source_key(pattern: Pattern, mode: Mode) -> tuple[tuple[str, frozenset[str]], ...]:
    """What makes two patterns the same interval source to Lucene, which de-duplicates equal
    sources: in forms mode "цена" and "цены" are one source (the same lemmas, an unordered
    set), so ``цена NEAR/0 цены`` means said twice, like ``цена NEAR/0 цена``."""
    key = []
    for k, term in enumerate(pattern.terms):
        if pattern.prefix and k == pattern.width - 1:
            key.append(("prefix", frozenset([term])))
        elif mode is Mode.FORMS:
            key.append(("forms", frozenset(lemmas(term))))
        else:
            key.append(("exact", frozenset([term])))
    return tuple(key)


def _near_occurrences(near: Near, layout: TermLayout, mode: Mode) -> list[Occurrence]:
    """Lucene's unordered intervals under ``max_gaps``, as Elasticsearch runs ``all_of``."""
    lefts = pattern_spans(near.left, layout, mode)
    if _source_key(near.left, mode) == _source_key(near.right, mode):
        # Lucene turns unordered(x, x) into "x twice": each pair of successive occurrences,
        # gaps counted between them.
        return [
            Occurrence(a[0], b[1], (a, b))
            for a, b in pairwise(lefts)
            if b[0] - a[1] - 1 <= near.gap
        ]
    rights = pattern_spans(near.right, layout, mode)
    # Otherwise the minimal spans holding one occurrence of each side (the sides may overlap),
    # kept when the gaps — span width minus both sides' widths — are at most ``gap``.
    candidates = {(min(a[0], b[0]), max(a[1], b[1])): (a, b) for a in lefts for b in rights}
    minimal = [
        span
        for span in candidates
        if not any(
            other != span and span[0] <= other[0] and other[1] <= span[1] for other in candidates
        )
    ]
    inner = near.left.width + near.right.width
    return [
        Occurrence(first, last, tuple(sorted(set(candidates[(first, last)]))))
        for first, last in sorted(minimal)
        if (last - first + 1) - inner <= near.gap
    ]


def _in_window(window: Window, layout: TermLayout, first: int, last: int) -> bool:
    """Some position of the span lies in the window (Lucene's ``containing`` filter)."""
    tokens = layout.start_s if window.edge == "first" else layout.to_end_s
    bound = second_token(window.seconds - 1)
    return any(tokens[position] <= bound for position in range(first, last + 1))


def occurrences(match: Match, layout: TermLayout) -> list[Occurrence]:
    """Every place in the utterance where the match is said (roles are checked by the caller)."""
    if isinstance(match.what, Near):
        found = _near_occurrences(match.what, layout, match.mode)
    else:
        found = [
            Occurrence(first, last, ((first, last),))
            for first, last in pattern_spans(match.what, layout, match.mode)
        ]
    if match.window is not None:
        window = match.window
        found = [o for o in found if _in_window(window, layout, o.first, o.last)]
    return found


def role_allows(match: Match, role: str) -> bool:
    return match.role is RoleFilter.ANY or match.role.value == role


def call_matches(node: Node, call: Call, layouts: Sequence[TermLayout] | None = None) -> bool:
    """Whether the whole call satisfies the query tree (AND/OR/NOT over the call)."""
    if layouts is None:
        layouts = [term_layout(u.words, call.duration_s) for u in call.utterances]
    if isinstance(node, Match):
        return any(
            role_allows(node, utterance.role.value) and occurrences(node, layout)
            for utterance, layout in zip(call.utterances, layouts, strict=True)
        )
    if isinstance(node, Not):
        return not call_matches(node.item, call, layouts)
    results = (call_matches(item, call, layouts) for item in node.items)
    return all(results) if isinstance(node, And) else any(results)
