"""Latin ↔ Cyrillic: one sound skeleton per word, so "salesforce" and "сейлсфорс" meet.

A Russian call says an English brand and the recognizer writes it either way ("Salesforce",
"сейлсфорс", "Сэйлсфорс"; "Bitrix", "битрикс"). ``mode=variants`` lets a query word also match
the words of the *other* script that sound like it, without anyone listing the spellings.

A word's key is its consonant skeleton: the Cyrillic spelled in Latin letters, both scripts
then read by the same rules — English digraphs to one sound (``ph`` f, ``ck`` k, ``x`` ks,
``w`` v, ``th`` t, ``sh``/``ж``/``ш``/``щ`` one sibilant, ``ch``/``ч``, ``j``/``дж``), ``z``
and ``s`` one sound (sales → сейлз), ``ц``/``ts``/``tz`` as ``s`` (pizza → пицца), ``h`` only
at the start of a word, vowels dropped (English spells them too freely: hubspot → хабспот,
sales → сейлс), doubled letters once (тинькофф → tinkoff). A word that starts with a vowel
keeps a mark for it. English ``c`` is ``s`` before e, i, y and ``k`` before a, o, u; elsewhere
("amocrm", "oracle") it is either, and the key keeps it open (``c``), which matches a Cyrillic
``с`` or ``к`` in that place.

Keys only ever match across scripts: the key token carries its script (``l:`` Latin, ``c:``
Cyrillic) and a query word asks for the other one. Russian words never meet other Russian words
this way ("кот" and "кит" share a skeleton and must stay apart), and a word whose skeleton is
shorter than ``MIN_SKELETON`` consonants gets no key: two-letter skeletons meet too much.
Precision and recall on a fixed list of brands and ordinary words: docs/query-language.md.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import product

MIN_SKELETON = 2
SHORT_SKELETON = 3  # fewer consonants than this: vowels count too
# Ambiguous letters of one word expanded at query time, at most: 2**6 keys.
MAX_OPEN_LETTERS = 6
NO_KEY = "-"  # the aligned field needs a token at every position; this one never matches

_CYRILLIC_TO_LATIN = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ж": "S",
    "з": "s",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "h",
    "ц": "s",
    "ч": "C",
    "ш": "S",
    "щ": "S",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
}
# English spellings of one sound, longest first; upper case marks a sound of several letters.
_LATIN_RULES = (
    ("sch", "S"),
    ("tch", "C"),
    ("dzh", "J"),
    ("sh", "S"),
    ("zh", "S"),
    ("ch", "C"),
    ("ph", "f"),
    ("th", "t"),
    ("wh", "v"),
    ("kh", "h"),
    ("ck", "k"),
    ("dg", "J"),
    ("oo", "u"),
    ("qu", "kv"),
    ("ts", "s"),
    ("tz", "s"),
    ("q", "k"),
    ("x", "ks"),
    ("w", "v"),  # after a vowel and before a consonant or the end it is one: see _W_VOWEL
    ("j", "J"),
    ("z", "s"),
)
_VOWELS = frozenset("aeiouy")
_LATIN_WORD = re.compile(r"^[a-z0-9']*[a-z][a-z0-9']*$")
_CYRILLIC_WORD = re.compile(r"^[а-яё0-9']*[а-яё][а-яё0-9']*$")
_SOFT_C = re.compile(r"c(?=[eiy])")
_W_VOWEL = re.compile(r"(?<=[aeiou])w(?![aeiouy])")  # "windows", "show": w is a vowel there
_SILENT_E = re.compile(r"(?<=[^aeiouy])e$")
_VOWEL_CLASS = {"a": "a", "o": "a", "e": "i", "i": "i", "y": "i", "u": "u"}
_HARD_C = re.compile(r"c(?=[aou])")


def script(term: str) -> str | None:
    """``"l"`` for a Latin word, ``"c"`` for a Cyrillic one, None for digits or a mix."""
    if _LATIN_WORD.match(term):
        return "l"
    if _CYRILLIC_WORD.match(term):
        return "c"
    return None


def _sounds(latin: str) -> str:
    text = _SOFT_C.sub("s", latin)
    text = _HARD_C.sub("k", text)
    text = _W_VOWEL.sub("u", text)
    text = _SILENT_E.sub("", text)
    for spelling, sound in _LATIN_RULES:
        text = text.replace(spelling, sound)
    return text


def _skeleton(sounds: str) -> str:
    sounds = re.sub(r"(.)\1+", r"\1", sounds.replace("'", ""))  # doubled letters once
    consonants = [
        s for i, s in enumerate(sounds) if s not in _VOWELS and (s != "h" or i == 0) and s.isalpha()
    ]
    # Short words keep their vowels (in three classes): without them "good" meets "год",
    # "zoom" meets "сам". Longer ones drop them, as English spells them too freely.
    keep_vowels = len(consonants) < SHORT_SKELETON
    out: list[str] = []
    for index, sound in enumerate(sounds):
        if sound in _VOWELS:
            vowel = _VOWEL_CLASS[sound]
            if index == 0:
                out.append("a")  # a word that starts with a vowel: one mark for any vowel
            elif keep_vowels and not (out and out[-1] in "aiu"):
                out.append(vowel)
            continue
        if sound == "h" and index > 0:
            continue
        if out and out[-1] == sound:
            continue  # doubled letters, and the same sound spelled twice
        out.append(sound)
    return "".join(out) if len(consonants) >= MIN_SKELETON else ""


@lru_cache(maxsize=200_000)
def skeleton(term: str) -> str:
    """The sound skeleton of a folded term ("" when it has none: digits, a mix, too short)."""
    kind = script(term)
    if kind == "c":
        latin = "".join(_CYRILLIC_TO_LATIN.get(ch, ch) for ch in term.replace("дж", "J"))
        return _skeleton(latin.replace("ts", "s"))
    if kind == "l":
        return _skeleton(_sounds(term))
    return ""


@lru_cache(maxsize=200_000)
def indexed_key(term: str) -> str:
    """The token stored for a term in the aligned transliteration field."""
    found = skeleton(term)
    kind = script(term)
    return f"{kind}:{found}" if found and kind else NO_KEY


@lru_cache(maxsize=50_000)
def variant_keys(term: str) -> tuple[str, ...]:
    """The indexed keys of the other script that a query term also matches (none for a word
    without a skeleton). An open English ``c`` stands for Cyrillic ``с`` or ``к``; a Cyrillic
    ``с`` or ``к`` also meets an English open ``c``."""
    found = skeleton(term)
    kind = script(term)
    if not found or kind is None:
        return ()
    if kind == "l":
        choices = [("s", "k") if sound == "c" else (sound,) for sound in found]
        other = "c"
    else:
        choices = [(sound, "c") if sound in "sk" else (sound,) for sound in found]
        other = "l"
    if sum(len(c) > 1 for c in choices) > MAX_OPEN_LETTERS:
        choices = [c[:1] for c in choices]
    return tuple(sorted({f"{other}:{''.join(p)}" for p in product(*choices)}))
