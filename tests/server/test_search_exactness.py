"""Property: a phrase search returns exactly the calls where the phrase was said, in the asked
role, inside one utterance — never more, never fewer — a hit for every occurrence, and the loader
tags a call with a tracker of that phrase exactly when it was said.

The expected answer comes from ``tests/oracle.py``: a hand-written table of what each word of
the vocabulary means as terms and a literal scan — never the production tokenizer. Transcripts
mix case, ``ё``, leading and pure punctuation, multi-term words, numbers in every spelling
(``15 000``, ``15000``, ``$15,000``, ``2,5``, and ``15 — 000``, which must not join), role
``unknown``, overlapping, zero-length and untimed words, and file order that is not time order.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from hypothesis import example, given, note
from hypothesis import strategies as st
from oracle import (
    VOCABULARY,
    GenUtterance,
    GenWord,
    Judge,
    Leaf,
    Pattern,
    gen_call,
    oracle_terms,
    transcript_st,
)

from indexer.index.loader import load_calls
from indexer.search.query import Mode, RoleFilter
from indexer.settings import Settings
from indexer.trackers.model import Tracker
from indexer.trackers.tagging import tagger
from indexer.transcript import SourcedCall

example_counter = itertools.count()
phrase_st = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3).filter(
    lambda words: bool(oracle_terms(words))
)


def _utterance(role: str, *texts: str) -> GenUtterance:
    return GenUtterance(
        role, tuple(GenWord(t, i * 1.0, i * 1.0 + 0.5) for i, t in enumerate(texts))
    )


# Kept cases: a dash between digit groups keeps them apart; ё folded in upper case.
@example(generated=[[_utterance("client", "15", "—", "000")]], phrase=["15", "000"], role="any")
@example(generated=[[_utterance("client", "15", "000")]], phrase=["15000"], role="client")
@example(generated=[[_utterance("manager", "ЕЩЁ", "Цена")]], phrase=["еще", "цена,"], role="any")
@example(generated=[[_utterance("unknown", "e-mail")]], phrase=["mail"], role="manager")
@given(
    generated=st.lists(transcript_st(), min_size=1, max_size=3),
    phrase=phrase_st,
    role=st.sampled_from(["manager", "client", "any"]),
)
def test_phrase_search_is_exact(
    api: TestClient,
    es: Elasticsearch,
    settings: Settings,
    generated: list[list[GenUtterance]],
    phrase: list[str],
    role: str,
) -> None:
    # Each example gets its own manager id, so earlier examples in the same index do not count.
    manager = f"m-{next(example_counter)}"
    calls = [gen_call(f"{manager}-c{n}", manager, turns) for n, turns in enumerate(generated)]
    typed = " ".join(phrase)
    note(f"phrase={typed!r} role={role} calls={[c.model_dump(mode='json') for c in calls]}")
    now = datetime.now(UTC)
    tracker = Tracker(
        id="said",
        name="said",
        phrases=[typed],
        role=RoleFilter(role),
        mode=Mode.EXACT,
        created_at=now,
        updated_at=now,
    )
    summary = load_calls(
        es, settings, [SourcedCall("test", c) for c in calls], tag=tagger([tracker])
    )
    assert summary.failures == []

    leaf = Leaf(Pattern(tuple(phrase)))
    judges = {call.call_id: Judge(call, role) for call in calls}
    want = {(call_id, *hit) for call_id, judge in judges.items() for hit in judge.hits(leaf)}
    want_calls = {call_id for call_id, judge in judges.items() if judge.matches(leaf)}

    params = {"q": f'"{typed}"', "role": role, "manager_id": manager, "size": 10}
    response = api.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    got = {
        (call["call_id"], hit["utterance_index"], hit["start"], hit["end"])
        for call in body["calls"]
        for hit in call["hits"]
    }
    assert {call["call_id"] for call in body["calls"]} == want_calls
    assert body["total"] == len(want_calls)
    assert got == want

    listed = api.get("/v1/search", params={"manager_id": manager, "size": 10}).json()
    tagged = {call["call_id"] for call in listed["calls"] if "said" in call["trackers"]}
    assert tagged == want_calls


def test_a_phrase_of_punctuation_alone_is_a_clear_400(api: TestClient) -> None:
    response = api.get("/v1/search", params={"q": '"— ..."'})
    assert response.status_code == 400
    assert "empty phrase" in response.json()["detail"]
