"""The ledger key of a recording (indexer.asr.ledger, pipeline.ledger_inputs): it changes with
whatever can change the transcript — here, the company vocabulary's terms offered to the model
for the call's language — and with nothing else."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from indexer.asr.ledger import Ledger, job_key
from indexer.asr.metadata import ResolvedMetadata
from indexer.asr.pipeline import ledger_inputs, settings_fingerprint
from indexer.settings import Settings
from indexer.transcript import Client, Direction, Manager

DIGEST = "0" * 64
RU_CALL = ResolvedMetadata(
    call_id="ru-1",
    started_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    direction=Direction.INBOUND,
    language="ru",
    channels=None,
    speaker_rule=None,
    manager=Manager(id="m-1"),
    client=Client(),
)
FINGERPRINT = settings_fingerprint(Settings())


def _key(hotwords: dict[str, str], meta: ResolvedMetadata = RU_CALL) -> str:
    return job_key(DIGEST, ledger_inputs(meta, FINGERPRINT, hotwords))


def test_no_terms_keep_the_key_of_a_ledger_made_before_hotwords() -> None:
    # What run_batch put in the key before the vocabulary was part of it.
    assert _key({}) == job_key(DIGEST, {"meta": asdict(RU_CALL), "asr": FINGERPRINT})


def test_the_terms_of_the_calls_language_are_in_the_key() -> None:
    first = _key({"ru": "Битрикс24, amoCRM", "any": "amoCRM"})
    assert _key({"ru": "Битрикс24, amoCRM, 1С", "any": "amoCRM"}) != first
    assert _key({}) != first
    # Another language's terms are never offered for this call: the key stays.
    assert _key({"ru": "Битрикс24, amoCRM", "any": "amoCRM", "en": "HubSpot"}) == first


def test_without_terms_of_its_own_a_call_gets_those_for_any_language() -> None:
    first = _key({"any": "Salesforce", "en": "HubSpot"})
    assert _key({"any": "Salesforce, amoCRM", "en": "HubSpot"}) != first
    assert _key({"any": "Salesforce", "en": "HubSpot, Zoom"}) == first


def test_a_call_whose_language_is_detected_depends_on_every_languages_terms() -> None:
    detected = replace(RU_CALL, language=None)
    first = _key({"ru": "Битрикс24", "en": "HubSpot"}, detected)
    assert _key({"ru": "Битрикс24", "en": "HubSpot, Zoom"}, detected) != first
    assert _key({"ru": "Битрикс24, 1С", "en": "HubSpot"}, detected) != first
    assert _key({"en": "HubSpot", "ru": "Битрикс24"}, detected) == first  # order is no change


def test_a_transcript_redone_under_a_new_key_is_no_longer_done_under_the_old(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path)
    output = tmp_path / "ru-1.json"
    output.write_text("{}")
    with_terms, without = _key({"ru": "Битрикс24"}), _key({})
    ledger.record(with_terms, output)
    ledger.record(without, output)  # the vocabulary emptied: the same file rewritten
    # Back to the first vocabulary: the file holds the other transcript, so it is redone.
    assert Ledger(tmp_path).done(with_terms) is None
    assert Ledger(tmp_path).done(without) == output


def test_speed_settings_keep_the_key_and_shaping_ones_change_it() -> None:
    # Fitted windows came with an upgrade: had their floor been in the key, every finished
    # transcript of an archive would have been transcribed again after it.
    for speed in (
        {"asr_fit_floor_s": 0.0},
        {"asr_fit_floor_s": 20.0},
        {"asr_group_s": 300.0},
        {"asr_batch_size": 16},
        {"asr_threads": 1},
    ):
        assert settings_fingerprint(Settings(**speed)) == FINGERPRINT, speed
    for shaping in ({"asr_beam_size": 1}, {"asr_chunk_s": 20.0}, {"asr_vad": "pyannote"}):
        assert settings_fingerprint(Settings(**shaping)) != FINGERPRINT, shaping
