"""A query tree (``indexer.search.query``) as an Elasticsearch query over the calls index.

Each match becomes a ``nested`` query on ``utterances``, so it can only be satisfied inside one
utterance, with the role as a filter in the same nested query. Inside, an ``intervals`` query
runs over the aligned position fields of ``mappings/calls.json``:

* a word or phrase: consecutive terms (``match`` with ``max_gaps: 0``);
* ``mode=forms``: at each position, any lemma of the query word equal to either indexed lemma;
* ``mode=variants``: the word itself, or a word of the other script with the same sound key
  (``utterances.translit``);
* a number in digits also matches a number said in words: its value token in
  ``utterances.number`` followed by one ``+`` per further word it took, one alternative per
  width, so the interval covers exactly the words said;
* a prefix: Lucene's prefix intervals (at most ``max_clause_count`` expansions);
* ``a NEAR/n b``: both sides unordered, at most ``n`` positions between them;
* ``WITHIN first|last Ns``: only intervals *containing* a position whose second lies in range
  (``start_s`` from the call's start, ``to_end_s`` before its end): the ten-second tokens the
  window covers whole (``start_tens``, ``to_end_tens``) or one of the second tokens past them
  (``indexer.search.layout.window_ranges``).

``AND``/``OR``/``NOT`` are ``bool`` queries at the call level, so a negation holds for the whole
call. Only matches that count positively carry ``inner_hits``: the utterances the API reads hits
from. Intervals, nested and bool queries are all in Elasticsearch's server module, so the stripped
test distribution runs exactly what the full one does.
"""

from __future__ import annotations

from typing import Any

from indexer.search.layout import MAX_NUMBER_WIDTH, NUMBER_CONTINUES, number_token, window_ranges
from indexer.search.morphology import lemmas
from indexer.search.numbers import is_number_term, max_spoken_width
from indexer.search.query import And, Match, Mode, Near, Node, Not, Pattern, RoleFilter, Window
from indexer.search.transliteration import variant_keys

NESTED_PATH = "utterances"
TERMS_FIELD = "utterances.terms"
LEMMA_FIELDS = ("utterances.lemma", "utterances.lemma_alt")
NUMBER_FIELD = "utterances.number"
TRANSLIT_FIELD = "utterances.translit"
# Per edge: the field of second tokens, and the field of ten-second tokens.
WINDOW_FIELDS = {
    "first": ("utterances.start_s", "utterances.start_tens"),
    "last": ("utterances.to_end_s", "utterances.to_end_tens"),
}


def _exact(terms: tuple[str, ...]) -> dict[str, Any]:
    return {
        "match": {
            "query": " ".join(terms),
            "ordered": True,
            "max_gaps": 0,
            "analyzer": "whitespace",
        }
    }


def _forms(term: str) -> dict[str, Any]:
    rules = [
        {"match": {"query": lemma, "analyzer": "whitespace", "use_field": field}}
        for lemma in lemmas(term)
        for field in LEMMA_FIELDS
    ]
    return {"any_of": {"intervals": rules}}


def _in_field(query: str, field: str) -> dict[str, Any]:
    return {
        "match": {
            "query": query,
            "ordered": True,
            "max_gaps": 0,
            "analyzer": "whitespace",
            "use_field": field,
        }
    }


def _spoken_number(term: str) -> list[dict[str, Any]]:
    """The number ``term`` said in words: one alternative per width it can take."""
    return [
        _in_field(
            " ".join([number_token(term, width), *[NUMBER_CONTINUES] * (width - 1)]), NUMBER_FIELD
        )
        for width in range(1, min(max_spoken_width(term), MAX_NUMBER_WIDTH) + 1)
    ]


def _term_rule(term: str, mode: Mode) -> dict[str, Any]:
    forms = mode is Mode.FORMS
    alternatives: list[dict[str, Any]] = (
        _forms(term)["any_of"]["intervals"] if forms else [_exact((term,))]
    )
    if mode is Mode.VARIANTS:
        alternatives += [_in_field(key, TRANSLIT_FIELD) for key in variant_keys(term)]
    if is_number_term(term):
        alternatives += _spoken_number(term)
    return alternatives[0] if len(alternatives) == 1 else {"any_of": {"intervals": alternatives}}


