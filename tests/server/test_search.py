"""Exact phrase and role search through the real API on the real Elasticsearch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from builders import make_call, search, word_times
from fastapi.testclient import TestClient

Load = Callable[..., None]


def call_ids(body: dict[str, Any]) -> set[str]:
    return {call["call_id"] for call in body["calls"]}


@pytest.mark.parametrize(
    ("language", "first", "second", "phrase"),
    [
        ("en", "Fine, please send me the", "contract by Friday.", "send me the contract"),
        ("ru", "Хорошо, пришлите", "договор до пятницы.", "пришлите договор"),
    ],
)
def test_phrase_split_across_utterances_does_not_match(
    api: TestClient, index_calls: Load, language: str, first: str, second: str, phrase: str
) -> None:
    split = make_call("split", [("client", first), ("client", second)], language=language)
    whole = make_call("whole", [("client", f"{first} {second}")], language=language)
    index_calls(split, whole)

    body = search(api, f'"{phrase}"')

    assert call_ids(body) == {"whole"}
    assert body["total"] == 1


@pytest.mark.parametrize(
    ("language", "text", "phrase"),
    [
        ("en", "That is too expensive for us.", "too expensive"),
        ("ru", "Это дорого для нас.", "дорого"),
    ],
)
def test_role_filter_uses_who_said_it(
    api: TestClient, index_calls: Load, language: str, text: str, phrase: str
) -> None:
    client_said = make_call(
        "client-said", [("manager", "Hello."), ("client", text)], language=language
    )
    manager_said = make_call(
        "manager-said", [("manager", text), ("client", "Hm.")], language=language
    )
    index_calls(client_said, manager_said)

    assert call_ids(search(api, f'"{phrase}"', role="manager")) == {"manager-said"}
    assert call_ids(search(api, f'"{phrase}"', role="client")) == {"client-said"}
    assert call_ids(search(api, f'"{phrase}"', role="any")) == {"client-said", "manager-said"}
    hit = search(api, f'"{phrase}"', role="client")["calls"][0]["hits"][0]
    assert (hit["role"], hit["speaker"], hit["utterance_index"]) == ("client", "SPEAKER_01", 1)


@pytest.mark.parametrize(
    ("language", "text", "phrase", "occurrences"),
    [
        (
            "en",
            "Send me the contract, yes, send me the contract today.",
            "send me the contract",
            [(0, 3), (5, 8)],
        ),
        ("ru", "Дорого. Очень дорого, правда дорого!", "дорого", [(0, 0), (2, 2), (4, 4)]),
    ],
)
def test_phrase_twice_in_one_utterance_gives_a_hit_each_with_its_words_times(
    api: TestClient,
    index_calls: Load,
    language: str,
    text: str,
    phrase: str,
    occurrences: list[tuple[int, int]],
) -> None:
    call = make_call("twice", [("manager", "Hello there."), ("client", text)], language=language)
    index_calls(call)

    hits = search(api, f'"{phrase}"')["calls"][0]["hits"]

    assert [(hit["start"], hit["end"]) for hit in hits] == [
        word_times(call, 1, first, last) for first, last in occurrences
    ]
    assert len({hit["start"] for hit in hits}) == len(occurrences)
    words = text.split()
    for hit, (first, last) in zip(hits, occurrences, strict=True):
        ((span_start, span_end),) = hit["spans"]
        assert hit["text"][span_start:span_end] == " ".join(words[first : last + 1]).strip(",.!")


@pytest.mark.parametrize(
    ("spoken", "typed"),
    [
        ("Мы ещё подумаем.", "еще подумаем"),
        ("Мы еще подумаем.", "ЕЩЁ ПОДУМАЕМ"),
        ("Её счёт оплачен.", "ее счет"),
        ("OK — Send me the CONTRACT, please!", "send, me: the contract"),
        ("It's too expensive...", "IT'S TOO EXPENSIVE"),
    ],
)
def test_case_punctuation_and_yo_do_not_matter(
    api: TestClient, index_calls: Load, spoken: str, typed: str
) -> None:
    index_calls(make_call("said", [("client", spoken)]), make_call("other", [("client", "Нет.")]))

    assert call_ids(search(api, f'"{typed}"')) == {"said"}


@pytest.mark.parametrize(
    ("spoken", "typed"),
    [
        ("Это стоит 15 000 рублей.", "15000"),
        ("Это стоит 15000 рублей.", "15 000"),
        ("It costs 15,000 dollars.", "15 000"),
        ("It costs 15 000 dollars.", '"15,000 dollars"'),
        ("Скидка 10% на 3 месяца.", '"на 3 месяца"'),
        ("Ставка 2,5 процента.", "2.5"),
    ],
)
def test_numbers_are_searchable_however_written(
    api: TestClient, index_calls: Load, spoken: str, typed: str
) -> None:
    index_calls(
        make_call("number", [("manager", spoken)]),
        make_call("other", [("manager", "Это стоит 150 рублей, 15 и 000.")]),
    )

    body = search(api, typed)

    assert call_ids(body) == {"number"}


def test_number_hit_spans_all_words_of_the_number(api: TestClient, index_calls: Load) -> None:
    call = make_call("n", [("manager", "Итого 15 000 рублей.")], language="ru")
    index_calls(call)

    (hit,) = search(api, "15000")["calls"][0]["hits"]

    assert (hit["start"], hit["end"]) == word_times(call, 0, 1, 2)
    assert hit["text"][slice(*hit["spans"][0])] == "15 000"


def test_every_word_and_phrase_must_occur_each_in_one_utterance(
    api: TestClient, index_calls: Load
) -> None:
    both = make_call("both", [("client", "It is expensive."), ("client", "Send me the contract.")])
    one = make_call("one", [("client", "It is expensive.")])
    index_calls(both, one)

    body = search(api, 'expensive "send me the contract"')

    assert call_ids(body) == {"both"}
    assert [hit["matched"] for hit in body["calls"][0]["hits"]] == [
        "expensive",
        "send me the contract",
    ]


def test_filters_manager_client_direction_dates_and_duration(
    api: TestClient, index_calls: Load
) -> None:
    def at(day: int) -> datetime:
        return datetime(2026, 3, day, 12, 0, tzinfo=UTC)

    index_calls(
        make_call("a", [("client", "price")], manager_id="m-a", started_at=at(1)),
        make_call("b", [("client", "price")], manager_id="m-b", client_id="c-9", started_at=at(5)),
        make_call("c", [("client", "price please now")], direction="inbound", started_at=at(9)),
    )

    assert call_ids(search(api, "price", manager_id="m-a")) == {"a"}
    assert call_ids(search(api, "price", client_id="c-9")) == {"b"}
    team_b = make_call("d", [("client", "price")], manager_id="m-b", started_at=at(20))
    manager = team_b.manager.model_copy(update={"team": "moscow"})
    index_calls(team_b.model_copy(update={"manager": manager}))
    assert call_ids(search(api, "price", team="moscow")) == {"d"}
    assert call_ids(search(api, "price", team="moscow", manager_id="m-a")) == set()
    assert api.delete("/v1/calls/d").status_code == 204  # the date and length checks below
    assert call_ids(search(api, "price", direction="inbound")) == {"c"}
    assert call_ids(search(api, "price", date_from="2026-03-05", date_to="2026-03-05")) == {"b"}
    assert call_ids(search(api, "price", date_from="2026-03-02T00:00:00Z")) == {"b", "c"}
    assert call_ids(search(api, "price", date_to="2026-03-05")) == {"a", "b"}
    assert call_ids(search(api, "price", min_duration_s=2.0)) == {"c"}
    assert call_ids(search(api, "price", max_duration_s=2.0)) == {"a", "b"}


def test_newest_first_and_cursor_pages_through_every_call_once(
    api: TestClient, index_calls: Load
) -> None:
    calls = [
        make_call(
            f"call-{day:02d}", [("client", "price")], started_at=datetime(2026, 1, day, tzinfo=UTC)
        )
        for day in range(1, 8)
    ]
    index_calls(*calls)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"sort": "newest", "size": 3}
        if cursor:
            params["cursor"] = cursor
        body = search(api, "price", **params)
        assert body["total"] == 7
        seen += [call["call_id"] for call in body["calls"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert seen == [f"call-{day:02d}" for day in range(7, 0, -1)]


def test_relevance_ranks_more_mentions_first(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call("once", [("client", "discount please")]),
        make_call(
            "thrice", [("client", "discount"), ("client", "a discount"), ("client", "discount?")]
        ),
    )

    assert [call["call_id"] for call in search(api, "discount")["calls"]] == ["thrice", "once"]


def test_cursor_from_another_query_is_refused(api: TestClient, index_calls: Load) -> None:
    index_calls(*[make_call(f"c{i}", [("client", "price discount")]) for i in range(3)])
    cursor = search(api, "price", size=1)["next_cursor"]

    response = api.get("/v1/search", params={"q": "discount", "size": 1, "cursor": cursor})

    assert response.status_code == 400
    assert "different query" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": '"send me'}, "unclosed quote"),
        ({"q": "?!"}, "no searchable words"),
        ({"q": "a", "role": "boss"}, "role"),
        ({"q": "a", "size": 0}, "size"),
        ({"q": "a", "size": 100000}, "size must be at most"),
        ({"q": "a", "date_from": "yesterday"}, "date_from"),
        ({"q": "a", "date_from": "2026-02-01", "date_to": "2026-01-01"}, "after date_to"),
        ({"q": "a", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "a" * 5000}, "longer than"),
        ({"q": "a", "mode": "fuzzy"}, "mode"),
    ],
)
def test_bad_parameters_get_400_with_a_message(
    api: TestClient, index_calls: Load, params: dict[str, Any], message: str
) -> None:
    index_calls(make_call("x", [("client", "a")]))

    response = api.get("/v1/search", params=params)

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_unclosed_quote_names_its_position(api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("x", [("client", "a")]))

    body = api.get("/v1/search", params={"q": 'price "send me'}).json()

    assert body["position"] == 6


@pytest.mark.parametrize(
    ("q", "status", "says"),
    [
        ("price AND *", 400, "at least 2 letters"),
        ("price) OR (", 400, "found ')'"),
        ("price~2", 200, ""),  # the words "price" "2": none said
        ("utterances.role:client", 200, ""),  # a phrase of three words, not a field
        ('{"match_all":{}}', 200, ""),  # the phrase "match_all", not a query
    ],
)
def test_query_syntax_characters_are_just_text(
    api: TestClient, index_calls: Load, q: str, status: int, says: str
) -> None:
    index_calls(make_call("x", [("client", "price list")]))

    response = api.get("/v1/search", params={"q": q})

    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["total"] == 0
    else:
        assert says in response.json()["detail"]


def test_get_call_returns_dialogue_with_word_timings(api: TestClient, index_calls: Load) -> None:
    call = make_call(
        "full", [("manager", "Добрый день!"), ("client", "Здравствуйте.")], language="ru"
    )
    index_calls(call)

    body = api.get("/v1/calls/full").json()

    assert [u["text"] for u in body["utterances"]] == ["Добрый день!", "Здравствуйте."]
    assert body["utterances"][0]["words"][1] == {
        "text": "день!",
        "start": call.utterances[0].words[1].start,
        "end": call.utterances[0].words[1].end,
        "score": None,
        "char_start": 7,
        "char_end": 12,
    }


def test_unknown_call_is_404(api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("x", [("client", "a")]))

    response = api.get("/v1/calls/nope")

    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_health_and_readiness(api: TestClient, index_calls: Load) -> None:
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").status_code == 503
    index_calls(make_call("x", [("client", "a")]))
    assert api.get("/readyz").json()["status"] == "ready"


def test_elasticsearch_down_is_503_with_a_clear_message() -> None:
    from api.main import create_app
    from indexer.settings import Settings

    # Nothing listens on port 1 of loopback; retries are off so the test is quick.
    settings = Settings(es_url="http://127.0.0.1:1", es_max_retries=0)
    with TestClient(create_app(settings)) as client:
        search_response = client.get("/v1/search", params={"q": "price"})
        call_response = client.get("/v1/calls/x")
        ready_response = client.get("/readyz")

    assert search_response.status_code == 503
    assert "unreachable" in search_response.json()["detail"]
    assert "Traceback" not in search_response.text
    assert call_response.status_code == 503
    assert ready_response.status_code == 503


def test_openapi_documents_search_with_examples(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    search_op = spec["paths"]["/v1/search"]["get"]
    q = next(p for p in search_op["parameters"] if p["name"] == "q")

    assert "exact phrases" in q["description"]
    assert q["examples"]
    assert {"200", "400", "503"} <= set(search_op["responses"])
    assert "/v1/calls/{call_id}" in spec["paths"]
