"""Cross-file batching on real audio and the real model: short recordings decoded together
(their speech in shared Whisper windows) against each recording decoded alone."""

from __future__ import annotations

import copy
import difflib
import json
import statistics
import subprocess
from pathlib import Path

import jiwer
import pytest
from asr_helpers import normalise

from indexer.asr.pipeline import BatchSummary, Transcriber, run_batch
from indexer.settings import Settings
from indexer.transcript import Call

pytestmark = pytest.mark.asr

PIECE_S = 15
# Measured on these pieces (docs/asr.md, "Cross-file batching"), grouped against alone: see
# the figures there. The bounds leave room for the recogniser's spread on the noisy phone call
# (where either reading may be the right one), not for a lost file or half of one.
MAX_WER_AGAINST_ALONE = 0.35
POOLED_WER_AGAINST_ALONE = 0.12
MEDIAN_START_SHIFT_S = 0.1
P90_START_SHIFT_S = 0.5


# Each piece's language comes in its sidecar, as a PBX's metadata gives it: a recording whose
# language is detected has it detected on its own window and is decoded there, apart from the
# group (tests/asr/test_asr_language.py), so only recordings with a language share windows.
LANGUAGES = {"jfk": "en", "numbers_en": "en", "numbers_ru": "ru", "phone_call_2spk_en": "en",
             "short_ru": "ru", "stereo_two_speakers_en": "en"}  # fmt: skip


