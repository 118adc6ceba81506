"""Query trees rewritten by the vocabulary (indexer.vocabulary.Vocabulary.expand)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from indexer.errors import QueryError
from indexer.search.query import Match, Near, Not, Or, Pattern, parse_query
from indexer.vocabulary import TermSpec, Vocabulary

BITRIX = TermSpec(canonical="Битрикс24", spellings=["Bitrix24", "битрикс 24"])
HUBSPOT = TermSpec(canonical="HubSpot", spellings=["хабспот"])
VOCABULARY = Vocabulary.of([BITRIX, HUBSPOT])


def _phrases(node: object) -> set[tuple[str, ...]]:
    assert isinstance(node, Or)
    found = set()
    for item in node.items:
        assert isinstance(item, Match)
        assert isinstance(item.what, Pattern)
        found.add(item.what.terms)
    return found


def test_each_spelling_stands_for_all_of_them() -> None:
    expected = {("битрикс24",), ("bitrix24",), ("битрикс", "24")}
    for typed in ["Битрикс24", "bitrix24", '"битрикс 24"']:
        assert _phrases(VOCABULARY.expand(parse_query(typed))) == expected


def test_inside_a_phrase_and_near_and_not() -> None:
    phrase = VOCABULARY.expand(parse_query('"у нас bitrix24 стоит"'))
    assert _phrases(phrase) == {
        ("у", "нас", "битрикс24", "стоит"),
        ("у", "нас", "bitrix24", "стоит"),
        ("у", "нас", "битрикс", "24", "стоит"),
    }
    near = VOCABULARY.expand(parse_query("hubspot NEAR/3 bitrix24"))
    assert isinstance(near, Or)
    assert len(near.items) == 2 * 3
    assert all(isinstance(m, Match) and isinstance(m.what, Near) for m in near.items)
    negated = VOCABULARY.expand(parse_query("NOT хабспот"))
    assert isinstance(negated, Not)
    assert _phrases(negated.item) == {("hubspot",), ("хабспот",)}


def test_other_words_and_prefixes_are_left_alone() -> None:
    for typed in ["битрикс", "24", "hub*", "битрикс24*"]:
        tree = parse_query(typed)
        assert VOCABULARY.expand(tree) == tree
    assert Vocabulary().expand(parse_query("bitrix24")) == parse_query("bitrix24")


def test_too_many_combinations_is_a_query_error() -> None:
    many = Vocabulary.of(
        [TermSpec(canonical=f"w{n}", spellings=[f"v{n}{k}" for k in range(7)]) for n in range(3)]
    )
    with pytest.raises(QueryError, match="spellings"):
        many.expand(parse_query('"w0 w1 w2"'))


def test_terms_must_be_searchable() -> None:
    with pytest.raises(ValidationError):
        TermSpec(canonical="...")
    with pytest.raises(ValidationError):
        TermSpec(canonical="ok", spellings=["—"])
    with pytest.raises(ValidationError):
        TermSpec(canonical="ok", language="russian")
    assert VOCABULARY.hotwords("ru") == ["Битрикс24", "HubSpot"]


def test_hotwords_per_language_fit_the_prompt() -> None:
    vocabulary = Vocabulary.of(
        [
            TermSpec(canonical="amoCRM"),
            TermSpec(canonical="Битрикс24", language="ru"),
            TermSpec(canonical="Zendesk", language="en"),
            *[TermSpec(canonical=f"Term{n:03d}", language="en") for n in range(100)],
        ]
    )
    found = vocabulary.hotwords_by_language()
    assert found["any"] == "amoCRM"
    assert found["ru"] == "amoCRM, Битрикс24"
    assert found["en"].startswith("amoCRM, Zendesk, Term000, ")
    assert len(found["en"]) <= 400
    assert "Term099" not in found["en"]
