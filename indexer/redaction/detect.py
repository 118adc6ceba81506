"""Rule-based detection of personal data in a call's words, in Russian and English.

Detection runs over each speaker's words in call order (across utterances, so a card read out
over two utterances is one span) and returns spans of words, so the seconds are known. Rules:

* **Numbers** (``indexer.redaction.digits``): a run of read-out or written digits is cut at
  group boundaries into candidates, longest first. A candidate is

  - a *card*: 13-19 digits starting with 2-6 that pass the Luhn check; any 13-19 digits after a
    card keyword ("карта", "card") — a misheard digit must not leak the other fifteen; a run of
    3-4 digits right after "CVV", "CVC", "код безопасности", "на обороте" (the security code);
  - a *phone*: 11 digits starting with 7 or 8 (Russia) or 1 (NANP), 10 digits starting with
    2-9, 11-13 digits after a "+"; 5-7 digits only after a phone keyword ("телефон", "phone");
  - a *passport*: 10 digits (Russian series and number) after "паспорт"/"серия"/"passport";
    9 digits after "passport";
  - an *ИНН*: 12 digits with both check digits right; 10 digits with the check digit right
    after "ИНН"/"tax"; 10 or 12 digits after "ИНН" whatever the check;
  - a *СНИЛС*: 11 digits with the check number right that cannot be a phone (not 7, 8 or 1
    first); 11 digits after "СНИЛС" whatever the check.

  A keyword counts when it stands at most ``CONTEXT_WORDS`` words before the run; the nearest
  one wins. Digits said while another speaker's number was being said (``said_elsewhere``: a
  telephony echo of the client's card on the manager's line, crosstalk, a party reading along)
  are that number, whatever this speaker's recogniser made of them: one group alone ("1948"),
  no keyword before it.

  A word of another kind of number ("заказ", "order", "счёт", "invoice", "договор",
  "артикул", "трек") nearer than any personal data keyword means an order number: only a card
  (Luhn) and a 12-digit ИНН are still taken from such a run. A currency word right after the
  candidate ("рублей", "dollars") means a price: nothing is taken.
* **E-mails**: a written address (``ivan@mail.ru``), or one spoken: local part, "собака" / "at"
  (/"эт"), domain labels joined by "точка" / "dot", ending in a known top-level domain.
* **Addresses** (best effort): a street word ("улица", "проспект", "street", "avenue", ...) with
  a number within three words after it (Russian) or a number then up to three capitalised words
  then a street word (English), extended over "дом", "корпус", "квартира", "apartment", ... and
  their numbers. Addresses without a street word and a number are not found (docs/privacy.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.redaction.classes import PiiClass
from indexer.redaction.digits import DigitRun, bare, digit_runs

CONTEXT_WORDS = 8
# The classes of read-out numbers: what digits heard during another speaker's number are.
NUMBER_CLASSES = frozenset(
    {PiiClass.CARD, PiiClass.PHONE, PiiClass.PASSPORT, PiiClass.INN, PiiClass.SNILS}
)
# An echo arrives later by the line's delay (tens of ms), and a faint one's word times are less
# sure than the speaker's own: digits this close to another speaker's number still overlap it.
ECHO_SLACK_S = 0.5

# Keywords by word start (folded): "карты", "картой" start with "карт".
_KEYWORDS: dict[PiiClass, tuple[str, ...]] = {
    PiiClass.CARD: ("карт", "card", "visa", "виза", "мастеркард", "mastercard", "мир", "cvv"),
    PiiClass.PHONE: (
        "телефон", "мобильн", "сотов", "позвон", "перезвон", "звонит", "набер", "whatsapp",
        "ватсап", "вотсап", "телеграм", "phone", "mobile", "cell", "reach", "call",
    ),
    PiiClass.PASSPORT: ("паспорт", "серия", "passport"),
    PiiClass.INN: ("инн", "inn", "налог", "tax", "tin"),
    PiiClass.SNILS: ("снилс", "страхов", "пенсион", "snils"),
}  # fmt: skip
# A card's security code: 3 or 4 digits right after one of these (PCI DSS forbids keeping it).
_SECURITY_CODE_WORDS = (
    "cvv", "cvc", "сививи", "сивиси", "безопасност", "security", "обороте", "обратной",
)  # fmt: skip
SECURITY_CODE_WORDS_BEFORE = 4
_ORDER_WORDS = (
    "заказ", "счет", "договор", "артикул", "накладн", "трек", "заявк", "тикет", "лицев",
    "order", "invoice", "contract", "tracking", "ticket", "reference", "ref", "item", "sku",
)  # fmt: skip
_CURRENCY_WORDS = (
    "руб", "рубл", "доллар", "евро", "тысяч", "миллион", "миллиард", "dollar", "euro", "bucks",
    "usd", "eur", "rub", "million", "billion",
    "percent", "процент",
)  # fmt: skip
_AT_WORDS = frozenset({"собака", "собачка", "at", "эт", "@"})
_DOT_WORDS = frozenset({"точка", "dot", "."})
_LOCAL_JOINERS = {
    "точка": ".", "dot": ".", "подчеркивание": "_", "underscore": "_", "дефис": "-",
    "dash": "-", "тире": "-", "hyphen": "-",
}  # fmt: skip
_TLDS = frozenset(
    {"ru", "рф", "com", "net", "org", "io", "info", "biz", "me", "co", "uk", "de", "su", "kz",
     "by", "ua", "us", "eu", "ру", "ком", "нет", "орг", "су", "ио", "инфо", "кз", "бай"}
)  # fmt: skip
_WRITTEN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_LABEL = re.compile(r"^[^\W_][\w.-]*$")
_WRITTEN_DOMAIN = re.compile(r"^[^\W_][\w-]*(?:\.[\w-]+)+$")

_RU_STREET = (
    "улиц", "проспект", "переул", "шоссе", "бульвар", "набережн", "площад", "проезд", "тупик",
    "алле", "микрорайон",
)  # fmt: skip
_RU_STREET_SHORT = frozenset({"ул", "пр", "пр-т", "пер", "мкр", "пл", "наб", "б-р"})
_EN_STREET = frozenset(
    {"street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive",
     "dr", "court", "ct", "place", "pl", "way", "square", "sq", "terrace", "highway"}
)  # fmt: skip
_ADDRESS_PARTS = frozenset(
    {"дом", "д", "корпус", "корп", "к", "строение", "стр", "квартира", "кв", "офис", "оф",
     "подъезд", "этаж", "литера", "apartment", "apt", "suite", "unit", "flat", "floor"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Detection:
    """Words ``first``..``last`` (inclusive, indices into the words given) are of class ``pii``."""

    pii: PiiClass
    first: int
    last: int


def _starts_with(word: str, stems: tuple[str, ...]) -> bool:
    return word.startswith(stems)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _inn_check(digits: str, weights: Sequence[int]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_valid(digits: str) -> bool:
    """The check digits of a Russian taxpayer number (10 digits: companies, 12: people)."""
    if len(digits) == 10:
        return _inn_check(digits, (2, 4, 10, 3, 5, 9, 4, 6, 8)) == int(digits[9])
    if len(digits) == 12:
        first = _inn_check(digits, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
        second = _inn_check(digits, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
        return first == int(digits[10]) and second == int(digits[11])
    return False


def snils_valid(digits: str) -> bool:
    """The check number (last two digits) of a Russian pension insurance number (11 digits)."""
    if len(digits) != 11:
        return False
    total = sum(int(d) * (9 - i) for i, d in enumerate(digits[:9]))
    check = total % 101
    return (0 if check == 100 else check) == int(digits[9:])


def _context(words: Sequence[str], first: int) -> PiiClass | str | None:
    """The nearest keyword before word ``first``: a class, "order" (an order number), or None."""
    for index in range(first - 1, max(first - 1 - CONTEXT_WORDS, -1), -1):
        word = words[index]
        for pii, stems in _KEYWORDS.items():
            if _starts_with(word, stems):
                return pii
        if _starts_with(word, _ORDER_WORDS):
            return "order"
    return None


def _number_class(digits: str, plus: bool, context: PiiClass | str | None) -> PiiClass | None:
    size = len(digits)
    if context == "order":
        if 13 <= size <= 19 and digits[0] in "23456" and luhn_valid(digits):
            return PiiClass.CARD
        if size == 12 and inn_valid(digits):
            return PiiClass.INN
        return None
    if context is PiiClass.CARD and 13 <= size <= 19:
        return PiiClass.CARD
    if context is PiiClass.PASSPORT and size in (9, 10):
        return PiiClass.PASSPORT
    if context is PiiClass.INN and size in (10, 12):
        return PiiClass.INN
    if context is PiiClass.SNILS and size == 11:
        return PiiClass.SNILS
    if context is PiiClass.PHONE and 5 <= size <= 13:
        return PiiClass.PHONE
    if 13 <= size <= 19 and digits[0] in "23456" and luhn_valid(digits):
        return PiiClass.CARD
    if size == 12 and inn_valid(digits):
        return PiiClass.INN
    if plus and 11 <= size <= 13:
        return PiiClass.PHONE
    if size == 11 and digits[0] in "781":
        return PiiClass.PHONE
    if size == 10 and digits[0] in "23456789":
        return PiiClass.PHONE
    if size == 11 and snils_valid(digits):
        return PiiClass.SNILS
    return None


def _price_follows(words: Sequence[str], last: int) -> bool:
    return last + 1 < len(words) and _starts_with(words[last + 1], _CURRENCY_WORDS)


def _run_detections(run: DigitRun, words: Sequence[str]) -> list[Detection]:
    found: list[Detection] = []
    pieces = run.pieces
    security_code = any(
        _starts_with(words[i], _SECURITY_CODE_WORDS)
        for i in range(max(0, run.first_word - SECURITY_CODE_WORDS_BEFORE), run.first_word)
    )
    if security_code and len(run.digits) in (3, 4) and not _price_follows(words, run.last_word):
        return [Detection(PiiClass.CARD, run.first_word, run.last_word)]
    start = 0
    while start < len(pieces):
        taken = False
        for stop in range(len(pieces), start, -1):
            window = pieces[start:stop]
            digits = "".join(piece.digits for piece in window)
            if len(digits) > 19:
                continue
            first, last = window[0].first_word, window[-1].last_word
            if _price_follows(words, last):
                continue
            pii = _number_class(digits, run.plus, _context(words, run.first_word))
            if pii is not None:
                found.append(Detection(pii, first, last))
                start = stop
                taken = True
                break
        if not taken:
            start += 1
    return found


def _echoed_numbers(
    runs: Sequence[DigitRun],
    starts: Sequence[float],
    ends: Sequence[float],
    said_elsewhere: Sequence[tuple[PiiClass, float, float]],
) -> list[Detection]:
    """Pieces of ``runs`` said while one of ``said_elsewhere`` (another speaker's numbers:
    class, start and end seconds) was, each stretch of consecutive such pieces one detection
    of that number's class."""
    found: list[Detection] = []
    for run in runs:
        previous: PiiClass | None = None
        for piece in run.pieces:
            start, end = starts[piece.first_word], ends[piece.last_word]
            pii = next(
                (
                    pii
                    for pii, said_start, said_end in said_elsewhere
                    if start < said_end + ECHO_SLACK_S and end > said_start - ECHO_SLACK_S
                ),
                None,
            )
            if pii is not None and pii == previous:
                found[-1] = Detection(pii, found[-1].first, piece.last_word)
            elif pii is not None:
                found.append(Detection(pii, piece.first_word, piece.last_word))
            previous = pii
    return found


