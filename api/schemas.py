"""What the API answers besides search results (``indexer.search.results``): HTTP records."""

from __future__ import annotations

from pydantic import BaseModel, Field

from indexer.metrics import CallMetrics
from indexer.search import CallHeader
from indexer.transcript import AsrInfo, Role


class CallDetail(CallHeader):
    """A whole call with its dialogue and word timings (the transcript contract)."""

    asr: AsrInfo
    warnings: list[str]
    metrics: CallMetrics
    trackers: list[str] = Field(description="Ids of the trackers the call mentions.")
    utterances: list[UtteranceDetail]


class WordDetail(BaseModel):
    text: str
    start: float
    end: float
    score: float | None
    char_start: int | None = Field(description="Where the word starts in the utterance text.")
    char_end: int | None


class UtteranceDetail(BaseModel):
    index: int
    speaker: str
    role: Role
    start: float
    end: float
    text: str
    words: list[WordDetail]


class AudioUrl(BaseModel):
    url: str = Field(
        description="Path of the recording with its signature; valid without a key until "
        "`expires_at`.",
        examples=["/v1/calls/en-0002-pricing/audio?exp=1767225600&scope=read&sig=..."],
    )
    expires_at: int = Field(description="Unix seconds after which the URL is refused (403).")


class Problem(BaseModel):
    """Every error answer: what went wrong, in words a person can act on."""

    detail: str
    position: int | None = Field(default=None, description="Where in `q` a syntax error is.")


class Health(BaseModel):
    status: str
    detail: str | None = None


CallDetail.model_rebuild()
