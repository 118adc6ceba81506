"""The transcript contract: the published JSON Schema is generated from the model, and files
that break the contract are refused with the file and the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import make_call

from indexer.errors import TranscriptError
from indexer.transcript import SCHEMA_PATH, json_schema, read_call_file


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