def _emails(words: Sequence[str], raw: Sequence[str]) -> list[Detection]:
    found: list[Detection] = []
    for index, word in enumerate(raw):
        if _WRITTEN_EMAIL.search(word):
            found.append(Detection(PiiClass.EMAIL, index, index))
    for at, word in enumerate(words):
        if word not in _AT_WORDS or at == 0:
            continue
        if found and found[-1].last >= at:
            continue
        end = _domain_end(words, at + 1)
        if end is None:
            continue
        begin = at - 1
        if not _LABEL.match(words[begin]) or words[begin] in _LOCAL_JOINERS:
            continue
        while begin >= 2 and words[begin - 1] in _LOCAL_JOINERS and _LABEL.match(words[begin - 2]):
            begin -= 2
        found.append(Detection(PiiClass.EMAIL, begin, end))
    return found


def _domain_end(words: Sequence[str], first: int) -> int | None:
    """The last word of a domain spoken from ``first`` ("mail точка ру", "gmail.com")."""
    if first >= len(words) or not _LABEL.match(words[first]):
        return None
    if _WRITTEN_DOMAIN.match(words[first]) and words[first].rsplit(".", 1)[1] in _TLDS:
        return first
    end: int | None = None
    index = first
    while (
        index + 2 < len(words) and words[index + 1] in _DOT_WORDS and _LABEL.match(words[index + 2])
    ):
        index += 2
        if words[index] in _TLDS:
            end = index
    return end


