"""Call metrics against values computed by hand, on transcripts drawn on a time line.

The main transcript (60 s), M = manager, C = client, times in seconds:

    M1  0.0-10.0  25 words     C1 4.0-5.0 inside M1: a client backchannel (interruption)
    M2 10.5-20.0  20 words  ┐  a manager run of two utterances: a monologue 10.5-24.0
    M3 20.5-24.0   9 words  ┘
    C2 25.0-33.0  16 words     M4 31.0-35.0 starts inside C2: the manager interrupts
    C3 40.0-45.0  10 words  ┐  a client run: 40.0-50.0
    C4 46.0-50.0   6 words  ┘
    M5 52.0-55.0   6 words     C5 53.0-53.5 inside M5: another client backchannel
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.metrics import METRIC_NAMES, CallMetrics, call_metrics
from indexer.transcript import Call

Load = Callable[..., None]


def utterance(role: str, start: float, end: float, words: int) -> dict[str, Any]:
    """``words`` words spread evenly over start..end."""
    step = (end - start) / words
    spread: list[dict[str, Any]] = [
        {
            "text": f"w{i}",
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
        }
        for i in range(words)
    ]
    return {
        "speaker": "SPEAKER_00" if role == "manager" else "SPEAKER_01",
        "role": role,
        "start": start,
        "end": end,
        "text": " ".join(w["text"] for w in spread),
        "words": spread,
    }


def timeline_call(
    call_id: str, utterances: list[dict[str, Any]], duration_s: float, **extra: Any
) -> Call:
    return Call.model_validate(
        {
            "call_id": call_id,
            "started_at": datetime(2026, 3, 2, 10, 0, tzinfo=UTC).isoformat(),
            "duration_s": duration_s,
            "language": "en",
            "direction": "outbound",
            "manager": {"id": "m-1", "name": "Manager"},
            "client": {"id": "c-1", "name": "Client"},
            "audio": {"uri": f"file:///calls/{call_id}.wav", "channels": 2, "sample_rate": 8000},
            "asr": {"engine": "test", "model": "hand", "aligned": False, "diarization": "manual"},
            "utterances": utterances,
            **extra,
        }
    )


def main_call(call_id: str = "timeline") -> Call:
    return timeline_call(
        call_id,
        [
            utterance("manager", 0.0, 10.0, 25),
            utterance("client", 4.0, 5.0, 2),
            utterance("manager", 10.5, 20.0, 20),
            utterance("manager", 20.5, 24.0, 9),
            utterance("client", 25.0, 33.0, 16),
            utterance("manager", 31.0, 35.0, 8),
            utterance("client", 40.0, 45.0, 10),
            utterance("client", 46.0, 50.0, 6),
            utterance("manager", 52.0, 55.0, 6),
            utterance("client", 53.0, 53.5, 1),
        ],
        60.0,
    )


def expected_main() -> dict[str, Any]:
    manager_talk = 10.0 + 9.5 + 3.5 + 4.0 + 3.0  # M1..M5, no manager overlaps
    client_talk = 1.0 + 8.0 + 5.0 + 4.0 + 0.5  # C1..C5
    # Speech as one union: [0,10] [10.5,20] [20.5,24] [25,35] (C2 ∪ M4) [40,45] [46,50] [52,55]
    spoken = 10.0 + 9.5 + 3.5 + 10.0 + 5.0 + 4.0 + 3.0
    return {
        "talk_s_manager": 30.0,
        "talk_s_client": 18.5,
        "talk_ratio_manager": round(manager_talk / (manager_talk + client_talk), 3),  # 0.619
        "silence_s": 60.0 - spoken,  # 15.0
        # Runs: M1 (C1 starts inside, ending it) 10.0; M2+M3 24.0-10.5; M4 4.0; M5 3.0.
        "longest_monologue_s_manager": 13.5,
        # Runs: C1 1.0; C2 8.0 (M4 starts inside); C3+C4 50.0-40.0; C5 0.5.
        "longest_monologue_s_client": 10.0,
        # M4 starts at 31 while C2 runs to 33.
        "interruptions_manager": 1,
        # C1 at 4 inside M1, C5 at 53 inside M5.
        "interruptions_client": 2,
        "wpm_manager": round((25 + 20 + 9 + 8 + 6) / (manager_talk / 60), 3),  # 136.0
        "wpm_client": round((2 + 16 + 10 + 6 + 1) / (client_talk / 60), 3),  # 113.514
        # Answers: C2→M4 starts before C2 ends: 0; C4→M5: 52-50 = 2. Not answers: C1→M2 (the
        # manager was still speaking when C1 ended), C5 is last.
        "response_latency_s": (0.0 + 2.0) / 2,
    }


def test_metrics_of_a_hand_drawn_call_with_overlaps_and_monologues() -> None:
    assert call_metrics(main_call()).model_dump() == pytest.approx(expected_main())


def test_utterance_order_in_the_file_does_not_matter() -> None:
    shuffled = main_call().model_copy(update={"utterances": list(reversed(main_call().utterances))})

    assert call_metrics(shuffled) == call_metrics(main_call())


def test_manager_monologue_only() -> None:
    call = timeline_call(
        "monologue",
        [utterance("manager", 1.0, 11.0, 20), utterance("manager", 12.0, 20.0, 10)],
        25.0,
    )

    assert call_metrics(call).model_dump() == {
        "talk_s_manager": 18.0,
        "talk_s_client": 0.0,
        "talk_ratio_manager": 1.0,
        "silence_s": 25.0 - 18.0,
        "longest_monologue_s_manager": 20.0 - 1.0,  # one run, the pause inside included
        "longest_monologue_s_client": 0.0,
        "interruptions_manager": 0,
        "interruptions_client": 0,
        "wpm_manager": round(30 / (18.0 / 60), 3),
        "wpm_client": None,
        "response_latency_s": None,
    }


def test_overlapping_utterances_of_one_role_count_once_and_latency_runs_from_the_last_end() -> None:
    call = timeline_call(
        "same-role-overlap",
        [
            utterance("client", 0.0, 10.0, 10),
            utterance("client", 2.0, 4.0, 2),  # diarization split: inside the other
            utterance("manager", 11.0, 12.0, 2),
        ],
        12.0,
    )

    metrics = call_metrics(call)

    assert metrics.talk_s_client == 10.0
    assert metrics.silence_s == 1.0
    assert metrics.interruptions_client == 0  # same role is no interruption
    assert metrics.response_latency_s == 1.0  # from 10.0 (the client's speech end), not 4.0


def test_touching_and_simultaneous_starts_are_not_interruptions() -> None:
    call = timeline_call(
        "touching",
        [
            utterance("manager", 0.0, 5.0, 5),
            utterance("client", 5.0, 8.0, 3),  # starts exactly as the manager stops
            utterance("manager", 10.0, 12.0, 2),
            utterance("client", 10.0, 11.0, 1),  # both start together
        ],
        12.0,
    )

    metrics = call_metrics(call)

    assert (metrics.interruptions_manager, metrics.interruptions_client) == (0, 0)
    # In time order the client's 10.0-11.0 (ends first) comes right before the manager's
    # 10.0-12.0, which started before the client stopped: one answer, latency 0.
    assert metrics.response_latency_s == 0.0


def test_empty_call_has_only_silence() -> None:
    metrics = call_metrics(timeline_call("empty", [], 30.0))

    assert metrics.silence_s == 30.0
    assert metrics.talk_ratio_manager is None
    assert metrics.wpm_manager is None
    assert metrics.response_latency_s is None


def test_metric_names_are_the_mapping_fields() -> None:
    from indexer.index.definitions import index_definition

    mapped = index_definition()["mappings"]["properties"]["metrics"]["properties"]

    assert set(METRIC_NAMES) == set(mapped) == set(CallMetrics.model_fields)


def test_stored_metrics_reach_the_api(api: TestClient, index_calls: Load) -> None:
    index_calls(main_call("timeline"))

    detail = api.get("/v1/calls/timeline").json()["metrics"]
    listed = api.get("/v1/search", params={"manager_id": "m-1"}).json()["calls"][0]["metrics"]

    assert detail == pytest.approx(expected_main())
    assert listed == pytest.approx(expected_main())
