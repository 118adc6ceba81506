"""What a search returns: the calls found, each with the places a query matched.

The API answers these records as they are (``api.routes.search``); a call's header fields are
declared once here (``CallHeader``) and reused by the API's whole-call answer.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from indexer.metrics import CallMetrics
from indexer.transcript import AudioInfo, Client, Direction, Manager, Role


class SortOrder(StrEnum):
    RELEVANCE = "relevance"
    NEWEST = "newest"
    OLDEST = "oldest"


class Hit(BaseModel):
    """One place in a call where a searched word or phrase was said."""

    utterance_index: int = Field(description="Position of the utterance in the call's dialogue.")
    role: Role
    speaker: str
    matched: str = Field(
        description="The part of the query this hit is for (a word, phrase, prefix or NEAR)."
    )
    text: str = Field(description="The whole utterance, for display.")
    spans: list[tuple[int, int]] = Field(
        description="Character [start, end) ranges of the matched words inside `text` "
        "(two for a NEAR: one per side)."
    )
    start: float = Field(description="Second at which the first matched word starts: seek here.")
    end: float = Field(description="Second at which the last matched word ends.")


class CallHeader(BaseModel):
    """What identifies and describes a call, declared once for every answer that shows one."""

    call_id: str
    started_at: datetime
    duration_s: float
    language: str
    direction: Direction
    manager: Manager
    client: Client
    audio: AudioInfo


class CallResult(CallHeader):
    metrics: CallMetrics | None = Field(
        default=None, description="Call metrics (indexer/metrics.py); filter and sort by them."
    )
    trackers: list[str] = Field(
        default_factory=list, description="Ids of the trackers the call mentions."
    )
    hits: list[Hit] = Field(description="Every matched place in the call, in time order.")


class SearchResponse(BaseModel):
    total: int = Field(description="Number of calls that match, over all pages.")
    took_ms: int
    calls: list[CallResult]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "total": 1,
                    "took_ms": 7,
                    "next_cursor": None,
                    "calls": [
                        {
                            "call_id": "en-0003-contract",
                            "started_at": "2026-03-02T10:15:00+03:00",
                            "duration_s": 312.4,
                            "language": "en",
                            "direction": "outbound",
                            "manager": {"id": "m-smith", "name": "Anna Smith"},
                            "client": {"id": "c-042", "name": "Bob Lee", "phone": "+1555"},
                            "audio": {
                                "uri": "file:///calls/en-0003-contract.wav",
                                "channels": 2,
                                "sample_rate": 8000,
                            },
                            "hits": [
                                {
                                    "utterance_index": 14,
                                    "role": "client",
                                    "speaker": "SPEAKER_01",
                                    "matched": "send me the contract",
                                    "text": "OK, send me the contract today.",
                                    "spans": [[4, 24]],
                                    "start": 101.32,
                                    "end": 102.71,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    }
