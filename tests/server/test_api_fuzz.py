"""Schemathesis against the API's own OpenAPI, with the real Elasticsearch behind it.

Every operation gets generated requests — valid ones, and invalid ones that must be refused with
a 4xx — sent with an admin key to the real app over the sample calls. Any 5xx, any status or
body the OpenAPI does not declare, any response that breaks its schema fails the test.

Bounded for CI: a fixed number of examples per operation, derandomized (the same requests on
every run). ``scripts/fuzz-api`` runs a longer, randomized fuzz against a running stack.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from elasticsearch import Elasticsearch
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.main import create_app
from indexer.index.loader import load_calls
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import SourcedCall, read_call_file

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
SAMPLES = PROJECT_ROOT / "samples" / "calls"
READ_KEY = "fuzz-read-key-" + "r" * 24
ADMIN_KEY = "fuzz-admin-key-" + "a" * 24
EXAMPLES_PER_OPERATION = 20
# The one sample call whose recording exists (under the audio root), so the audio route is
# fuzzed on a real file too (Range headers, 206, 416), not only on refusals.
CALL_WITH_AUDIO = "en-0002-pricing"

# Schemathesis' fixture-based loader does not work with pytest 9, so the app is built at import
# time; it does not touch Elasticsearch before the first request, when the module fixture below
# has loaded the alias.
WORK = Path(tempfile.gettempdir()) / f"earshot-fuzz-{uuid.uuid4().hex[:12]}"
SETTINGS = Settings(
    es_url=ES_URL,
    calls_alias=f"test-fuzz-{uuid.uuid4().hex[:12]}",
    store_dir=WORK / "store",
    api_keys_read=[SecretStr(READ_KEY)],
    api_keys_admin=[SecretStr(ADMIN_KEY)],
    audio_root=WORK / "audio",
)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(SETTINGS), headers={"X-API-Key": READ_KEY}
)


@pytest.fixture(scope="module", autouse=True)
def sample_calls(es: Elasticsearch) -> Iterator[None]:
    """The sample calls in this module's alias; one recording in the audio root."""
    assert SETTINGS.audio_root is not None
    SETTINGS.audio_root.mkdir(parents=True)
    (SETTINGS.audio_root / f"{CALL_WITH_AUDIO}.wav").write_bytes(_wav_bytes())
    calls = []
    for path in sorted(SAMPLES.glob("*.json")):
        call = read_call_file(path)
        if call.call_id == CALL_WITH_AUDIO:
            audio = call.audio.model_copy(update={"uri": f"{CALL_WITH_AUDIO}.wav"})
            call = call.model_copy(update={"audio": audio})
        calls.append(SourcedCall(str(path), call))
    summary = load_calls(es, SETTINGS, calls, tag=current_tagger(es, SETTINGS))
    assert summary.failures == []
    assert summary.loaded == len(calls) > 0
    yield
    names = list(es.indices.get(index=f"{SETTINGS.calls_alias}-*", expand_wildcards="all"))
    if names:
        es.indices.delete(index=",".join(names))
    es.options(ignore_status=404).indices.delete_index_template(name=SETTINGS.calls_alias)
    shutil.rmtree(WORK, ignore_errors=True)


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_every_generated_request_as_documented(case: schemathesis.Case[Any]) -> None:
    # Every check but "schema-valid data is accepted": `q`, `sort`, `metric` and `cursor` have
    # a grammar of their own that the OpenAPI describes in words, so a schema-valid string may
    # rightly get the documented 400.
    case.call_and_validate(
        headers={"X-API-Key": ADMIN_KEY}, excluded_checks=[positive_data_acceptance]
    )


def _wav_bytes() -> bytes:
    """A real, short mono WAV (0.1 s of silence at 8 kHz)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()
