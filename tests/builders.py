"""Small, explicit transcripts for tests: every word lasts 0.4 s, 0.1 s apart, so the seconds
a hit must report can be computed from the word's position."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.index.loader import load_calls
from indexer.settings import Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import Call, SourcedCall

WORD_S = 0.4
GAP_S = 0.1
TURN_GAP_S = 0.7


def make_call(
    call_id: str,
    turns: list[tuple[str, str]],
    *,
    language: str = "en",
    manager_id: str = "m-1",
    client_id: str = "c-1",
    started_at: datetime | None = None,
    direction: str = "outbound",
) -> Call:
    """A call from (role, text) turns; words are the whitespace-split text."""
    clock = 0.0
    utterances: list[dict[str, Any]] = []
    for role, text in turns:
        words = []
        for token in text.split():
            words.append({"text": token, "start": round(clock, 3), "end": round(clock + WORD_S, 3)})
            clock += WORD_S + GAP_S
        speaker = {"manager": "SPEAKER_00", "client": "SPEAKER_01"}.get(role, "SPEAKER_02")
        utterances.append(
            {
                "speaker": speaker,
                "role": role,
                "start": words[0]["start"] if words else round(clock, 3),
                "end": words[-1]["end"] if words else round(clock, 3),
                "text": text,
                "words": words,
            }
        )
        clock += TURN_GAP_S
    return Call.model_validate(
        {
            "call_id": call_id,
            "started_at": (started_at or datetime(2026, 3, 2, 10, 0, tzinfo=UTC)).isoformat(),
            "duration_s": round(clock, 3),
            "language": language,
            "direction": direction,
            "manager": {"id": manager_id, "name": f"Manager {manager_id}"},
            "client": {"id": client_id, "name": f"Client {client_id}", "phone": "+70000000000"},
            "audio": {"uri": f"file:///calls/{call_id}.wav", "channels": 2, "sample_rate": 8000},
            "asr": {
                "engine": "test",
                "model": "handwritten",
                "aligned": False,
                "diarization": "manual",
            },
            "utterances": utterances,
        }
    )


def word_times(call: Call, utterance: int, first_word: int, last_word: int) -> tuple[float, float]:
    words = call.utterances[utterance].words
    return words[first_word].start, words[last_word].end


def load_through_loader(es: Elasticsearch, settings: Settings, calls: Sequence[Call]) -> None:
    """Load calls with the real loader, tagged by the stored trackers as every caller does."""
    summary = load_calls(
        es,
        settings,
        [SourcedCall("test", call) for call in calls],
        tag=current_tagger(es, settings),
    )
    assert summary.failures == []
    assert summary.loaded == len(calls)


def search(api: TestClient, q: str, **params: Any) -> dict[str, Any]:
    """``GET /v1/search``, which must answer 200; its body."""
    response = api.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


FINISHED_JOB_STATES = {"done", "superseded", "failed"}


def wait_for_job(
    api: TestClient, location: str, timeout_s: float = 60.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Poll a re-tagging job (``Location`` of a 202) until it is finished; its last state."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = api.get(location, headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] in FINISHED_JOB_STATES:
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout_s} s"
        time.sleep(0.05)


def tracker_write(
    api: TestClient, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A tracker or vocabulary write, which must be accepted (202), waited for until its job
    is done; the answer's body (``tracker`` or ``term``, and ``job``, the job as it ended)."""
    response = api.request(method, path, json=body, **kwargs)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/jobs/{accepted['job']['id']}"
    accepted["job"] = wait_for_job(api, response.headers["location"], headers=kwargs.get("headers"))
    assert accepted["job"]["state"] == "done", accepted["job"]
    return accepted
