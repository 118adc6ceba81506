"""Numbers said in words: the value of "пятнадцать тысяч", "fifteen hundred", "15 тысяч".

A price in a Russian call comes out of the recognizer as "15 000", "15000" or "пятнадцать
тысяч рублей"; a search for ``15000`` must find all three. ``spoken_numbers`` reads a call's
terms (``indexer.search.text`` — folded, digits already normalised) and finds each run that
spells out one number, with its value written the way the term rules write a number (``15000``,
``2.5``), so the index can hold the value beside the words.

What one number is, read left to right, longest first:

* a group below a thousand — hundreds (``сто``…``девятьсот``; ``two hundred``, ``fifteen
  hundred``, ``a hundred``), then tens and a unit (``двадцать пять``, ``twenty-five``) or a
  teen or a unit, English ``and`` allowed after the hundreds;
* then optionally a scale (``тысяча``, ``миллион``, ``миллиард``; ``thousand``, ``million``,
  ``billion``) and more groups with smaller scales: ``два миллиона триста тысяч пятьсот``;
* ``полтора``/``полторы`` is 1.5 (``полторы тысячи`` is 1500), a bare scale is one of it
  (``тысяча рублей``), digits before a scale count (``15 тысяч`` is 15000);
* English decimals: ``two point five`` is 2.5 (the digits after "point" one by one).

Two units in a row are two numbers, not one: "четыре пять шесть" (a phone number dictated
digit by digit) is 4, 5 and 6, never 456. Russian words count in every inflected form
("пятнадцати тысячам"), found through their lemmas; English words count as written (so
"thousands of" is not a number). Ordinals ("пятнадцатого", "fifth") are not numbers here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache

from indexer.search.morphology import lemmas


class _Kind(Enum):
    UNIT = "unit"  # 0–9
    TEEN = "teen"  # 10–19
    TEN = "ten"  # 20, 30, … 90
    HUNDREDS = "hundreds"  # сто … девятьсот: a whole hundreds part on its own
    HUNDRED = "hundred"  # English "hundred": multiplies what came before it
    SCALE = "scale"  # thousand, million, billion
    HALF = "half"  # полтора
    AND = "and"
    A = "a"
    POINT = "point"
    DIGITS = "digits"  # a term already written in digits


_RUSSIAN = {
    "ноль": (_Kind.UNIT, 0),
    "нуль": (_Kind.UNIT, 0),
    "один": (_Kind.UNIT, 1),
    "два": (_Kind.UNIT, 2),
    "три": (_Kind.UNIT, 3),
    "четыре": (_Kind.UNIT, 4),
    "пять": (_Kind.UNIT, 5),
    "шесть": (_Kind.UNIT, 6),
    "семь": (_Kind.UNIT, 7),
    "восемь": (_Kind.UNIT, 8),
    "девять": (_Kind.UNIT, 9),
    "десять": (_Kind.TEEN, 10),
    "одиннадцать": (_Kind.TEEN, 11),
    "двенадцать": (_Kind.TEEN, 12),
    "тринадцать": (_Kind.TEEN, 13),
    "четырнадцать": (_Kind.TEEN, 14),
    "пятнадцать": (_Kind.TEEN, 15),
    "шестнадцать": (_Kind.TEEN, 16),
    "семнадцать": (_Kind.TEEN, 17),
    "восемнадцать": (_Kind.TEEN, 18),
    "девятнадцать": (_Kind.TEEN, 19),
    "двадцать": (_Kind.TEN, 20),
    "тридцать": (_Kind.TEN, 30),
    "сорок": (_Kind.TEN, 40),
    "пятьдесят": (_Kind.TEN, 50),
    "шестьдесят": (_Kind.TEN, 60),
    "семьдесят": (_Kind.TEN, 70),
    "восемьдесят": (_Kind.TEN, 80),
    "девяносто": (_Kind.TEN, 90),
    "сто": (_Kind.HUNDREDS, 100),
    "двести": (_Kind.HUNDREDS, 200),
    "триста": (_Kind.HUNDREDS, 300),
    "четыреста": (_Kind.HUNDREDS, 400),
    "пятьсот": (_Kind.HUNDREDS, 500),
    "шестьсот": (_Kind.HUNDREDS, 600),
    "семьсот": (_Kind.HUNDREDS, 700),
    "восемьсот": (_Kind.HUNDREDS, 800),
    "девятьсот": (_Kind.HUNDREDS, 900),
    "полтора": (_Kind.HALF, 0),
    "тысяча": (_Kind.SCALE, 1_000),
    "миллион": (_Kind.SCALE, 1_000_000),
    "миллиард": (_Kind.SCALE, 1_000_000_000),
    # How the recognizer abbreviates them ("15 тыс. рублей", "2 млн").
    "тыс": (_Kind.SCALE, 1_000),
    "млн": (_Kind.SCALE, 1_000_000),
    "млрд": (_Kind.SCALE, 1_000_000_000),
}

_ENGLISH_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_ENGLISH_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_ENGLISH_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ENGLISH = {
    **{word: (_Kind.UNIT, n) for n, word in enumerate(_ENGLISH_UNITS)},
    **{word: (_Kind.TEEN, 10 + n) for n, word in enumerate(_ENGLISH_TEENS)},
    **{word: (_Kind.TEN, 20 + 10 * n) for n, word in enumerate(_ENGLISH_TENS)},
    "hundred": (_Kind.HUNDRED, 100),
    "thousand": (_Kind.SCALE, 1_000),
    "million": (_Kind.SCALE, 1_000_000),
    "billion": (_Kind.SCALE, 1_000_000_000),
    "and": (_Kind.AND, 0),
    "a": (_Kind.A, 1),
    "point": (_Kind.POINT, 0),
}
_DIGITS = re.compile(r"^\d+(?:\.\d+)?$")
_CYRILLIC = re.compile(r"^[а-я]+$")


@dataclass(frozen=True, slots=True)
class SpokenNumber:
    """Terms ``first``..``last`` (inclusive) say the number ``value`` (as the term rules write
    a number: ``15000``, ``2.5``)."""

    first: int
    last: int
    value: str


@lru_cache(maxsize=50_000)
def _classify(term: str) -> tuple[_Kind, Decimal] | None:
    if _DIGITS.match(term):
        return _Kind.DIGITS, Decimal(term)
    if term in _ENGLISH:
        kind, value = _ENGLISH[term]
        return kind, Decimal(value)
    if _CYRILLIC.match(term):
        for lemma in (term, *lemmas(term)):
            if lemma in _RUSSIAN:
                kind, value = _RUSSIAN[lemma]
                return kind, Decimal("1.5") if kind is _Kind.HALF else Decimal(value)
    return None


def is_number_term(term: str) -> bool:
    """A term written in digits (``15000``, ``2.5``): the value a spoken number may have."""
    return _DIGITS.match(term) is not None


def max_spoken_width(term: str) -> int:
    """The most terms a number in digits can take said in words (by the rules above), so a
    query for it needs no alternative wider than that: per group of three digits at most five
    (``two hundred and twenty five``) and its scale; decimals one per digit after ``point``."""
    whole, _, fraction = term.partition(".")
    width = len(fraction) + 1 if fraction else 0
    digits = whole.lstrip("0") or "0"
    groups = [digits[max(0, end - 3) : end] for end in range(len(digits), 0, -3)]
    for scale, group in enumerate(groups):
        value = int(group)
        if value == 0:
            continue
        hundreds, rest = divmod(value, 100)
        words = (3 if hundreds else 0) + (2 if rest > 20 and rest % 10 else 1 if rest else 0)
        width += words + (1 if scale else 0)
    return max(width, 1)


def _format(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


class _Reader:
    """Recursive descent over the classified terms; each step returns the value read and the
    index after it, or None when nothing valid starts there."""

    def __init__(self, kinds: list[tuple[_Kind, Decimal] | None]) -> None:
        self.kinds = kinds  # _classify of each term

    def kind(self, at: int) -> _Kind | None:
        found = self.kinds[at] if at < len(self.kinds) else None
        return found[0] if found else None

    def value(self, at: int) -> Decimal:
        found = self.kinds[at]
        assert found is not None
        return found[1]

    def below_hundred(self, at: int) -> tuple[Decimal, int] | None:
        kind = self.kind(at)
        if kind is _Kind.TEN:
            value = self.value(at)
            if self.kind(at + 1) is _Kind.UNIT and self.value(at + 1) > 0:
                return value + self.value(at + 1), at + 2
            return value, at + 1
        if kind in (_Kind.TEEN, _Kind.UNIT):
            return self.value(at), at + 1
        return None

    def group(self, at: int) -> tuple[Decimal, int] | None:
        """A spoken number below a thousand (``fifteen hundred`` too, which English allows)."""
        hundreds: Decimal | None = None
        after = at
        if self.kind(at) is _Kind.HUNDREDS:
            hundreds, after = self.value(at), at + 1
        elif self.kind(at) is _Kind.A and self.kind(at + 1) is _Kind.HUNDRED:
            hundreds, after = Decimal(100), at + 2
        else:
            small = self.below_hundred(at)
            if small is None:
                return None
            if small[0] > 0 and self.kind(small[1]) is _Kind.HUNDRED:
                hundreds, after = small[0] * 100, small[1] + 1
            else:
                return small
        rest_at = after + 1 if self.kind(after) is _Kind.AND else after
        rest = self.below_hundred(rest_at)
        if rest is not None and rest[0] > 0:
            return hundreds + rest[0], rest[1]
        return hundreds, after

    def decimals(self, at: int) -> tuple[str, int] | None:
        """The digits after English "point", said one by one."""
        if self.kind(at) is not _Kind.POINT:
            return None
        digits = ""
        after = at + 1
        while self.kind(after) is _Kind.UNIT:
            digits += str(int(self.value(after)))
            after += 1
        return (digits, after) if digits else None

    def number(self, at: int) -> tuple[str, int] | None:
        """The longest spoken number starting at ``at``: its value and the index after it."""
        total = Decimal(0)
        smallest_scale: Decimal | None = None
        best: tuple[str, int] | None = None
        cursor = at
        while True:
            kind = self.kind(cursor)
            part: tuple[Decimal, int] | None
            spoken = kind not in (_Kind.DIGITS, None)
            if kind is _Kind.HALF or kind is _Kind.DIGITS:
                part = self.value(cursor), cursor + 1
            elif kind is _Kind.A and self.kind(cursor + 1) is _Kind.SCALE:
                part = Decimal(1), cursor + 1
            elif kind is _Kind.SCALE and cursor == at:
                part = Decimal(1), cursor  # a bare scale: "тысяча рублей"
            else:
                part = self.group(cursor)
            if part is None:
                return best
            value, after = part
            scale_kind = self.kind(after)
            if scale_kind is _Kind.SCALE and (
                smallest_scale is None or self.value(after) < smallest_scale
            ):
                smallest_scale = self.value(after)
                total += value * smallest_scale
                cursor = after + 1
                best = (_format(total), cursor)
                continue
            if kind is _Kind.DIGITS and best is None:
                return None  # digits alone are already a number; nothing spoken to add
            if smallest_scale is None or value < smallest_scale:
                if spoken or best is not None:
                    best = (_format(total + value), after)
                tail = self.decimals(after) if smallest_scale is None else None
                if tail is not None and value == value.to_integral_value():
                    best = (f"{_format(value)}.{tail[0]}", tail[1])
            return best


def number_words(terms: Sequence[str]) -> list[object | None]:
    """Per term, None unless it may be (part of) a number: ``spoken_numbers`` finds none in a
    run of terms whose every entry is None."""
    return list(map(_classify, terms))


def spoken_numbers(terms: Sequence[str]) -> list[SpokenNumber]:
    """Every number spelled out in ``terms`` (longest first, left to right, not overlapping)."""
    kinds = list(map(_classify, terms))
    found: list[SpokenNumber] = []
    if not any(kinds):
        return found  # most utterances say no number: skip the reading
    reader = _Reader(kinds)
    at = 0
    while at < len(terms):
        read = reader.number(at) if reader.kinds[at] is not None else None
        if read is None:
            at += 1
            continue
        value, after = read
        found.append(SpokenNumber(at, after - 1, value))
        at = after
    return found
