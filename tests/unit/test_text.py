"""Term rules shared by indexing and querying (indexer/search/text.py)."""

from __future__ import annotations

import pytest

from indexer.search.text import Term, terms_of_text, terms_of_words


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
