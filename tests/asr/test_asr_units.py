"""The pipeline's pure parts: word timing, utterance splitting, roles, metadata, decoding."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from indexer.asr.audio import SAMPLE_RATE, decode, probe
from indexer.asr.ledger import Ledger, job_key
from indexer.asr.metadata import MetadataSource, call_id_from_path
from indexer.asr.roles import (
    SpeakerRule,
    SpeakerTurn,
    SpokenText,
    channel_roles,
    speaker_at,
    speaker_roles,
)
from indexer.asr.segmentation import SpeakerWord, merge_in_time_order, split_utterances
from indexer.asr.words import TimedWord, fill_untimed
from indexer.errors import AudioError, TranscriptError
from indexer.transcript import Direction, Role, Word

CUES = ["меня зовут", "компания", "my name is", "calling from"]

# --- words -------------------------------------------------------------------------------


def test_untimed_words_share_the_gap_between_timed_neighbours() -> None:
    words = [
        TimedWord("price", 1.0, 1.4),
        TimedWord("2025", None, None),
        TimedWord("%", None, None),
        TimedWord("ok", 2.4, 2.6),
    ]
    out = fill_untimed(words, 0.5, 3.0)
    assert [w.text for w in out] == ["price", "2025", "%", "ok"]
    # 1.0 s gap split 4:1 by characters.
    assert (out[1].start, out[1].end) == (1.4, 2.2)
    assert (out[2].start, out[2].end) == (2.2, 2.4)
    assert (out[3].start, out[3].end) == (2.4, 2.6)


def test_untimed_words_at_the_edges_use_the_segment_bounds() -> None:
    out = fill_untimed([TimedWord("5", None, None), TimedWord("x", 1.0, 1.5)], 0.2, 2.0)
    assert (out[0].start, out[0].end) == (0.2, 1.0)
    out = fill_untimed([TimedWord("a", 0.0, 0.5), TimedWord("10", None, None)], 0.0, 2.0)
    assert (out[1].start, out[1].end) == (0.5, 2.0)


timed_or_not = st.builds(
    TimedWord,
    text=st.sampled_from(["да", "ok", "42", "%", " ", "word"]),
    start=st.none() | st.floats(0, 60),
    end=st.none() | st.floats(0, 60),
    score=st.none() | st.floats(-1, 2),
)


@given(st.lists(timed_or_not, max_size=30), st.floats(0, 30), st.floats(0, 30))
def test_every_word_comes_out_timed_and_in_order(
    words: list[TimedWord], a: float, b: float
) -> None:
    start, end = min(a, b), max(a, b)
    out = fill_untimed(words, start, end)
    assert len(out) == sum(1 for w in words if w.text.strip())
    for word in out:
        assert 0 <= word.start <= word.end
    assert [w.start for w in out] == sorted(w.start for w in out)


# --- segmentation --------------------------------------------------------------------------


def _sw(text: str, start: float, end: float, speaker: str = "left") -> SpeakerWord:
    role = Role.MANAGER if speaker == "left" else Role.CLIENT
    return SpeakerWord(Word(text=text, start=start, end=end), speaker, role)


def test_utterances_split_at_pauses_and_speaker_changes() -> None:
    words = [
        _sw("hello", 0.0, 0.4),
        _sw("there", 0.5, 0.9),
        _sw("again", 2.0, 2.3),  # 1.1 s pause
        _sw("yes", 2.4, 2.6, "right"),  # speaker change
    ]
    utterances = split_utterances(words, max_pause_s=0.8)
    assert [u.text for u in utterances] == ["hello there", "again", "yes"]
    assert [u.role for u in utterances] == [Role.MANAGER, Role.MANAGER, Role.CLIENT]
    assert (utterances[0].start, utterances[0].end) == (0.0, 0.9)


def test_channels_merge_in_time_order() -> None:
    left = split_utterances([_sw("a", 0.0, 1.0), _sw("c", 5.0, 6.0)], 0.8)
    right = split_utterances([_sw("b", 2.0, 3.0, "right")], 0.8)
    assert [u.text for u in merge_in_time_order([left, right])] == ["a", "b", "c"]


# --- roles ---------------------------------------------------------------------------------


def test_channel_layout() -> None:
    assert channel_roles(2, None) == (Role.MANAGER, Role.CLIENT)
    assert channel_roles(2, (Role.CLIENT, Role.MANAGER)) == (Role.CLIENT, Role.MANAGER)
    assert channel_roles(1, None) == (Role.UNKNOWN,)
    with pytest.raises(ValueError, match="2 channels"):
        channel_roles(2, (Role.MANAGER,))


def _spoken(*items: tuple[str, float, str]) -> list[SpokenText]:
    return [SpokenText(s, t, t + 1.0, text) for s, t, text in items]


def test_greeting_marks_the_manager_whoever_speaks_first() -> None:
    spoken = _spoken(
        ("S1", 0.0, "Алло?"),
        ("S0", 1.0, "Добрый день, меня зовут Анна, компания Сигма."),
        ("S1", 3.0, "Да, слушаю."),
    )
    for direction in Direction:
        roles = speaker_roles(spoken, direction, SpeakerRule.GREETING, CUES)
        assert roles == {"S0": Role.MANAGER, "S1": Role.CLIENT}


def test_without_greeting_the_first_speaker_is_decided_by_direction() -> None:
    spoken = _spoken(("A", 0.0, "hello"), ("B", 1.0, "hi, good afternoon"))
    outbound = speaker_roles(spoken, Direction.OUTBOUND, SpeakerRule.GREETING, CUES)
    inbound = speaker_roles(spoken, Direction.INBOUND, SpeakerRule.GREETING, CUES)
    assert outbound == {"A": Role.CLIENT, "B": Role.MANAGER}
    assert inbound == {"A": Role.MANAGER, "B": Role.CLIENT}


def test_explicit_first_speaker_rules_and_extra_speakers() -> None:
    spoken = _spoken(("A", 0.0, "my name is Bob"), ("B", 1.0, "hi"), ("B", 2.0, "x"))
    spoken += [SpokenText("C", 9.0, 9.2, "hm"), SpokenText("A", 4.0, 6.0, "well")]
    roles = speaker_roles(spoken, Direction.INBOUND, SpeakerRule.FIRST_IS_CLIENT, CUES)
    assert roles == {"A": Role.CLIENT, "B": Role.MANAGER, "C": Role.UNKNOWN}
    roles = speaker_roles(spoken, Direction.OUTBOUND, SpeakerRule.FIRST_IS_MANAGER, CUES)
    assert roles["A"] is Role.MANAGER


def test_words_take_the_most_overlapping_or_nearest_turn() -> None:
    turns = [SpeakerTurn(0.0, 2.0, "A"), SpeakerTurn(2.0, 5.0, "B")]
    assert speaker_at(1.8, 2.5, turns) == "B"
    assert speaker_at(5.2, 5.4, turns) == "B"
    assert speaker_at(9.0, 9.5, turns) is None


# --- metadata ------------------------------------------------------------------------------


def _wav(path: Path, seconds: float = 1.0, rate: int = 16_000, channels: int = 2) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.stack([tone] * channels, axis=1), rate)
    return path


def test_defaults_without_metadata(tmp_path: Path) -> None:
    audio = probe(_wav(tmp_path / "Звонок 17 (copy).wav"))
    meta = MetadataSource().lookup(audio)
    assert meta.call_id == "17-copy"
    assert meta.direction is Direction.OUTBOUND
    assert meta.language is None
    assert meta.manager.id == "unassigned"
    assert meta.started_at == datetime.fromtimestamp(audio.path.stat().st_mtime, tz=UTC)
    assert call_id_from_path(Path("Звонок.wav")).startswith("call-")


def test_sidecar_overrides_manifest(tmp_path: Path) -> None:
    audio = probe(_wav(tmp_path / "c1.wav"))
    manifest = tmp_path / "calls.csv"
    manifest.write_text(
        "file,call_id,direction,language,channels,manager_id,client_phone\n"
        'c1.wav,from-csv,inbound,ru,"client,manager",m7,+7999\n',
        encoding="utf-8",
    )
    meta = MetadataSource(manifest).lookup(audio)
    assert (meta.call_id, meta.direction, meta.language) == ("from-csv", Direction.INBOUND, "ru")
    assert meta.channels == (Role.CLIENT, Role.MANAGER)
    assert (meta.manager.id, meta.client.phone) == ("m7", "+7999")

    (tmp_path / "c1.meta.json").write_text(json.dumps({"call_id": "from-sidecar"}))
    meta = MetadataSource(manifest).lookup(audio)
    assert (meta.call_id, meta.language) == ("from-sidecar", "ru")


def test_bad_metadata_names_the_file_and_field(tmp_path: Path) -> None:
    audio = probe(_wav(tmp_path / "c2.wav"))
    (tmp_path / "c2.meta.json").write_text(json.dumps({"direction": "sideways"}))
    with pytest.raises(TranscriptError, match=r"c2\.meta\.json: direction"):
        MetadataSource().lookup(audio)
    bad_csv = tmp_path / "m.csv"
    bad_csv.write_text("file,colour\nc2.wav,red\n")
    with pytest.raises(TranscriptError, match="colour"):
        MetadataSource(bad_csv)


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [("mp3", "libmp3lame"), ("ogg", "libopus"), ("opus", "libopus"), ("flac", "flac"),
     ("m4a", "aac"), ("wav", "pcm_s16le")],
)  # fmt: skip
@pytest.mark.parametrize("channels", [1, 2])
def test_formats_decode_to_16k_per_channel(
    tmp_path: Path, suffix: str, codec: str, channels: int
) -> None:
    source = _wav(tmp_path / "src.wav", seconds=2.0, rate=8000, channels=channels)
    target = tmp_path / f"call.{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-c:a", codec, str(target)], check=True
    )
    audio = decode(probe(target), max_duration_s=60)
    assert audio.probe.channels == channels
    assert len(audio.channels) == channels
    assert abs(audio.duration_s - 2.0) < 0.1
    assert all(c.dtype == np.float32 and len(c) == len(audio.channels[0]) for c in audio.channels)


def test_odd_but_usable_sample_rates_are_resampled(tmp_path: Path) -> None:
    for rate in (11_025, 22_050, 44_100, 48_000):
        audio = decode(probe(_wav(tmp_path / f"r{rate}.wav", rate=rate)), 60)
        assert audio.probe.sample_rate == rate
        assert abs(len(audio.channels[0]) - SAMPLE_RATE) <= 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4),
         "not a readable audio file"),
        (lambda p: _wav(p, rate=4000), "below 8000 Hz"),
        (lambda p: _wav(p, channels=4), "only mono and stereo"),
    ],
    ids=["empty", "corrupt", "4khz", "4-channels"],
)  # fmt: skip
def test_unusable_files_raise_audio_error(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "bad.wav"
    make(path)  # type: ignore[operator]
    with pytest.raises(AudioError, match=message) as caught:
        decode(probe(path), 60)
    assert str(path) in str(caught.value)


def test_too_long_is_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="over the 5 s limit"):
        decode(probe(_wav(tmp_path / "long.wav", seconds=8)), max_duration_s=5)


# --- ledger --------------------------------------------------------------------------------


def test_ledger_remembers_outputs_that_still_exist(tmp_path: Path) -> None:
    key = job_key("abc", {"model": "base"})
    assert key != job_key("abc", {"model": "small"})
    output = tmp_path / "call.json"
    output.write_text("{}")
    Ledger(tmp_path).record(key, output)
    assert Ledger(tmp_path).done(key) == output
    output.unlink()
    assert Ledger(tmp_path).done(key) is None