@pytest.fixture(scope="module")
def pieces(real_audio: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The real recordings cut into 15 s pieces: several short calls, English and Russian."""
    folder = tmp_path_factory.mktemp("pieces")
    for source in [*sorted(real_audio.glob("*.wav")), real_audio / "jfk.flac"]:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", str(source), "-f", "segment",
             "-segment_time", str(PIECE_S), "-c:a", "pcm_s16le",
             str(folder / f"{source.stem}_%03d.wav")],
            check=True,
        )  # fmt: skip
        sidecar = json.dumps({"language": LANGUAGES[source.stem]})
        for piece in folder.glob(f"{source.stem}_*.wav"):
            piece.with_name(f"{piece.stem}.meta.json").write_text(sidecar, encoding="utf-8")
    return sorted(folder.glob("*.wav"))


def _with(transcriber: Transcriber, settings: Settings) -> Transcriber:
    """The same models under these settings: the batch cuts its groups by its settings, the
    transcriber shares windows by its own, and both must say the same."""
    shaped = copy.copy(transcriber)
    shaped.settings = settings
    return shaped


def _batch(transcriber: Transcriber, files: list[Path], out: Path, group_s: float) -> BatchSummary:
    settings = transcriber.settings.model_copy(update={"asr_group_s": group_s})
    shaped = _with(transcriber, settings)
    summary = run_batch(files, out, settings, lambda: shaped, progress=False)
    assert summary.failures == []
    return summary


@pytest.fixture(scope="module")
def alone_and_grouped(
    transcriber: Transcriber, pieces: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Call], dict[str, Call], int]:
    out = tmp_path_factory.mktemp("out")
    engine = transcriber.engine
    before = engine.windows_decoded
    alone = _batch(transcriber, pieces, out / "alone", group_s=0)
    middle = engine.windows_decoded
    grouped = _batch(transcriber, pieces, out / "grouped", group_s=300)
    saved = (middle - before) - (engine.windows_decoded - middle)  # alone's − grouped's
    by_id = [{c.call.call_id: c.call for c in s.calls} for s in (alone, grouped)]
    return by_id[0], by_id[1], saved


def _words(call: Call) -> list[tuple[str, float, float]]:
    return [(normalise(w.text), w.start, w.end) for u in call.utterances for w in u.words]


def test_grouped_files_keep_their_words_and_times(
    alone_and_grouped: tuple[dict[str, Call], dict[str, Call], int],
) -> None:
    alone, grouped, saved = alone_and_grouped
    assert saved > 0, "sharing windows must decode fewer of them"
    assert grouped.keys() == alone.keys()
    assert len(alone) >= 6
    shifts: list[float] = []
    texts: dict[str, tuple[str, str]] = {}  # call id → (alone, grouped)
    for call_id, mine in alone.items():
        theirs = grouped[call_id]
        expected, heard = _words(mine), _words(theirs)
        assert heard, f"{call_id}: no words when decoded with the others"
        texts[call_id] = (" ".join(w for w, *_ in expected), " ".join(w for w, *_ in heard))
        assert all(0 <= start <= end <= theirs.duration_s for _, start, end in heard), call_id
        matcher = difflib.SequenceMatcher(
            a=[w for w, *_ in expected], b=[w for w, *_ in heard], autojunk=False
        )
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                shifts.append(abs(heard[block.b + k][1] - expected[block.a + k][1]))
    wers = {call_id: jiwer.wer(*pair) for call_id, pair in texts.items()}
    pooled = jiwer.wer([a for a, _ in texts.values()], [g for _, g in texts.values()])
    print("\nWER grouped against alone: " + ", ".join(f"{k} {v:.3f}" for k, v in wers.items())
          + f"; pooled {pooled:.3f}")  # fmt: skip
    assert pooled <= POOLED_WER_AGAINST_ALONE
    assert max(wers.values()) <= MAX_WER_AGAINST_ALONE, wers
    deciles = statistics.quantiles(shifts, n=10)
    print(f"\nstart shifts grouped vs alone: median {statistics.median(shifts):.3f} s, "
          f"p90 {deciles[-1]:.3f} s, max {max(shifts):.3f} s over {len(shifts)} words")  # fmt: skip
    assert statistics.median(shifts) <= MEDIAN_START_SHIFT_S
    assert deciles[-1] <= P90_START_SHIFT_S


def test_words_never_cross_into_another_file(
    alone_and_grouped: tuple[dict[str, Call], dict[str, Call], int],
) -> None:
    alone, grouped, _ = alone_and_grouped
    vocabulary = {call_id: {w for w, *_ in _words(call)} for call_id, call in alone.items()}
    for call_id, words in vocabulary.items():
        others = set().union(*(v for other, v in vocabulary.items() if other != call_id))
        # Words only this file says, long enough not to be a common word another file's
        # reading could give too ("there", "okay"): "americans", "caracas", "марина", ...
        own = {w for w in words - others if len(w) >= 6}
        assert own, call_id
        for other, call in grouped.items():
            if other != call_id:
                crossed = own & {w for w, *_ in _words(call)}
                assert not crossed, f"{call_id}'s words {crossed} turned up in {other}"


def test_a_bad_file_in_a_group_is_reported_and_the_rest_done(
    transcriber: Transcriber,
    pieces: list[Path],
    alone_and_grouped: tuple[dict[str, Call], dict[str, Call], int],
    real_audio: Path,
    tmp_path: Path,
) -> None:
    _, grouped, _ = alone_and_grouped
    too_long = tmp_path / "too_long.wav"  # probes fine; refused where it is decoded, in the group
    too_long.write_bytes((real_audio / "phone_call_2spk_en.wav").read_bytes())
    files = [*pieces[:2], too_long, *pieces[2:]]
    settings = transcriber.settings.model_copy(update={"asr_group_s": 300, "asr_max_audio_s": 20})
    shaped = _with(transcriber, settings)
    summary = run_batch(files, tmp_path / "out", settings, lambda: shaped, progress=False)
    assert len(summary.failures) == 1
    assert f"{too_long}: 30 s long, over the 20 s limit" in summary.failures[0]
    done = {c.call.call_id: c.call for c in summary.calls}
    assert done.keys() == grouped.keys()
    for call_id, call in done.items():
        assert [w for w, *_ in _words(call)], call_id
