"""Term rules shared by indexing and querying (indexer/search/text.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.search.text import (
    Term,
    aligned_terms_of_words,
    fold,
    terms_of_text,
    terms_of_words,
    word_terms,
)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Ёлка, ЕЩЁ!", ["елка", "еще"]),
        ("e-mail don’t", ["e", "mail", "don't"]),
        ("15,000 15.000 15 000 15000", ["15000", "15000", "15000", "15000"]),
        ("2,5 2.5 1,234.56", ["2.5", "2.5", "1234.56"]),
        ("100, 200, 300", ["100", "200", "300"]),
        ("3D mp3 10%", ["3d", "mp3", "10"]),
        ("— ... !", []),
    ],
)
def test_terms_of_text(text: str, terms: list[str]) -> None:
    assert terms_of_text(text) == terms


def test_number_groups_point_back_at_every_word() -> None:
    assert terms_of_words(["за", "1", "500", "000", "рублей"]) == [
        Term("за", 0, 0),
        Term("1500000", 1, 3),
        Term("рублей", 4, 4),
    ]


def test_long_terms_are_cut_like_lucene_does() -> None:
    assert [len(t) for t in terms_of_text("a" * 600)] == [255, 255, 90]


def terms_before_the_flags(words: list[str]) -> list[Term]:
    """``terms_of_words`` as it was before each word's digit-group shape was cached with its
    terms (restated as the oracle: the cached flags must decide exactly what this decided)."""
    terms: list[Term] = []
    open_group = False
    for index, word in enumerate(words):
        folded, pieces = fold(word).strip(), word_terms(word)
        if (
            open_group
            and pieces
            and folded[:1].isdigit()
            and DIGIT_GROUP.match(pieces[0])
            and terms
        ):
            previous = terms[-1]
            terms[-1] = Term(previous.text + pieces[0], previous.first_word, index)
            pieces = pieces[1:]
            open_group = not pieces and folded.isdigit()
        else:
            open_group = False
        terms.extend(Term(piece, index, index) for piece in pieces)
        if (
            not open_group
            and len(pieces) == 1
            and folded.isdigit()
            and DIGIT_GROUP_HEAD.match(folded)
        ):
            open_group = True
    return terms


DIGIT_GROUP = re.compile(r"^\d{3}$")
DIGIT_GROUP_HEAD = re.compile(r"^\d{1,3}$")
# Words around digit groups: groups of every width, with punctuation, spaces, letters, NFKC
# digits, class tokens, a number longer than a term may be.
TRICKY_WORDS = [
    "1", "15", "500", "000", "0000", "12", "999", " 000", "000.", "000,", "1,5", "15.000",
    "15,000", "2.5", "1.2.3", "a1", "3d", "mp3", "10%", "—", "e-mail", "don't", "-", "[card]",
    "١٢٣", "１２", "５００", "1" * 300, "1" * 258, "рублей", "тысяч", "Ёлка", "",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TRICKY_WORDS) | st.text(max_size=6), max_size=12))
def test_terms_are_what_they_were_before_the_flags(words: list[str]) -> None:
    assert terms_of_words(words) == terms_before_the_flags(words)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(TRICKY_WORDS) | st.text(max_size=6), max_size=12))
def test_terms_said_aligned_are_one_per_word(words: list[str]) -> None:
    terms, aligned = aligned_terms_of_words(words)

    assert terms == terms_before_the_flags(words)
    if aligned:  # the layout then reads word i's seconds for term i
        assert [(t.first_word, t.last_word) for t in terms] == [(i, i) for i in range(len(words))]


def test_plain_words_take_the_aligned_path_and_numbers_do_not() -> None:
    assert aligned_terms_of_words(["Пришлите", "договор,", "please"]) == (
        [Term("пришлите", 0, 0), Term("договор", 1, 1), Term("please", 2, 2)],
        True,
    )
    assert not aligned_terms_of_words(["за", "15", "000"])[1]
    assert not aligned_terms_of_words(["e-mail", "—"])[1]