def _is_number_word(word: str) -> bool:
    return bool(word) and any(run.pieces for run in digit_runs([word]))


# Capitalised at the start of a sentence, never a street's name.
_NOT_NAMES = frozenset(
    {"на", "в", "во", "по", "с", "со", "к", "у", "из", "от", "до", "за", "мы", "я", "вы", "это",
     "наш", "наша", "мой", "моя", "а", "и", "но", "да", "нет", "вот", "там", "тут", "the", "on",
     "in", "at", "we", "i", "it", "our", "my", "a", "and", "but", "yes", "no", "so"}
)  # fmt: skip


def _is_name(raw: str, word: str) -> bool:
    return raw[:1].isupper() and word not in _NOT_NAMES


def _is_street_word(word: str) -> bool:
    return word in _RU_STREET_SHORT or _starts_with(word, _RU_STREET)


def _russian_address(
    words: Sequence[str], raw: Sequence[str], index: int
) -> tuple[int, int] | None:
    """A street word, a name (a capitalised word before or after it) and a number ("улица
    Ленина, 5", "Ленинский проспект 12"); "на улице 30 градусов" has no name and is not one."""
    named_before = index > 0 and _is_name(raw[index - 1], words[index - 1])
    for k in range(index + 1, min(index + 5, len(words))):
        if _is_number_word(words[k]):
            named_after = any(_is_name(raw[j], words[j]) for j in range(index + 1, k))
            if not (named_before or named_after):
                return None
            begin = index
            while begin > 0 and index - begin < 2 and _is_name(raw[begin - 1], words[begin - 1]):
                begin -= 1
            return begin, k
    return None


