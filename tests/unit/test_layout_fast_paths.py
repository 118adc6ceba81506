"""The build side's fast paths of the term layout (indexer/search/layout.py) and the caches
behind them, held to the plain computation they replaced, restated here as the oracle, on the
sample calls and generated corpus calls (each call laid out twice, so the second layout is made
from warm caches), and on positions outside the first four hours or past the call's end."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.corpus import CorpusGenerator
from indexer.search.layout import (
    MAX_SECOND,
    CallLayout,
    TermLayout,
    call_layout,
    second_token,
    stored_layouts,
    term_layout,
)
from indexer.search.morphology import indexed_lemmas, lemmas
from indexer.search.transliteration import indexed_key
from indexer.settings import PROJECT_ROOT
from indexer.transcript import Call, Role, Utterance, read_call_file

SAMPLES = sorted((PROJECT_ROOT / "samples" / "calls").glob("*.json"))


def sample_and_corpus_calls() -> list[Call]:
    generator = CorpusGenerator()
    generated = [Call.model_validate(generator.call(index)[0]) for index in range(12)]
    return [read_call_file(path) for path in SAMPLES] + generated


def plain_second_token(seconds: float) -> str:
    return f"{min(max(math.floor(seconds), 0), MAX_SECOND):05d}"


def plain_lemmas(term: str) -> tuple[str, str]:
    found = lemmas.__wrapped__(term)  # not the cache either
    return found[0], found[1] if len(found) > 1 else found[0]


def assert_plain(layout: TermLayout, words: list[dict[str, Any]], duration_s: float) -> None:
    """Every per-position list of the layout against a loop over its terms."""
    texts = [term.text for term in layout.terms]
    starts = [plain_second_token(words[t.first_word]["start"]) for t in layout.terms]
    to_ends = [plain_second_token(duration_s - words[t.last_word]["end"]) for t in layout.terms]
    assert layout.texts == texts
    assert layout.lemma == [plain_lemmas(text)[0] for text in texts]
    assert layout.lemma_alt == [plain_lemmas(text)[1] for text in texts]
    assert layout.translit == [indexed_key.__wrapped__(text) for text in texts]
    assert layout.start_s == starts
    assert layout.to_end_s == to_ends
    assert layout.start_tens == [token[:-1] for token in starts]
    assert layout.to_end_tens == [token[:-1] for token in to_ends]
    for text in [*texts, "never-said"]:
        assert layout.positions_of(text) == [i for i, other in enumerate(texts) if other == text]


def test_the_layout_of_real_calls_is_the_plain_computation() -> None:
    said: set[str] = set()
    calls = sample_and_corpus_calls()
    for _laid_out_before in (False, True):  # the second time from the warm caches
        for call in calls:
            layouts = CallLayout(term_layout(u.words, call.duration_s) for u in call.utterances)
            for utterance, layout in zip(call.utterances, layouts, strict=True):
                words = [{"text": w.text, "start": w.start, "end": w.end} for w in utterance.words]
                assert_plain(layout, words, call.duration_s)
                said.update(layout.texts)
            assert layouts.terms == {text for layout in layouts for text in layout.texts}
    assert len(said) > 1000  # the calls say enough distinct terms to exercise the caches


def test_a_term_has_its_lemma_pair_from_the_cache_as_without_it() -> None:
    for text in ["стали", "дорого", "contracts", "15000", "[card]", "o'neil", "ёлка"]:
        assert indexed_lemmas(text) == plain_lemmas(text)
        assert indexed_lemmas(text) == indexed_lemmas.__wrapped__(text)


@pytest.mark.parametrize(
    ("start", "end", "duration_s"),
    [
        (14_399.7, 14_399.9, 14_500.0),  # the last second of the lookup table
        (14_400.0, 14_401.5, 14_500.0),  # past it: formatted
        (30.0, 95.0, 90.0),  # ends after the call: a negative distance to the end
        (200_000.0, 200_001.0, 200_002.0),  # past MAX_SECOND: clamped
        (0.0, 0.4, 0.4),
    ],
)
def test_positions_outside_the_lookup_take_the_plain_path(
    start: float, end: float, duration_s: float
) -> None:
    words = [
        {"text": "за", "start": 1.0, "end": 1.2},
        {"text": "15", "start": start, "end": start},
        {"text": "000", "start": start, "end": end},
        {"text": "рублей", "start": end, "end": end},
    ]
    layout = term_layout(words, duration_s)

    assert_plain(layout, words, duration_s)
    assert [term.text for term in layout.terms] == ["за", "15000", "рублей"]
    assert layout.start_s[1] == second_token(start)


FIELDS = (
    "texts",
    "lemma",
    "lemma_alt",
    "translit",
    "start_s",
    "to_end_s",
    "start_tens",
    "to_end_tens",
    "number",
    "numbers_at",
    "lemma_positions",
    "translit_positions",
)


def utterance(words: list[str], start: float) -> Utterance:
    """An utterance of ``words``, a third of a second each from ``start``."""
    timed = [
        {"text": text, "start": start + i / 3, "end": start + (i + 1) / 3}
        for i, text in enumerate(words)
    ]
    return Utterance.model_validate(
        {
            "speaker": "A",
            "role": "client",
            "start": start,
            "end": start + len(words) / 3,
            "text": " ".join(words),
            "words": timed,
        }
    )


def mixed_call() -> Call:
    """A call whose utterances are laid out both ways: aligned ones (the call's columns) and
    ones whose words are not each one term (a digit group, a hyphenated word, punctuation
    alone), numbers in words and digits, an utterance without words, one past four hours."""
    base = read_call_file(SAMPLES[0])
    utterances = [
        utterance(["Пятнадцать", "тысяч", "рублей", "дорого"], 0.0),
        utterance(["за", "15", "000", "рублей"], 3.0),  # a digit group: two words, one term
        utterance(["send", "me", "the", "contract"], 6.0),
        utterance(["my", "e-mail", "is", "ok"], 9.0),  # several terms in one word
        utterance(["—", "да"], 12.0),  # a word with no term
        Utterance(speaker="A", role=Role.CLIENT, start=13.0, end=13.0, text="", words=[]),
        utterance(["twenty", "five", "calls"], 14.0),
        utterance(["ёлка", "стали", "дорого"], 14_399.0),  # the lookup's edge and past it
    ]
    return base.model_copy(update={"utterances": utterances, "duration_s": 14_500.0})


@pytest.mark.parametrize(
    "call", [mixed_call(), *sample_and_corpus_calls()], ids=lambda call: call.call_id
)
def test_a_calls_layout_is_each_utterance_laid_out_alone(call: Call) -> None:
    """``call_layout`` makes the layouts of a call's aligned utterances as slices of call-wide
    lists: field for field, each is the layout ``term_layout`` makes of the utterance alone
    (itself held to the plain computation above), and the call's sets of terms and lemmas are
    those of its utterances."""
    layouts = call_layout(call, keep=False)
    alone = [term_layout(u.words, call.duration_s) for u in call.utterances]

    assert len(layouts) == len(alone)
    for by_call, by_itself in zip(layouts, alone, strict=True):
        assert by_call.terms == by_itself.terms
        for field in FIELDS:
            assert getattr(by_call, field) == getattr(by_itself, field), field
    assert layouts.terms == {text for layout in alone for text in layout.texts}
    assert layouts.lemmas == {
        lemma for layout in alone for lemma in (*layout.lemma, *layout.lemma_alt)
    }


@pytest.mark.parametrize(
    "call", [mixed_call(), *sample_and_corpus_calls()], ids=lambda call: call.call_id
)
def test_stored_words_laid_out_together_are_each_utterance_laid_out_alone(call: Call) -> None:
    """The hits of a search are rebuilt from a document's stored words, every utterance the
    search returned for a call laid out together (``stored_layouts``, as a call is): field for
    field, each layout is the one ``term_layout`` makes of those words alone. Every other
    utterance is taken, as a search returns some of a call's utterances, not all."""
    stored = [
        [{"text": w.text, "start": w.start, "end": w.end} for w in u.words] for u in call.utterances
    ]
    for returned in (stored, stored[::2], stored[1::2], stored[:1], []):
        together = stored_layouts(returned, call.duration_s)
        alone = [term_layout(words, call.duration_s) for words in returned]

        assert len(together) == len(alone)
        for by_page, by_itself in zip(together, alone, strict=True):
            assert by_page.terms == by_itself.terms
            for field in FIELDS:
                assert getattr(by_page, field) == getattr(by_itself, field), field


def test_the_mixed_call_has_both_kinds_of_utterance_and_numbers() -> None:
    """The call above exercises what it says: utterances of both kinds, and numbers."""
    layouts = call_layout(mixed_call(), keep=False)
    counts = [len(layout.terms) for layout in layouts]
    words = [len(u.words) for u in mixed_call().utterances]

    assert counts != words  # some utterance's terms are not its words one for one
    assert counts[0] == words[0]  # and some are
    assert counts[2] == words[2]
    assert layouts[0].numbers_at == {0: ("15000", 2)}
    assert layouts[1].texts == ["за", "15000", "рублей"]  # the digit group joined
    assert layouts[6].numbers_at == {0: ("25", 2)}


def test_a_layout_is_kept_for_the_next_user_unless_its_last_user_says_so() -> None:
    call = sample_and_corpus_calls()[0]
    kept = call_layout(call)

    assert call_layout(call) is kept  # the tagger's layout, read again by the document
    assert call_layout(call, keep=False) is kept  # the last user still gets it ...
    assert call_layout(call) is not kept  # ... and it is not kept after
