"""Property: a phrase search returns exactly the calls where the phrase was said, in the asked
role, inside one utterance — never more, never fewer — and a hit for every occurrence.

Transcripts are generated from a tiny vocabulary (with case, ё and punctuation variants) so that
phrases recur, overlap, and straddle utterance boundaries often. The expected answer is computed
by brute force over the generated words.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from builders import make_call
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.search.text import find_phrase, terms_of_text, terms_of_words
from indexer.transcript import Call

VOCABULARY = [
    "Цена",
    "цена,",
    "ещё",
    "еще",
    "дорого!",
    "Price",
    "price.",
    "too",
    "expensive",
    "15",
    "000",
]
ROLES = ["manager", "client"]
example_counter = itertools.count()

utterance_st = st.tuples(
    st.sampled_from(ROLES), st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6)
)
call_st = st.lists(utterance_st, min_size=1, max_size=5)
phrase_st = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=3)


def expected_hits(
    calls: list[Call], phrase: list[str], role: str
) -> set[tuple[str, int, float, float]]:
    wanted = terms_of_text(" ".join(phrase))
    found = set()
    for call in calls:
        for index, utterance in enumerate(call.utterances):
            if role != "any" and utterance.role != role:
                continue
            terms = terms_of_words([word.text for word in utterance.words])
            for first, last in find_phrase(terms, wanted):
                start = utterance.words[terms[first].first_word].start
                end = utterance.words[terms[last].last_word].end
                found.add((call.call_id, index, start, end))
    return found


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    generated=st.lists(call_st, min_size=1, max_size=4),
    phrase=phrase_st,
    role=st.sampled_from([*ROLES, "any"]),
)
def test_phrase_search_is_exact(
    api: TestClient,
    index_calls: Callable[..., None],
    generated: list[list[tuple[str, list[str]]]],
    phrase: list[str],
    role: str,
) -> None:
    # Each example gets its own manager id, so earlier examples in the same index do not count.
    manager = f"m-{next(example_counter)}"
    calls = [
        make_call(
            f"{manager}-c{n}",
            [(who, " ".join(words)) for who, words in turns],
            manager_id=manager,
        )
        for n, turns in enumerate(generated)
    ]
    index_calls(*calls)

    params: dict[str, Any] = {"q": f'"{" ".join(phrase)}"', "role": role, "manager_id": manager}
    body = api.get("/v1/search", params={**params, "size": 10}).json()

    want = expected_hits(calls, phrase, role)
    got = {
        (call["call_id"], hit["utterance_index"], hit["start"], hit["end"])
        for call in body["calls"]
        for hit in call["hits"]
    }
    assert {call["call_id"] for call in body["calls"]} == {hit[0] for hit in want}
    assert body["total"] == len({hit[0] for hit in want})
    assert got == want
