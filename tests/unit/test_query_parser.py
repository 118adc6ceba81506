"""The query language's parser: precedence, roles and windows pushed into matches, errors with
positions. (What the trees find is tested on the real Elasticsearch in test_query_language.py.)"""

from __future__ import annotations

import pytest

from indexer.errors import QueryError
from indexer.search.query import (
    And,
    Match,
    Mode,
    Near,
    Not,
    Or,
    Pattern,
    RoleFilter,
    Window,
    parse_query,
)

CLIENT, MANAGER, ANY = RoleFilter.CLIENT, RoleFilter.MANAGER, RoleFilter.ANY


def word(*terms: str, role: RoleFilter = ANY, window: Window | None = None) -> Match:
    return Match(Pattern(terms), role=role, window=window)


def test_words_side_by_side_are_and_and_or_binds_looser() -> None:
    assert parse_query("цена дорого OR скидка") == Or(
        (And((word("цена"), word("дорого"))), word("скидка"))
    )
    assert parse_query("цена AND (дорого OR скидка)") == And(
        (word("цена"), Or((word("дорого"), word("скидка"))))
    )


def test_not_is_pushed_onto_matches() -> None:
    assert parse_query("NOT NOT a") == word("a")
    assert parse_query("NOT (a AND NOT b)") == Or((Not(word("a")), word("b")))
    assert parse_query("a AND (b AND (c OR d))") == And(
        (word("a"), word("b"), Or((word("c"), word("d"))))
    )


def test_lower_case_operators_are_words() -> None:
    assert parse_query("not and or") == And((word("not"), word("and"), word("or")))


def test_role_scope_reaches_every_match_in_a_group() -> None:
    # NOT is pushed onto the matches: "not (a or b)" is "not a and not b".
    assert parse_query('client:"дорого" AND NOT manager:(скидка OR акция)') == And(
        (
            word("дорого", role=CLIENT),
            Not(word("скидка", role=MANAGER)),
            Not(word("акция", role=MANAGER)),
        )
    )
    assert parse_query("Клиент:дорого") == word("дорого", role=CLIENT)


def test_default_role_applies_where_the_query_names_none() -> None:
    assert parse_query("manager:скидка дорого", role=CLIENT) == And(
        (word("скидка", role=MANAGER), word("дорого", role=CLIENT))
    )


def test_near_prefix_window_and_mode() -> None:
    tree = parse_query('manager:"добрый день" NEAR/3 достав* WITHIN first 30s', mode=Mode.FORMS)

    assert tree == Match(
        Near(Pattern(("добрый", "день")), Pattern(("достав",), prefix=True), 3),
        role=MANAGER,
        mode=Mode.FORMS,
        window=Window("first", 30),
    )
    assert isinstance(tree, Match)
    assert tree.typed == '"добрый день" NEAR/3 достав*'


@pytest.mark.parametrize(
    ("typed", "window"),
    [
        ("WITHIN first 30s", Window("first", 30)),
        ("WITHIN FIRST 30 s", Window("first", 30)),
        ("WITHIN last 2m", Window("last", 120)),
        ("WITHIN last 90", Window("last", 90)),
    ],
)
def test_window_durations(typed: str, window: Window) -> None:
    assert parse_query(f"цена {typed}") == word("цена", window=window)


def test_window_after_a_group_reaches_each_match() -> None:
    window = Window("last", 60)
    assert parse_query("(дорого OR скидка) WITHIN last 60s") == Or(
        (word("дорого", window=window), word("скидка", window=window))
    )


def test_numbers_typed_in_groups_are_one_term() -> None:
    assert parse_query("15 000 рублей") == And((word("15000"), word("рублей")))


@pytest.mark.parametrize(
    ("query", "position", "message"),
    [
        ('"send me', 0, "unclosed quote"),
        ("цена AND", 8, "expected a word"),
        ("(цена OR дорого", 15, "expected ')'"),
        ("цена)", 4, "expected an operator"),
        ("OR цена", 0, "expected a word"),
        ("цена NEAR дорого", 5, "NEAR/<number"),
        ("(a OR b) NEAR/2 c", 9, "NEAR joins two words or phrases"),
        ("a NEAR/2 b NEAR/2 c", 11, "exactly two"),
        ("цена WITHIN 30s", 12, "'first' or 'last'"),
        ("цена WITHIN first soon", 18, "a duration"),
        ("цена WITHIN first 2h", 18, "a duration"),
        ("цена WITHIN first 0s", 18, "time window must be"),
        ("д*", 0, "prefix needs at least 2"),
        ("*", 0, "prefix needs at least 2"),
        ("це*на", 0, "may only end a word"),
        ("client:manager:цена", 7, "two roles"),
        ("client:", 7, "after client:"),
        ('""', 0, "empty phrase"),
        ("(цена WITHIN first 5s) WITHIN last 5s", 6, "inside another time window"),
    ],
)
def test_syntax_errors_name_the_position_and_what_was_expected(
    query: str, position: int, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)

    assert caught.value.position == position
    assert message in caught.value.message


def test_limits_on_length_depth_and_matches() -> None:
    with pytest.raises(QueryError, match="longer than 10"):
        parse_query("a" * 11, max_length=10)
    with pytest.raises(QueryError, match="more than 3 words"):
        parse_query("a b c d", max_matches=3)
    with pytest.raises(QueryError, match="nested parentheses"):
        parse_query("(" * 40 + "a" + ")" * 40)
    with pytest.raises(QueryError, match="no searchable words"):
        parse_query("   ")
