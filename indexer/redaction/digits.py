"""Digit sequences in spoken words: "четыре пять шесть семь", "forty five sixty seven",
"8 916 123-45-67", "double five", mixed, spread over several words.

The detector needs the digits a person read out and which words they came from, so that a span
of words (and so of seconds) can be masked. This is a small parser for reading numbers out
(digit by digit, in groups of two or three, with thousands), not a general number-words parser.

A *run* is a sequence of number words and written numbers that follow each other without any
other word between them (punctuation, fillers such as "ну", "э", "uh" and joiners such as
"плюс", "тире", "dash", "номер" are allowed) and without a pause longer than ``MAX_GAP_S``. A
run is made of *pieces*: one written number, or one spoken group ("сто двадцать три" is the
piece "123", "пять" the piece "5", "двадцать" then "два" is "22", but "пять" then "шесть" are
two pieces).
Detectors cut candidates at piece boundaries only, so a group is never split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from indexer.search.text import fold

# Between two words of one read-out number; longer means the speaker moved on.
MAX_GAP_S = 2.5

_UNITS = {
    "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "одну": 1, "раз": 1, "два": 2, "две": 2,
    "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14,
    "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18,
    "девятнадцать": 19, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "двадцать": 2, "тридцать": 3, "сорок": 4, "пятьдесят": 5, "шестьдесят": 6,
    "семьдесят": 7, "восемьдесят": 8, "девяносто": 9, "twenty": 2, "thirty": 3, "forty": 4,
    "fifty": 5, "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9,
}  # fmt: skip
_HUNDREDS = {
    "сто": 1, "двести": 2, "триста": 3, "четыреста": 4, "пятьсот": 5, "шестьсот": 6,
    "семьсот": 7, "восемьсот": 8, "девятьсот": 9,
}  # fmt: skip
_HUNDRED_WORDS = {"hundred"}
_THOUSAND_WORDS = {"тысяча", "тысячи", "тысяч", "тысячу", "thousand"}
_REPEAT = {"double": 2, "triple": 3}
# Allowed inside a run without adding digits.
JOINERS = frozenset(
    {"плюс", "plus", "тире", "дефис", "dash", "hyphen", "and", "и", "номер", "number"}
    | {"ну", "так", "вот", "значит", "э", "ээ", "эм", "мм", "uh", "um", "er", "erm", "hmm"}
)
# Spoken number words a recogniser may write hyphenated ("forty-eight", "one-nine-four-eight").
_SPOKEN_WORDS = frozenset(_UNITS) | frozenset(_TEENS) | frozenset(_TENS) | frozenset(_HUNDREDS)
_WRITTEN_NUMBER = re.compile(r"^\+?[\d()\-./,]*\d[\d()\-./,]*$")
_STRIP = re.compile(r"^[^\w+]+|[^\w]+$")


@dataclass(frozen=True, slots=True)
class Piece:
    """Digits read as one group, and the words (inclusive indices) they came from."""

    digits: str
    first_word: int
    last_word: int


@dataclass(frozen=True, slots=True)
class DigitRun:
    pieces: tuple[Piece, ...]
    plus: bool = False  # a "+" or "плюс" stood before or inside the run (an international phone)

    @property
    def digits(self) -> str:
        return "".join(piece.digits for piece in self.pieces)

    @property
    def first_word(self) -> int:
        return self.pieces[0].first_word

    @property
    def last_word(self) -> int:
        return self.pieces[-1].last_word


@lru_cache(maxsize=100_000)
def bare(word: str) -> str:
    """A word folded and stripped of surrounding punctuation ("Семь," → "семь"); cached, as
    speech repeats a small vocabulary."""
    return _STRIP.sub("", fold(word))


def _spoken_parts(text: str) -> list[str]:
    """A bare word as the number words it is made of: "forty-eight" is "forty" then "eight"
    (how Whisper writes a pair of digits read out), any other word itself."""
    if "-" in text:
        parts = text.split("-")
        if all(part in _SPOKEN_WORDS for part in parts):
            return parts
    return [text]


class _Group:
    """One spoken group being composed: hundreds, tens, units (and thousands before them)."""

    def __init__(self) -> None:
        self.hundreds: int | None = None
        self.tens: int | None = None  # a teen fills tens and units at once
        self.units: int | None = None
        self.thousands: int | None = None
        self.first_word = -1
        self.last_word = -1

    @property
    def empty(self) -> bool:
        return self.hundreds is None and self.tens is None and self.units is None

    def value(self) -> int:
        return (self.hundreds or 0) * 100 + (self.tens or 0) * 10 + (self.units or 0)

    def digits(self) -> str:
        if self.thousands is not None:
            return str(self.thousands * 1000 + self.value())
        if self.hundreds is not None:
            return f"{self.value():03d}"
        if self.tens is not None:
            return f"{self.value():02d}"
        return str(self.units)

    def _take(self, index: int) -> None:
        if self.first_word < 0:
            self.first_word = index
        self.last_word = index

    def add_units(self, value: int, index: int) -> bool:
        """False when the word starts a new group instead (its place is taken)."""
        if self.units is not None or (self.tens is not None and self.tens < 2):
            return False
        if value == 0 and not self.empty:
            return False  # "ноль" is read on its own ("сто ноль" is 100 then 0)
        self.units = value
        self._take(index)
        return True

    def add_tens(self, tens: int, units: int | None, index: int) -> bool:
        if self.tens is not None or self.units is not None:
            return False
        self.tens, self.units = tens, units
        self._take(index)
        return True

    def add_hundreds(self, value: int, index: int) -> bool:
        if not self.empty:
            return False
        self.hundreds = value
        self._take(index)
        return True

    def add_thousand(self, index: int) -> bool:
        if self.thousands is not None:
            return False
        self.thousands = self.value() if not self.empty else 1
        self.hundreds = self.tens = self.units = None
        self._take(index)
        return True


def digit_runs(
    words: Sequence[str], starts: Sequence[float] | None = None, ends: Sequence[float] | None = None
) -> list[DigitRun]:
    """Every run of read-out or written digits in ``words`` (with optional word times)."""
    runs: list[DigitRun] = []
    pieces: list[Piece] = []
    plus = False
    group = _Group()
    repeat = 1
    plus_word: int | None = None  # a spoken "плюс" before the first piece belongs to the run
    last_number_end: float | None = None

    def add(piece: Piece) -> None:
        if not pieces and plus_word is not None:
            piece = Piece(piece.digits, plus_word, piece.last_word)
        pieces.append(piece)

    def flush_group() -> None:
        nonlocal group
        if not group.empty or group.thousands is not None:
            add(Piece(group.digits(), group.first_word, group.last_word))
        group = _Group()

    def end_run() -> None:
        nonlocal pieces, plus, repeat, plus_word
        flush_group()
        if pieces:
            runs.append(DigitRun(tuple(pieces), plus))
        pieces, plus, repeat, plus_word = [], False, 1, None

    def take(text: str, index: int) -> bool:
        """One word (or one part of a hyphenated one) into the run; False: not a number."""
        nonlocal repeat, plus, plus_word
        number = True
        if _WRITTEN_NUMBER.match(text):
            flush_group()
            if text.startswith("+"):
                plus = True
            add(Piece(re.sub(r"\D", "", text), index, index))
        elif text in _UNITS:
            value = _UNITS[text]
            if repeat > 1:
                flush_group()
                add(Piece(str(value) * repeat, index - 1, index))
                repeat = 1
            elif not group.add_units(value, index):
                flush_group()
                group.add_units(value, index)
        elif text in _TEENS:
            if not group.add_tens(_TEENS[text] // 10, _TEENS[text] % 10, index):
                flush_group()
                group.add_tens(_TEENS[text] // 10, _TEENS[text] % 10, index)
        elif text in _TENS:
            if not group.add_tens(_TENS[text], None, index):
                flush_group()
                group.add_tens(_TENS[text], None, index)
        elif text in _HUNDREDS:
            if not group.add_hundreds(_HUNDREDS[text], index):
                flush_group()
                group.add_hundreds(_HUNDREDS[text], index)
        elif text in _HUNDRED_WORDS and group.units is not None and group.hundreds is None:
            # "one hundred twenty three": the units spoken so far become the hundreds
            group.hundreds, group.units = group.units, None
            group.last_word = index
        elif text in _THOUSAND_WORDS:
            if not group.add_thousand(index):
                flush_group()
                group.add_thousand(index)
        elif text in _REPEAT:
            flush_group()
            repeat = _REPEAT[text]
        elif text in JOINERS:
            number = False
            if text in ("плюс", "plus"):
                plus = True
                if not pieces and group.empty:
                    plus_word = index
        else:
            end_run()
            number = False
        return number

    for index, word in enumerate(words):
        text = bare(word)
        if (
            starts is not None
            and last_number_end is not None
            and starts[index] - last_number_end > MAX_GAP_S
        ):
            end_run()
        if not text:
            continue  # punctuation alone
        number = True
        for part in _spoken_parts(text):
            number = take(part, index)
        if number and ends is not None:
            last_number_end = ends[index]
    end_run()
    return runs