def _house_and_flat(words: Sequence[str], index: int) -> tuple[int, int] | None:
    """A house number, then a flat or a building, without a street: "дом 5, квартира 12"."""
    if words[index] not in ("дом", "д") or index + 3 >= len(words):
        return None
    if not _is_number_word(words[index + 1]):
        return None
    for k in (index + 2, index + 3):
        if words[k] in _ADDRESS_PARTS and k + 1 < len(words) and _is_number_word(words[k + 1]):
            return index, k + 1
    return None


def _english_address(
    words: Sequence[str], raw: Sequence[str], index: int
) -> tuple[int, int] | None:
    """A number, capitalised words, a street word ("221 Baker Street", "twelve Oak Lane"); or a
    capitalised name, a street word, a number ("Main Street, number 45")."""
    # The name must not open the sentence ("I'll drive 20 miles" is no address).
    opens = index < 2 or raw[index - 2][-1:] in ".!?"
    if not opens and _is_name(raw[index - 1], words[index - 1]):
        for k in range(index + 1, min(index + 4, len(words))):
            if _is_number_word(words[k]) and words[k] not in ("one", "a"):
                return index - 1, k
            if words[k] not in ("number", "no", ""):
                break
    begin = index - 1
    while begin > 0 and index - begin <= 3 and _is_name(raw[begin], words[begin]):
        if _is_number_word(words[begin - 1]):
            begin -= 1
            while begin > 0 and _is_number_word(words[begin - 1]):
                begin -= 1
            return begin, index
        begin -= 1
    return None


def _addresses(words: Sequence[str], raw: Sequence[str]) -> list[Detection]:
    found: list[Detection] = []
    for index, word in enumerate(words):
        if found and found[-1].last >= index:
            continue
        span: tuple[int, int] | None = None
        if _is_street_word(word):
            span = _russian_address(words, raw, index)
        elif word in ("дом", "д"):
            span = _house_and_flat(words, index)
        elif word in _EN_STREET and index >= 1:
            span = _english_address(words, raw, index)
        if span is None:
            continue
        begin, end = span
        # house, building, flat: "дом 5 корпус 2 квартира 17", "apartment 4B"
        cursor = end + 1
        while cursor < len(words):
            if _is_number_word(words[cursor]) or re.fullmatch(r"\d+[a-zа-я]?", words[cursor]):
                end = cursor
            elif words[cursor] and words[cursor] not in _ADDRESS_PARTS:
                break
            cursor += 1
        found.append(Detection(PiiClass.ADDRESS, begin, end))
    return found


def detect_words(
    raw: Sequence[str],
    starts: Sequence[float] | None = None,
    ends: Sequence[float] | None = None,
    said_elsewhere: Sequence[tuple[PiiClass, float, float]] = (),
) -> list[Detection]:
    """Personal data among one speaker's words (in order), as non-overlapping spans sorted by
    their first word. ``starts``/``ends`` are the words' times (a long pause ends a number);
    ``said_elsewhere``, the numbers other speakers of the call said (class, start and end
    seconds, ``NUMBER_CLASSES`` only): digits said meanwhile are theirs."""
    words = [bare(word) for word in raw]
    found = _emails(words, raw) + _addresses(words, raw)
    runs = digit_runs(raw, starts, ends)
    for run in runs:
        found += _run_detections(run, words)
    if said_elsewhere and starts is not None and ends is not None:
        found += _echoed_numbers(runs, starts, ends, said_elsewhere)
    # Where two rules claim the same words the earlier-found kind (e-mail, address) keeps them.
    kept: list[Detection] = []
    for detection in sorted(found, key=lambda d: (d.first, -(d.last - d.first))):
        if kept and detection.first <= kept[-1].last:
            if detection.last > kept[-1].last and detection.pii == kept[-1].pii:
                kept[-1] = Detection(detection.pii, kept[-1].first, detection.last)
            continue
        kept.append(detection)
    return kept