def _sequence(rules: list[dict[str, Any]]) -> dict[str, Any]:
    if len(rules) == 1:
        return rules[0]
    return {"all_of": {"intervals": rules, "ordered": True, "max_gaps": 0}}


def _plain(term: str, mode: Mode) -> bool:
    """The term matches only itself: a run of such terms is one phrase query."""
    return mode is Mode.EXACT and not is_number_term(term)


def pattern_rule(pattern: Pattern, mode: Mode) -> dict[str, Any]:
    words = pattern.terms[:-1] if pattern.prefix else pattern.terms
    rules: list[dict[str, Any]] = []
    if words:
        if all(_plain(term, mode) for term in words):
            rules = [_exact(words)]
        else:
            rules = [_term_rule(term, mode) for term in words]
    if pattern.prefix:
        rules.append({"prefix": {"prefix": pattern.terms[-1], "analyzer": "whitespace"}})
    return _sequence(rules)


def _window_filter(window: Window) -> dict[str, Any]:
    seconds_field, tens_field = WINDOW_FIELDS[window.edge]
    tens, seconds = window_ranges(window.seconds)
    ranges = [
        {"range": {"gte": bounds[0], "lte": bounds[1], "use_field": field}}
        for bounds, field in ((tens, tens_field), (seconds, seconds_field))
        if bounds is not None
    ]
    return {"containing": ranges[0] if len(ranges) == 1 else {"any_of": {"intervals": ranges}}}


def match_rule(match: Match) -> dict[str, Any]:
    """The intervals rule for one match, over ``utterances.terms`` and its aligned fields."""
    what = match.what
    if isinstance(what, Near):
        rule = {
            "all_of": {
                "intervals": [
                    pattern_rule(what.left, match.mode),
                    pattern_rule(what.right, match.mode),
                ],
                "ordered": False,
                "max_gaps": what.gap,
            }
        }
    else:
        rule = pattern_rule(what, match.mode)
    if match.window is None:
        return rule
    # ``prefix`` rules take no filter; wrapping in any_of gives it one without changing it.
    return {"any_of": {"intervals": [rule], "filter": _window_filter(match.window)}}


def utterance_query(match: Match) -> dict[str, Any]:
    """What one utterance must satisfy for the match: the query *inside* the nested query, for
    use where Elasticsearch already works on utterances (a ``nested`` aggregation's filter)."""
    inner: dict[str, Any] = {"bool": {"must": [{"intervals": {TERMS_FIELD: match_rule(match)}}]}}
    if match.role is not RoleFilter.ANY:
        inner["bool"]["filter"] = [{"term": {"utterances.role": match.role.value}}]
    return inner


def match_query(match: Match, inner_hits: dict[str, Any] | None = None) -> dict[str, Any]:
    nested: dict[str, Any] = {
        "path": NESTED_PATH,
        "query": utterance_query(match),
        "score_mode": "sum",
    }
    if inner_hits is not None:
        nested["inner_hits"] = inner_hits
    return {"nested": nested}


class CompiledQuery:
    """The Elasticsearch query of a tree, and which match each named inner hit belongs to."""

    def __init__(self, tree: Node, inner_hits: dict[str, Any] | None = None) -> None:
        self.named: dict[str, Match] = {}
        self._names: set[Match] = set()
        self._inner_hits = inner_hits
        self.query = self._compile(tree, positive=True)

    def _compile(self, node: Node, *, positive: bool) -> dict[str, Any]:
        if isinstance(node, Match):
            hits = None
            # An identical match already named returns the same utterances: naming it again
            # would only fetch (and answer) every hit once more.
            if positive and self._inner_hits is not None and node not in self._names:
                name = f"m{len(self.named)}"
                self._names.add(node)
                self.named[name] = node
                hits = {"name": name, **self._inner_hits}
            return match_query(node, hits)
        if isinstance(node, Not):
            return {"bool": {"must_not": [self._compile(node.item, positive=not positive)]}}
        # ``a AND a`` is ``a``, ``a OR a`` is ``a``: each distinct operand compiles once, so a
        # repeated term costs what the term costs.
        items = [self._compile(item, positive=positive) for item in dict.fromkeys(node.items)]
        if isinstance(node, And):
            return {"bool": {"must": items}}
        return {"bool": {"should": items, "minimum_should_match": 1}}
