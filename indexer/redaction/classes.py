"""The classes of personal data Earshot redacts, and the token each leaves in a transcript.

A masked span of words becomes one word, its class token (``[card]``), which the search rules
keep as one term so that an analyst can search for it like any word.
"""

from __future__ import annotations

import re
from enum import StrEnum


class PiiClass(StrEnum):
    CARD = "card"
    PHONE = "phone"
    EMAIL = "email"
    PASSPORT = "passport"
    INN = "inn"
    SNILS = "snils"
    ADDRESS = "address"

    @property
    def token(self) -> str:
        return f"[{self.value}]"


CLASS_TOKENS = frozenset(pii.token for pii in PiiClass)
# A class token inside any text, for the term rules (indexer.search.text) and for checks.
CLASS_TOKEN_PATTERN = r"\[(?:" + "|".join(pii.value for pii in PiiClass) + r")\]"
CLASS_TOKEN_RE = re.compile(CLASS_TOKEN_PATTERN)
