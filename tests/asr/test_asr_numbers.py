"""The real numbers recording through the real model into the real Elasticsearch: decimals,
times and "a.m." come out as written and are found by what a user types, at their seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from indexer.asr.audio import decode, probe
from indexer.asr.metadata import MetadataSource
from indexer.asr.pipeline import Transcriber
from indexer.transcript import Call, Word

pytestmark = pytest.mark.asr


@pytest.fixture(scope="module")
def numbers_call(transcriber: Transcriber, real_audio: Path) -> Call:
    audio = probe(real_audio / "numbers_en.wav")
    return transcriber.transcribe(decode(audio, 3600), MetadataSource().lookup(audio))


def _word(call: Call, text: str, nth: int = 0) -> Word:
    found = [w for u in call.utterances for w in u.words if w.text.rstrip(",") == text]
    assert len(found) > nth, f"{text!r} not among the words {[w.text for w in found]}"
    return found[nth]


def test_transcript_reads_as_written(numbers_call: Call) -> None:
    text = " ".join(u.text for u in numbers_call.utterances)
    assert "6.20 a.m." in text
    assert "10.34 a.m." in text
    assert " .20" not in text
    assert " .m." not in text


@pytest.mark.parametrize(
    ("query", "first", "last"),
    [("6.20", "6.20", "6.20"), ("10.34", "10.34", "10.34"), ('"6.20 a.m."', "6.20", "a.m.")],
)
def test_numbers_are_found_at_their_seconds(
    numbers_call: Call,
    index_calls: Callable[..., None],
    api: TestClient,
    query: str,
    first: str,
    last: str,
) -> None:
    index_calls(numbers_call)
    response = api.get("/v1/search", params={"q": query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    hits = body["calls"][0]["hits"]
    assert len(hits) == 1
    start_word = _word(numbers_call, first)
    end_word = _word(numbers_call, last)
    assert (hits[0]["start"], hits[0]["end"]) == (start_word.start, end_word.end)
    # The model says "6.20" about 2.1–2.8 s in, "10.34" about 9.4–10.0 s in.
    expected_start = 2.1 if first == "6.20" else 9.4
    assert abs(hits[0]["start"] - expected_start) < 0.5
    assert hits[0]["matched"].replace(" ", "") == query.strip('"').replace(" ", "")
