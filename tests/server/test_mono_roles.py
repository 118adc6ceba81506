"""Mono calls downstream: the API shows speakers and how roles were decided, and a voiceprint
enrolled later re-assigns a stored call's roles without transcribing (``voices reassign``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from builders import make_call, search
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from indexer.asr.voices import VoiceStore
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import Call, Role, RolesEvidence, SpeakerInfo

MANAGER_VOICE = [0.6, 0.8, 0.0]
CLIENT_VOICE = [0.0, 0.0, 1.0]


def _diarized(call_id: str) -> Call:
    """A mono call as the transcriber leaves it when the manager has no voiceprint yet."""
    base = make_call(
        call_id,
        [("unknown", "добрый день это анна"), ("unknown", "дорого для нас"),
         ("unknown", "понимаю пришлю расчёт")],
        manager_id="m-anna",
    )  # fmt: skip
    labels = ["SPEAKER_01", "SPEAKER_02", "SPEAKER_01"]
    utterances = [
        u.model_copy(update={"speaker": label, "role": Role.UNKNOWN})
        for u, label in zip(base.utterances, labels, strict=True)
    ]
    speakers = [
        SpeakerInfo(speaker="SPEAKER_01", role=Role.UNKNOWN, talk_s=3.9, words=7,
                    voice=MANAGER_VOICE),
        SpeakerInfo(speaker="SPEAKER_02", role=Role.UNKNOWN, talk_s=1.4, words=3,
                    voice=CLIENT_VOICE),
    ]  # fmt: skip
    asr = base.asr.model_copy(
        update={"diarization": "senko", "roles": RolesEvidence.UNASSIGNED, "speakers": speakers}
    )
    audio = base.audio.model_copy(update={"channels": 1})
    return base.model_copy(
        update={"utterances": utterances, "asr": asr, "audio": audio,
                "warnings": ["roles unassigned: no voiceprint for the call's manager"]}
    )  # fmt: skip


def test_call_detail_shows_speakers_and_how_roles_were_decided(
    api: TestClient, index_calls: Callable[..., None]
) -> None:
    index_calls(_diarized("mono-1"))
    body = api.get("/v1/calls/mono-1").json()
    assert body["asr"]["roles"] == "unassigned"
    assert body["asr"]["roles_confidence"] is None
    assert [s["speaker"] for s in body["asr"]["speakers"]] == ["SPEAKER_01", "SPEAKER_02"]
    assert body["asr"]["speakers"][0]["voice"] == MANAGER_VOICE
    assert {u["role"] for u in body["utterances"]} == {"unknown"}


def test_enrolling_later_reassigns_a_stored_mono_call(
    api: TestClient, es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    index_calls(_diarized("mono-2"))
    assert search(api, 'manager:"дорого"')["total"] == 0
    assert settings.store_dir is not None
    VoiceStore(settings.store_dir / "voices").put("m-anna", [0.6, 0.8, 0.0], 20.0, ["x.wav"])

    done = subprocess.run(
        [sys.executable, "-m", "indexer", "voices", "reassign", "--manager", "m-anna"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "ES_URL": settings.es_url,
             "EARSHOT_CALLS_ALIAS": settings.calls_alias,
             "EARSHOT_STORE_DIR": str(settings.store_dir)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "roles changed in 1 call(s)" in done.stderr

    body = api.get("/v1/calls/mono-2").json()
    assert body["asr"]["roles"] == "voiceprint"
    assert body["asr"]["roles_confidence"] == 1.0
    assert [u["role"] for u in body["utterances"]] == ["manager", "client", "manager"]
    assert body["warnings"] == []
    # Role search and metrics follow: the client said "дорого", the manager did not.
    assert search(api, 'client:"дорого"')["total"] == 1
    assert search(api, 'manager:"дорого"')["total"] == 0
    assert body["metrics"]["talk_s_manager"] > 0
