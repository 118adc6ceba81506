"""A word of the contract is a slotted pydantic dataclass (it is validated ~690 times a call), not
a model like the records around it. It must accept and refuse exactly what the model ``Word``
accepted (main before the change, restated below as the oracle, with one rule since: a word's
seconds are a JSON number, never a string or a boolean), parse to the same call, and refuse
with the same field and message; and a document's stored words must be what the model's
serialiser made of them."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Annotated, Any, Self

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from indexer import transcript
from indexer.errors import TranscriptError
from indexer.index.documents import call_document, locate_words
from indexer.settings import PROJECT_ROOT
from indexer.transcript import Seconds, parse_call

SAMPLE = json.loads(
    sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))[0].read_text(encoding="utf-8")
)


def json_number(value: Any) -> Any:
    """The oracle's own statement of the numbers rule: a string or a boolean is refused."""
    if isinstance(value, str | bool):
        kind = "a boolean" if isinstance(value, bool) else "a string"
        raise PydanticCustomError("float_type", f"Input should be a number, not {kind}")
    return value


WordSeconds = Annotated[Seconds, BeforeValidator(json_number)]


class Word(BaseModel):
    """``indexer.transcript.Word`` as a model, as it was defined before it became a dataclass
    (named as it was: pydantic's messages name the class), its numbers JSON numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str = Field(min_length=1)
    start: WordSeconds
    end: WordSeconds
    score: Annotated[float | None, BeforeValidator(json_number)] = Field(
        default=None, ge=0, le=1, allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"word ends ({self.end}) before it starts ({self.start})")
        return self


class ModelUtterance(transcript.Utterance):
    words: list[Word]  # type: ignore[assignment]


class ModelCall(transcript.Call):
    utterances: list[ModelUtterance]  # type: ignore[assignment]


def oracle(data: dict[str, Any]) -> tuple[str, str] | dict[str, Any]:
    """What the model contract made of ``data``: the parsed call as JSON, or (field, message)
    as ``parse_call`` words a refusal."""
    try:
        return ModelCall.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(root)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return field, f"{first['msg']}{more}"


def contract(data: dict[str, Any]) -> tuple[str, str] | dict[str, Any]:
    try:
        return parse_call(data, "generated").model_dump(mode="json")
    except TranscriptError as exc:
        return exc.field, exc.message


def with_words(words: list[Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(SAMPLE))
    data["utterances"][0]["words"] = words
    return data


finite_seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
valid_words = st.builds(
    lambda text, a, b, score: {"text": text, "start": min(a, b), "end": max(a, b), "score": score},
    st.text(min_size=1, max_size=8),
    finite_seconds,
    finite_seconds,
    st.none() | st.floats(min_value=0, max_value=1),
)
# Values a producer may put anywhere by mistake: each kind pydantic treats in its own way.
any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=4),
    st.sampled_from(["1.5", "-0", "1e3", "nan", "inf", " 2 ", "", "0x10"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def mutated_words(draw: st.DrawFn) -> Any:
    word: dict[str, Any] = draw(valid_words)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        action = draw(st.sampled_from(["set", "drop", "extra", "swap"]))
        key = draw(st.sampled_from(["text", "start", "end", "score"]))
        if action == "set":
            word[key] = draw(any_value)
        elif action == "drop":
            word.pop(key, None)
        elif action == "extra":
            word[draw(st.sampled_from(["speaker", "conf", "Text", ""]))] = draw(any_value)
        else:
            word["start"], word["end"] = word.get("end"), word.get("start")
    if draw(st.integers(min_value=0, max_value=19)) == 0:
        return draw(any_value)  # not a word at all
    return word


def same(expected: tuple[str, str] | dict[str, Any], got: tuple[str, str] | dict[str, Any]) -> bool:
    """Equal, NaN-free outcomes compare by value; json.dumps shows where they differ."""
    return json.dumps(expected, sort_keys=True) == json.dumps(got, sort_keys=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_words, min_size=1, max_size=4))
def test_valid_words_parse_as_the_model_parsed_them(words: list[dict[str, Any]]) -> None:
    data = with_words(words)

    expected, got = oracle(data), contract(data)

    assert isinstance(expected, dict), expected
    assert same(expected, got)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_words | mutated_words(), min_size=1, max_size=3))
def test_mutated_words_are_accepted_or_refused_as_the_model_did(words: list[Any]) -> None:
    data = with_words(words)

    expected, got = oracle(data), contract(data)

    assert type(expected) is type(got), (words, expected, got)
    assert same(expected, got), (words, expected, got)


@pytest.mark.parametrize(
    ("word", "field", "message"),
    [
        ({"text": "a", "start": 1, "end": 2, "conf": 1}, "utterances.0.words.0.conf", "Extra"),
        ("a", "utterances.0.words.0", "valid dictionary or instance of Word"),
        ({"text": "a", "start": 2, "end": 1}, "utterances.0.words.0", "before it starts"),
        ({"text": "a", "start": 1, "end": math.inf}, "utterances.0.words.0.end", "finite"),
        ({"text": "a", "start": "1.5", "end": 2}, "utterances.0.words.0.start", "not a string"),
        ({"text": "a", "start": 1, "end": "2"}, "utterances.0.words.0.end", "not a string"),
        ({"text": "a", "start": False, "end": 2}, "utterances.0.words.0.start", "not a boolean"),
        ({"text": "a", "start": 0, "end": True}, "utterances.0.words.0.end", "not a boolean"),
        (
            {"text": "a", "start": 0, "end": 1, "score": "0.9"},
            "utterances.0.words.0.score",
            "not a string",
        ),
    ],
)
def test_a_refused_word_names_its_field(word: Any, field: str, message: str) -> None:
    with pytest.raises(TranscriptError) as caught:
        parse_call(with_words([word]), "bad.json")

    assert caught.value.field == field
    assert message in caught.value.message
    assert (field, caught.value.message) == oracle(with_words([word]))


def test_whole_seconds_are_numbers_too() -> None:
    call = parse_call(with_words([{"text": "a", "start": 1, "end": 2}]), "ints.json")

    word = call.utterances[0].words[0]
    assert (word.start, word.end) == (1.0, 2.0)
    assert isinstance(word.start, float)


def test_stored_words_are_what_the_serialiser_made_of_them() -> None:
    serialiser = TypeAdapter(list[transcript.Word])
    for path in sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json")):
        call = parse_call(json.loads(path.read_text(encoding="utf-8")), str(path))
        document = call_document(call)
        for utterance, stored in zip(call.utterances, document["utterances"], strict=True):
            expected = serialiser.dump_python(utterance.words, mode="json")
            spans = locate_words(utterance.text, utterance.words)
            for entry, span in zip(expected, spans, strict=True):
                entry["char_start"], entry["char_end"] = span if span else (None, None)
            assert stored["words"] == expected
            # Same keys in the same order: the document's JSON bytes stay the same.
            fields = [field.name for field in dataclasses.fields(transcript.Word)]
            assert [list(entry) for entry in stored["words"]] == [
                [*fields, "char_start", "char_end"] for _ in expected
            ]
            assert [list(entry) for entry in expected] == [list(e) for e in stored["words"]]
