"""Numbers said in words (indexer.search.numbers)."""

from __future__ import annotations

import pytest

from indexer.search.numbers import SpokenNumber, spoken_numbers
from indexer.search.text import terms_of_text


def _values(text: str) -> list[tuple[str, str]]:
    terms = terms_of_text(text)
    return [(" ".join(terms[n.first : n.last + 1]), n.value) for n in spoken_numbers(terms)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("пятнадцать тысяч", "15000"),
        ("пятнадцати тысячам", "15000"),
        ("пятнадцатью тысячами", "15000"),
        ("две тысячи пятьсот", "2500"),
        ("двух тысяч пятисот", "2500"),
        ("полторы тысячи", "1500"),
        ("полутора миллионов", "1500000"),
        ("тысяча двести", "1200"),
        ("сто двадцать пять тысяч триста сорок два", "125342"),
        ("два миллиона триста тысяч", "2300000"),
        ("четыреста девяносто шесть", "496"),
        ("15 тысяч", "15000"),
        ("2,5 тысячи", "2500"),
        ("15 тыс.", "15000"),
        ("2 млн", "2000000"),
        ("fifteen hundred", "1500"),
        ("fifteen thousand", "15000"),
        ("two hundred and fifty", "250"),
        ("twenty-five", "25"),
        ("a thousand", "1000"),
        ("a hundred and one", "101"),
        ("one million two hundred thousand", "1200000"),
        ("two point five", "2.5"),
        ("ninety nine", "99"),
        ("полтора", "1.5"),
    ],
)
def test_a_spoken_number_is_one_span_with_its_value(text: str, value: str) -> None:
    terms = terms_of_text(text)
    assert spoken_numbers(terms) == [SpokenNumber(0, len(terms) - 1, value)]


def test_numbers_inside_speech_keep_their_places() -> None:
    assert _values("итого пятнадцать тысяч рублей в месяц") == [("пятнадцать тысяч", "15000")]
    assert _values("it costs fifteen hundred dollars a month") == [("fifteen hundred", "1500")]
    assert _values("за тысячу рублей") == [("тысячу", "1000")]


def test_digit_by_digit_is_separate_digits() -> None:
    assert _values("четыре пять шесть") == [("четыре", "4"), ("пять", "5"), ("шесть", "6")]
    assert _values("four five six") == [("four", "4"), ("five", "5"), ("six", "6")]
    assert _values("twenty twenty") == [("twenty", "20"), ("twenty", "20")]
    assert _values("сто сто") == [("сто", "100"), ("сто", "100")]


def test_words_that_only_look_like_numbers_are_not() -> None:
    # Plain digits are numbers already; English plurals, "a", "and", "point" alone are words.
    assert _values("15000 рублей") == []
    assert _values("thousands of calls and a point") == []
    assert _values("пятнадцатого числа") == []
    # Two numbers with a gap: scales must fall, so "тысяча тысяча" is twice a thousand.
    assert _values("тысяча тысяча") == [("тысяча", "1000"), ("тысяча", "1000")]
