"""The transcript contract: the published JSON Schema is generated from the model, and files
that break the contract are refused with the file and the field named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders import make_call

from indexer.errors import TranscriptError
from indexer.transcript import SCHEMA_PATH, json_schema, parse_call, read_call_file


def test_published_schema_matches_the_model() -> None:
    published = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    assert published == json_schema(), (
        "run: python -m indexer schema > mappings/transcript.schema.json"
    )


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("call_id"), "call_id"),
        (lambda d: d.update(started_at="2026-03-02T10:00:00"), "started_at"),  # no time zone
        (lambda d: d["utterances"][0].update(role="boss"), "utterances.0.role"),
        (lambda d: d["utterances"][0]["words"][0].update(end=-1), "utterances.0.words.0.end"),
        (lambda d: d["utterances"][0].update(words=[]), "utterances.0"),
        (lambda d: d.update(extra="?"), "extra"),
        (lambda d: d.update(call_id="../etc/passwd"), "call_id"),
    ],
)
def test_invalid_file_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = make_call("ok", [("client", "hello there")]).model_dump(mode="json")
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(TranscriptError) as caught:
        read_call_file(path)

    assert caught.value.source == str(path)
    assert caught.value.field == field


def _speaker(data: dict[str, Any]) -> dict[str, Any]:
    speaker = {"speaker": "SPEAKER_00", "role": "client", "talk_s": 1.5, "words": 2}
    data["asr"]["speakers"] = [speaker]
    return speaker


@pytest.mark.parametrize(
    ("mutate", "field", "kind"),
    [
        (lambda d: d.update(duration_s="60"), "duration_s", "a string"),
        (lambda d: d["utterances"][0].update(start="0.5"), "utterances.0.start", "a string"),
        (lambda d: d["utterances"][0].update(end=True), "utterances.0.end", "a boolean"),
        (lambda d: d["audio"].update(channels="2"), "audio.channels", "a string"),
        (lambda d: d["audio"].update(sample_rate=True), "audio.sample_rate", "a boolean"),
        (lambda d: d["asr"].update(roles_confidence="1"), "asr.roles_confidence", "a string"),
        (lambda d: _speaker(d).update(talk_s="1.5"), "asr.speakers.0.talk_s", "a string"),
        (lambda d: _speaker(d).update(words="2"), "asr.speakers.0.words", "a string"),
        (lambda d: _speaker(d).update(similarity=False), "asr.speakers.0.similarity", "a boolean"),
    ],
)
def test_a_number_written_as_text_is_refused_naming_its_field(
    mutate: Callable[[dict[str, Any]], object], field: str, kind: str
) -> None:
    """Pydantic's lax mode would read these as numbers; every number of the contract must be a
    JSON number, as a word's are (tests/unit/test_contract_words.py)."""
    data = make_call("ok", [("client", "hello there")]).model_dump(mode="json")
    mutate(data)

    with pytest.raises(TranscriptError) as caught:
        parse_call(data, "bad.json")

    assert (caught.value.field, caught.value.message) == (
        field,
        f"Input should be a number, not {kind}",
    )


def test_numbers_as_numbers_are_read() -> None:
    data = make_call("ok", [("client", "hello there")]).model_dump(mode="json")
    data.update(duration_s=60)
    data["audio"].update(channels=2, sample_rate=8000)
    _speaker(data).update(talk_s=1, words=2, similarity=0.5)

    call = parse_call(data, "ints.json")

    assert (call.duration_s, call.audio.channels, call.asr.speakers[0].talk_s) == (60.0, 2, 1.0)
