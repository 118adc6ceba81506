"""Masking a transcript: spans become class tokens in words and text, seconds kept, nothing of
the digits left, idempotent; and bleeping a recording on every channel."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from builders import make_call, word_times
from pydantic import ValidationError

from indexer.errors import AudioError
from indexer.redaction.audio import bleep_file, sample_ranges
from indexer.redaction.policy import Policy, find_spans, masked_times, redact_call
from indexer.search.query import And, Match, Not, Pattern, RoleFilter, parse_query
from indexer.search.text import terms_of_text
from indexer.settings import Settings
from indexer.transcript import Utterance, Word

CARD = "4276 7975 4323 1948"


def _all_text(call: object) -> str:
    return str(call.model_dump_json())  # type: ignore[attr-defined]


def test_mask_replaces_the_span_by_its_token_in_words_and_text() -> None:
    call = make_call(
        "c1",
        [
            ("manager", "Диктуйте номер карты"),
            ("client", f"Записывайте: {CARD}, и ещё телефон 8-916-123-45-67."),
        ],
        language="ru",
    )
    card_times = word_times(call, 1, 1, 4)
    phone_times = word_times(call, 1, 8, 8)
    redacted = redact_call(call, Policy.MASK)
    utterance = redacted.call.utterances[1]
    assert utterance.text == "Записывайте: [card], и ещё телефон [phone]."
    assert [w.text for w in utterance.words] == [
        "Записывайте:", "[card],", "и", "ещё", "телефон", "[phone].",
    ]  # fmt: skip
    assert (utterance.words[1].start, utterance.words[1].end) == card_times
    assert (utterance.words[5].start, utterance.words[5].end) == phone_times
    assert redacted.counts() == {"card": 1, "phone": 1}
    # Nothing of the numbers is left anywhere in the call, the metadata phone included.
    assert not re.search(r"4276|1948|916|45-67", _all_text(redacted.call))
    assert redacted.call.client.phone == "[phone]"
    assert redacted.call.utterances[0] == call.utterances[0]
    assert masked_times(redacted.call) == [card_times, phone_times]


def test_mask_is_idempotent_and_off_keeps_the_call() -> None:
    call = make_call("c2", [("client", "почта иван собака mail точка ru спасибо")], language="ru")
    once = redact_call(call, Policy.MASK).call
    assert [w.text for w in once.utterances[0].words] == ["почта", "[email]", "спасибо"]
    again = redact_call(once, Policy.MASK)
    assert again.call == once
    assert again.spans == ()
    assert redact_call(call, Policy.OFF).call == call


def test_a_number_read_over_two_utterances_is_masked_in_both() -> None:
    call = make_call(
        "c3",
        [
            ("client", "карта 4276 7975"),
            ("manager", "да"),
            ("client", "4323 1948 всё"),
        ],
    )
    spans = find_spans(call)
    assert [(s.pii.value, s.utterance, s.first, s.last) for s in spans] == [
        ("card", 0, 1, 2),
        ("card", 2, 0, 1),
    ]
    masked = redact_call(call, Policy.MASK).call
    assert masked.utterances[0].text == "карта [card]"
    assert masked.utterances[2].text == "[card] всё"


def _said(speaker: str, role: str, timed: list[tuple[str, float, float]]) -> Utterance:
    words = [Word(text=text, start=start, end=end) for text, start, end in timed]
    return Utterance(
        speaker=speaker,
        role=role,  # type: ignore[arg-type]
        start=words[0].start,
        end=words[-1].end,
        text=" ".join(w.text for w in words),
        words=words,
    )


# The redaction ASR test's stereo call as Whisper base transcribed it (tests/asr/
# test_asr_redaction.py): the client reads the card out; its echo on the manager's line.
QUESTION = [
    ("Can", 0.04, 0.16), ("I", 0.16, 0.3), ("take", 0.3, 0.62), ("the", 0.62, 0.8),
    ("card", 0.8, 1.06), ("number", 1.06, 1.44), ("for", 1.44, 1.72), ("the", 1.72, 1.88),
    ("prepayment?", 1.88, 2.5),
]  # fmt: skip
READ_OUT = [
    ("My", 3.77, 3.89), ("card", 3.89, 4.19), ("number", 4.19, 4.63), ("is", 4.63, 4.85),
    ("4276-7975-4323-1948", 4.85, 10.91),
]  # fmt: skip

# The whole echo, "card" heard as "car" and one digit wrong: no keyword, no Luhn.
MISHEARD_ECHO = [
    ("My", 3.82, 3.95), ("car", 3.95, 4.27), ("number", 4.27, 4.71), ("is", 4.71, 4.91),
    ("4276,", 4.91, 6.27), ("7975,", 6.63, 8.19), ("4323,", 8.59, 9.71), ("1949.", 9.99, 10.99),
]  # fmt: skip


@pytest.mark.parametrize(
    "echo",
    [
        [("1948.", 9.99, 10.99)],  # only the end of the echo was heard on the manager's line
        [("4323,", 8.59, 9.71), ("nineteen", 9.99, 10.4), ("forty-eight.", 10.4, 10.99)],
        MISHEARD_ECHO,
    ],
    ids=["one-group", "spelled", "misheard-no-keyword"],
)
def test_digits_heard_on_the_other_line_while_a_card_is_read_out_are_masked(
    echo: list[tuple[str, float, float]],
) -> None:
    call = make_call("c5", [("manager", "hello"), ("client", "hello")])
    utterances = [
        _said("left", "manager", QUESTION),
        _said("right", "client", READ_OUT),
        _said("left", "manager", echo),
    ]
    call = call.model_copy(update={"utterances": utterances})
    masked = redact_call(call, Policy.MASK).call
    assert not re.search(r"\d|nineteen|forty", masked.utterances[2].text), masked.utterances[2]
    assert masked.utterances[1].text == "My card number is [card]"
    assert "[card]" in masked.utterances[2].text
    # The manager's own words around it stay: only the digits said meanwhile are the card's.
    assert masked.utterances[0] == call.utterances[0]


def test_digits_said_apart_from_another_speakers_number_are_judged_alone() -> None:
    call = make_call("c6", [("manager", "hello"), ("client", "hello")])
    later = [("Room", 12.0, 12.3), ("1948,", 12.4, 13.0), ("fine.", 13.1, 13.4)]
    utterances = [_said("right", "client", READ_OUT), _said("left", "manager", later)]
    call = call.model_copy(update={"utterances": utterances})
    masked = redact_call(call, Policy.MASK).call
    assert masked.utterances[1].text == "Room 1948, fine."


def test_text_unlike_the_words_is_rebuilt_from_the_masked_words() -> None:
    call = make_call("c4", [("client", f"card {CARD}")])
    odd = call.utterances[0].model_copy(update={"text": "card four two seven six ..."})
    call = call.model_copy(update={"utterances": [odd]})
    masked = redact_call(call, Policy.MASK).call
    assert masked.utterances[0].text == "card [card]"


def _stereo(path: Path, seconds: float, rate: int, subtype: str) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * 660 * t)  # the other side's echo
    sf.write(str(path), np.stack([left, right], axis=1), rate, subtype=subtype)
    data: np.ndarray = sf.read(str(path), dtype="int16", always_2d=True)[0]
    return data


@pytest.mark.parametrize("subtype", ["PCM_16", "ULAW", "ALAW"])
def test_bleep_silences_every_channel_and_keeps_the_rest(tmp_path: Path, subtype: str) -> None:
    rate = 8000
    source, target = tmp_path / "call.wav", tmp_path / "out" / "call.wav"
    original = _stereo(source, 3.0, rate, subtype)
    ranges = bleep_file(source, target, [(0.5, 0.9), (2.0, 2.2)], padding_s=0.1)
    assert ranges == [(3200, 8000), (15200, 18400)]
    info, bleeped = sf.info(str(target)), sf.read(str(target), dtype="int16", always_2d=True)[0]
    assert (info.samplerate, info.channels, info.subtype) == (rate, 2, subtype)
    inside = np.zeros(len(original), dtype=bool)
    for begin, end in ranges:
        inside[begin:end] = True
    # A-law has no code for zero: its silence decodes to ±8 of 32768 (-72 dBFS).
    floor = 8.0 if subtype == "ALAW" else 0.0
    for channel in (0, 1):
        assert np.sqrt(np.mean(bleeped[inside, channel].astype(float) ** 2)) <= floor
        assert np.sqrt(np.mean(original[inside, channel].astype(float) ** 2)) > 1000
    assert np.array_equal(bleeped[~inside], original[~inside])


def test_sample_ranges_merge_and_clip() -> None:
    assert sample_ranges([(0.0, 0.1), (0.15, 0.3), (0.9, 2.0)], 100, 100, 0.05) == [
        (0, 35),
        (85, 100),
    ]


def test_bleep_of_a_file_that_is_no_recording_names_it(tmp_path: Path) -> None:
    source = tmp_path / "notes.wav"
    source.write_text("not audio")
    with pytest.raises(AudioError, match=r"notes\.wav: cannot read"):
        bleep_file(source, tmp_path / "out.wav", [(0.0, 1.0)], padding_s=0.0)
    assert not (tmp_path / "out.wav").exists()


def test_class_tokens_are_one_term_and_never_the_plain_word() -> None:
    assert terms_of_text("[card], [Phone]. card") == ["[card]", "[phone]", "card"]
    assert terms_of_text("[music]") == ["music"]  # only the redaction classes are tokens


def test_bleep_needs_a_directory_for_the_copies() -> None:
    with pytest.raises(ValidationError, match="EARSHOT_REDACTION_AUDIO_DIR"):
        Settings(redaction="bleep")
    assert Settings(redaction="bleep", redaction_audio_dir=Path("/tmp/x")).redaction == "bleep"


def test_the_query_language_reads_a_class_token_as_one_word() -> None:
    tree = parse_query("client:[card] AND NOT [phone]")
    assert isinstance(tree, And)
    card, not_phone = tree.items
    assert isinstance(card, Match)
    assert isinstance(not_phone, Not)
    assert card.what == Pattern(("[card]",))
    assert card.role is RoleFilter.CLIENT
    assert not_phone.item == Match(Pattern(("[phone]",)))
