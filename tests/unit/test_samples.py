"""The sample transcripts in samples/calls: valid, self-consistent, and exactly what
scripts/make-sample-calls generates (so the fixtures and the generator cannot drift apart).

Needs no Elasticsearch."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from indexer.settings import PROJECT_ROOT
from indexer.transcript import Call, Role, read_call_file

ROOT = PROJECT_ROOT
CALLS_DIR = ROOT / "samples" / "calls"
SCRIPT = ROOT / "scripts" / "make-sample-calls"
FILES = sorted(CALLS_DIR.glob("*.json"))


def _load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("make_sample_calls", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def calls() -> dict[str, Call]:
    return {path.stem: read_call_file(path) for path in FILES}


def test_there_are_samples_in_both_languages(calls: dict[str, Call]) -> None:
    languages = [call.language for call in calls.values()]
    assert len(calls) >= 16
    assert languages.count("ru") >= 8
    assert languages.count("en") >= 8


def test_call_ids_are_unique_and_match_file_names(calls: dict[str, Call]) -> None:
    ids = [call.call_id for call in calls.values()]
    assert len(ids) == len(set(ids))
    for stem, call in calls.items():
        assert call.call_id == stem


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_timings_are_consistent(path: Path) -> None:
    call = read_call_file(path)
    assert 8 <= len(call.utterances) <= 30
    previous_start = 0.0
    for utt in call.utterances:
        assert utt.start >= previous_start, "utterances are ordered by start"
        previous_start = utt.start
        assert utt.words, f"{utt.text!r} has no words"
        assert utt.words[0].start == utt.start
        assert utt.words[-1].end == utt.end
        last_end = utt.start
        for word in utt.words:
            assert utt.start <= word.start <= word.end <= utt.end
            assert word.start >= last_end, f"{word.text!r} starts before the previous word ends"
            last_end = word.end
            assert word.score is not None
            assert 0.6 <= word.score <= 1.0
        assert call.duration_s >= utt.end


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_words_occur_in_order_in_the_text(path: Path) -> None:
    for utt in read_call_file(path).utterances:
        position = 0
        for word in utt.words:
            found = utt.text.find(word.text, position)
            assert found >= 0, f"{word.text!r} not found in order in {utt.text!r}"
            position = found + len(word.text)


def test_documented_situations_hold(calls: dict[str, Call]) -> None:
    script = _load_script()
    script.check_situations(calls)  # raises SystemExit naming the broken one
    assert script.SITUATIONS


def test_turn_taking_situations(calls: dict[str, Call]) -> None:
    for call_id, index in [("ru-0010-followup", 7), ("en-0009-furniture", 9)]:
        utts = calls[call_id].utterances
        assert utts[index].start < utts[index - 1].end, f"{call_id} {index} overlaps"
        assert utts[index].role == Role.CLIENT
        assert utts[index - 1].role == Role.MANAGER
    for call_id, index in [("ru-0001-crm-demo", 10), ("ru-0003-furniture", 6)]:
        utts = calls[call_id].utterances
        assert utts[index].role == utts[index + 1].role == Role.MANAGER
    unknown = [
        i for i, u in enumerate(calls["ru-0009-secretary"].utterances) if u.role == Role.UNKNOWN
    ]
    assert unknown == [0, 2, 4, 6]


def test_generator_reproduces_the_fixtures_byte_for_byte(tmp_path: Path) -> None:
    for _ in range(2):  # twice into the same folder: a rerun changes nothing either
        subprocess.run(
            [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
            check=True,
            capture_output=True,
        )
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == [p.name for p in FILES], "samples/calls is out of date: rerun the script"
    for name in generated:
        assert (tmp_path / name).read_bytes() == (CALLS_DIR / name).read_bytes(), name
