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

from indexer.search.layout import CallLayout, TermLayout, call_layout, second_token
from indexer.search.morphology import lemmas
from indexer.search.numbers import is_number_term
from indexer.search.query import And, Match, Mode, Near, Node, Not, Pattern, RoleFilter, Window
from indexer.search.transliteration import variant_keys
from indexer.transcript import Call


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A match inside one utterance: term positions ``first``..``last`` (inclusive), and the
    parts to highlight (the pattern itself, or both sides of a NEAR)."""

    first: int
    last: int
    parts: tuple[tuple[int, int], ...]


def _term_ends(
    pattern: Pattern, k: int, layout: TermLayout, position: int, mode: Mode
) -> list[int]:
    """Where term ``k`` of the pattern ends when it starts at ``position`` (none: no match).

    A term covers one position, except a number in digits matching a number said in words,
    which covers the words said ("15000" over "пятнадцать тысяч")."""
    wanted = pattern.terms[k]
    if pattern.prefix and k == pattern.width - 1:
        return [position] if layout.terms[position].text.startswith(wanted) else []
    ends: list[int] = []
    if mode is Mode.FORMS:
        forms = lemmas(wanted)
        if layout.lemma[position] in forms or layout.lemma_alt[position] in forms:
            ends.append(position)
    elif layout.terms[position].text == wanted or (
        mode is Mode.VARIANTS and layout.translit[position] in variant_keys(wanted)
    ):
        ends.append(position)
    if is_number_term(wanted):
        spoken = layout.numbers_at.get(position)
        if spoken is not None and spoken[0] == wanted:
            ends.append(position + spoken[1] - 1)
    return ends


def _first_term_positions(pattern: Pattern, layout: TermLayout, mode: Mode) -> Sequence[int]:
    """The positions where the pattern's first term may be, in order: every position where
    ``_term_ends`` can find it (and maybe more), looked up in the layout's token indexes."""
    wanted = pattern.terms[0]
    if pattern.prefix and pattern.width == 1:
        return range(len(layout.terms))
    found: list[list[int]] = []
    if mode is Mode.FORMS:
        by_lemma = layout.lemma_positions
        found += [by_lemma[form] for form in lemmas(wanted) if form in by_lemma]
    else:
        at = layout.positions_of(wanted)
        if at:
            found.append(at)
        if mode is Mode.VARIANTS:
            by_key = layout.translit_positions
            found += [by_key[key] for key in variant_keys(wanted) if key in by_key]
    if is_number_term(wanted) and layout.numbers_at:
        found.append(list(layout.numbers_at))
    if len(found) <= 1:
        return found[0] if found else ()
    return sorted(set().union(*found))


def pattern_spans(pattern: Pattern, layout: TermLayout, mode: Mode) -> list[tuple[int, int]]:
    size = len(layout.terms)
    spans: list[tuple[int, int]] = []
    for start in _first_term_positions(pattern, layout, mode):
        # The first term rules out almost every position: only those it may be at are tried.
        ends = _term_ends(pattern, 0, layout, start, mode)
        for k in range(1, pattern.width):
            ends = [
                end
                for previous in ends
                if previous + 1 < size
                for end in _term_ends(pattern, k, layout, previous + 1, mode)
            ]
            if not ends:
                break
        spans.extend((start, end) for end in sorted(set(ends)))
    return spans


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
            key.append((mode.value, frozenset([term])))
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
    return [
        Occurrence(first, last, tuple(sorted(set(candidates[(first, last)]))))
        for first, last in sorted(minimal)
        if (last - first + 1) - _width(candidates[(first, last)]) <= near.gap
    ]


def _width(sides: tuple[tuple[int, int], tuple[int, int]]) -> int:
    """Positions both sides of a NEAR take (a number said in words takes several)."""
    return sum(last - first + 1 for first, last in sides)


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


def _said_in_call(pattern: Pattern, layout: CallLayout, mode: Mode) -> bool:
    """False only when the pattern's first term is said nowhere in the call (so no utterance
    can match); True when that cannot be told from the call's terms and lemmas alone."""
    wanted = pattern.terms[0]
    if (pattern.prefix and pattern.width == 1) or mode is Mode.VARIANTS or is_number_term(wanted):
        return True
    if mode is Mode.FORMS:
        return any(form in layout.lemmas for form in lemmas(wanted))
    return wanted in layout.terms


def _may_match(match: Match, layout: CallLayout) -> bool:
    if isinstance(match.what, Near):
        return _said_in_call(match.what.left, layout, match.mode) and _said_in_call(
            match.what.right, layout, match.mode
        )
    return _said_in_call(match.what, layout, match.mode)


def call_matches(node: Node, call: Call, layouts: Sequence[TermLayout] | None = None) -> bool:
    """Whether the whole call satisfies the query tree (AND/OR/NOT over the call)."""
    if not isinstance(layouts, CallLayout):
        layouts = call_layout(call) if layouts is None else CallLayout(layouts)
    if isinstance(node, Match):
        return _may_match(node, layouts) and any(
            role_allows(node, utterance.role.value) and occurrences(node, layout)
            for utterance, layout in zip(call.utterances, layouts, strict=True)
        )
    if isinstance(node, Not):
        return not call_matches(node.item, call, layouts)
    results = (call_matches(item, call, layouts) for item in node.items)
    return all(results) if isinstance(node, And) else any(results)
