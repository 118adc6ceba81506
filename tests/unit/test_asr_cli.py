"""``transcribe`` needs no Elasticsearch: without one it says that the company vocabulary's
terms are not offered, and goes on (indexer/asr/cli.py); ``--no-vocabulary`` does not ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import cli
from indexer.settings import get_settings

NO_VOCABULARY = "warning: no company vocabulary (Elasticsearch is unreachable)"


@pytest.fixture
def no_elasticsearch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ES_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("EARSHOT_ES_MAX_RETRIES", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("no_elasticsearch")
@pytest.mark.parametrize("flags", [[], ["--no-vocabulary"]])
def test_transcribe_without_elasticsearch_says_so_and_goes_on(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.wav"
    status = cli.main(["transcribe", str(missing), "--out", str(tmp_path / "out"), "-q", *flags])
    err = capsys.readouterr().err
    assert status == 1  # the one recording failed; the run was not refused
    assert f"error: {missing}: no such file or directory" in err
    assert (NO_VOCABULARY in err) == (not flags)
