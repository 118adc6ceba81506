"""Trackers as records: what a tracker is, what creating one takes, and the id rule."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.search.query import Mode, RoleFilter
from indexer.search.text import terms_of_text

TRACKER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


MAX_PHRASES = 50


MAX_PHRASE_LENGTH = 200


class TrackerSpec(BaseModel):
    """What a user writes to define a tracker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, examples=["Competitors"])
    phrases: list[str] = Field(
        min_length=1,
        max_length=MAX_PHRASES,
        description="Exact phrases (words said one after another inside one utterance); case, "
        "punctuation and ё/е do not matter, numbers match however they were written.",
        examples=[["amoCRM", "Битрикс", "1С CRM"]],
    )
    role: RoleFilter = Field(default=RoleFilter.ANY, description="Count only what this role says.")
    mode: Mode = Field(
        default=Mode.EXACT,
        description="`exact`: the words as said; `forms`: any form of them (цена → цены, ценой); "
        "`variants`: as said or spelled in the other alphabet (salesforce → сейлсфорс). "
        "Vocabulary terms match each of their spellings in every mode.",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("name is blank")
        return name.strip()

    @field_validator("phrases")
    @classmethod
    def _searchable(cls, phrases: list[str]) -> list[str]:
        """Each phrase must hold a searchable term under the query language's term rules."""
        kept: list[str] = []
        for number, phrase in enumerate(phrases, start=1):
            text = " ".join(phrase.split())
            if len(text) > MAX_PHRASE_LENGTH:
                raise ValueError(f"phrase {number} is longer than {MAX_PHRASE_LENGTH} characters")
            if not terms_of_text(text):
                raise ValueError(
                    f"phrase {number} ({phrase!r}) has no searchable words (letters or digits)"
                )
            kept.append(text)
        return list(dict.fromkeys(kept))


class TrackerCreate(TrackerSpec):
    id: str | None = Field(
        default=None,
        pattern=TRACKER_ID_PATTERN,
        description="Lower-case letters, digits, - and _; it is the tag calls carry (Kibana "
        "shows it). Left out: made from the name, or random when the name has no Latin "
        "letters.",
        examples=["competitors"],
    )


class Tracker(TrackerSpec):
    id: str
    created_at: datetime
    updated_at: datetime
    version: int = Field(
        default=0,
        description="Grows with every write; calls are tagged by the latest version only.",
    )


class TrackerList(BaseModel):
    trackers: list[Tracker]
