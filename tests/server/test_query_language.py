"""Every operator of the query language through the real API on the real Elasticsearch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from builders import make_call, search, word_times
from fastapi.testclient import TestClient

Load = Callable[..., None]


def ids(api: TestClient, q: str, **params: Any) -> set[str]:
    return {call["call_id"] for call in search(api, q, **params)["calls"]}


def test_and_or_not_combine_over_the_whole_call(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call("price-and-discount", [("client", "what is the price"), ("manager", "discount")]),
        make_call("price-only", [("client", "the price please")]),
        make_call("discount-only", [("manager", "a discount today")]),
        make_call("neither", [("client", "hello")]),
    )

    assert ids(api, "price AND discount") == {"price-and-discount"}
    assert ids(api, "price discount") == {"price-and-discount"}
    assert ids(api, "price OR discount") == {"price-and-discount", "price-only", "discount-only"}
    assert ids(api, "price AND NOT discount") == {"price-only"}
    assert ids(api, "NOT price") == {"discount-only", "neither"}
    assert ids(api, "(price OR discount) AND NOT (price AND discount)") == {
        "price-only",
        "discount-only",
    }


def test_role_negative_holds_for_the_whole_call(api: TestClient, index_calls: Load) -> None:
    """A naive per-utterance query ("an utterance where the client says дорого and the manager
    does not say скидка") would return every one of these calls: each has a client utterance
    with дорого that holds no manager скидка. Only the calls where the manager never says
    скидка anywhere may come back."""
    index_calls(
        make_call(
            "manager-offered",
            [("client", "Это дорого."), ("manager", "Дадим скидку, скидка десять процентов.")],
            language="ru",
        ),
        make_call(
            "manager-offered-first",
            [("manager", "Есть скидка."), ("client", "Всё равно дорого.")],
            language="ru",
        ),
        make_call(
            "client-asked-for-it",
            [("client", "Дорого. Нужна скидка."), ("manager", "Посмотрим.")],
            language="ru",
        ),
        make_call("no-offer", [("client", "Дорого!"), ("manager", "Понимаю.")], language="ru"),
    )

    found = ids(api, 'client:"дорого" AND NOT manager:"скидка"')

    assert found == {"client-asked-for-it", "no-offer"}


def test_role_scope_over_a_group(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call("manager-promo", [("manager", "у нас акция"), ("client", "скидка?")]),
        make_call("client-promo", [("client", "а акция есть?"), ("manager", "нет")]),
        make_call("manager-discount", [("manager", "скидка будет")]),
    )

    assert ids(api, "manager:(скидка OR акция)") == {"manager-promo", "manager-discount"}
    assert ids(api, "client:(скидка OR акция)") == {"manager-promo", "client-promo"}


def test_near_counts_words_between_in_either_order_inside_one_utterance(
    api: TestClient, index_calls: Load
) -> None:
    index_calls(
        make_call("close", [("client", "цена для нас это очень дорого")]),  # 4 words between
        make_call("reversed", [("client", "дорого выходит цена")]),  # 1 between, other order
        make_call("far", [("client", "цена раз два три четыре пять шесть дорого")]),  # 6 between
        make_call("split", [("client", "цена"), ("client", "дорого")]),
    )

    assert ids(api, "цена NEAR/5 дорого") == {"close", "reversed"}
    assert ids(api, "цена NEAR/4 дорого") == {"close", "reversed"}
    assert ids(api, "цена NEAR/3 дорого") == {"reversed"}
    assert ids(api, "цена NEAR/6 дорого") == {"close", "reversed", "far"}


def test_near_hit_covers_both_sides_with_their_seconds(api: TestClient, index_calls: Load) -> None:
    call = make_call("c", [("client", "ну цена для нас дорого вот")])
    index_calls(call)

    (hit,) = search(api, "дорого NEAR/3 цена")["calls"][0]["hits"]

    assert (hit["start"], hit["end"]) == word_times(call, 0, 1, 4)
    assert [hit["text"][a:b] for a, b in hit["spans"]] == ["цена", "дорого"]
    assert hit["matched"] == "дорого NEAR/3 цена"


def test_same_word_near_itself_means_said_twice(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call("twice", [("client", "нет, нет и ещё раз нет")]),
        make_call("once", [("client", "нет")]),
    )

    assert ids(api, "нет NEAR/1 нет") == {"twice"}


def test_prefix_matches_word_starts(api: TestClient, index_calls: Load) -> None:
    call = make_call("delivery", [("manager", "Доставка бесплатная, доставим завтра.")])
    index_calls(call, make_call("other", [("manager", "Самовывоз со склада.")]))

    body = search(api, "достав*")

    assert {c["call_id"] for c in body["calls"]} == {"delivery"}
    starts = [hit["start"] for hit in body["calls"][0]["hits"]]
    assert starts == [call.utterances[0].words[0].start, call.utterances[0].words[2].start]
    assert ids(api, '"доставка бесп*"') == set()  # inside quotes * is not an operator
    assert ids(api, "доставка бесп*") == {"delivery"}


def test_time_windows_use_the_matched_words_seconds(api: TestClient, index_calls: Load) -> None:
    # make_call: word i of the call starts at 0.5 * i s (turn gaps add 0.7 s).
    greeting = make_call("greeting", [("manager", "добрый день компания ромашка")])  # 0.0 s
    late = make_call(
        "late-greeting",
        [("manager", " ".join(["слово"] * 60)), ("manager", "добрый день")],  # at 30.7 s
    )
    index_calls(greeting, late)

    assert ids(api, 'manager:"добрый день" WITHIN first 30s') == {"greeting"}
    assert ids(api, 'manager:"добрый день" WITHIN first 31s') == {"greeting", "late-greeting"}
    assert ids(api, '"добрый день" WITHIN last 2s') == {"greeting", "late-greeting"}
    assert ids(api, '"компания ромашка" WITHIN last 1s') == {"greeting"}
    assert ids(api, '"добрый день" WITHIN last 1s') == {"late-greeting"}
    assert ids(api, "NOT (слово WITHIN first 10s)") == {"greeting"}


def test_window_boundary_is_the_first_words_start(api: TestClient, index_calls: Load) -> None:
    # "цена" at word 59: starts at 29.5 s, ends at 29.9 s; "дорого" at word 60 starts at 30.0 s.
    index_calls(make_call("edge", [("client", " ".join(["а"] * 59 + ["цена", "дорого"]))]))

    assert ids(api, '"цена дорого" WITHIN first 30s') == {"edge"}
    assert ids(api, "дорого WITHIN first 30s") == set()
    assert ids(api, "дорого WITHIN first 31s") == {"edge"}


def test_windows_on_and_off_ten_second_marks(api: TestClient, index_calls: Load) -> None:
    # A window is ten-second tokens for its whole tens and second tokens for the rest
    # (indexer.search.layout.window_ranges): each edge case below falls on one side of a ten.
    # "цена" at word 79: starts at 39.5 s; "дорого" at word 80 starts at 40.0 s.
    index_calls(
        make_call("forty", [("client", " ".join(["а"] * 79 + ["цена", "дорого"]))]),
        # "нет" ends at 0.4 s, 21.5 s before the end of the call (21.9 s).
        make_call("tail", [("client", "нет"), ("manager", " ".join(["б"] * 40))]),
    )

    assert ids(api, "цена WITHIN first 40s") == {"forty"}
    assert ids(api, "цена WITHIN first 39s") == set()
    assert ids(api, "цена WITHIN first 30s") == set()
    assert ids(api, "дорого WITHIN first 40s") == set()
    assert ids(api, "дорого WITHIN first 41s") == {"forty"}
    assert ids(api, "нет WITHIN last 20s") == set()
    assert ids(api, "нет WITHIN last 21s") == set()
    assert ids(api, "нет WITHIN last 22s") == {"tail"}
    assert ids(api, "нет WITHIN last 30s") == {"tail"}


def test_forms_mode_finds_other_word_forms(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call("prices-ru", [("client", "Цены у вас высокие, ценой не устраивает.")]),
        make_call("prices-en", [("client", "Your prices went up.")]),
        make_call("contract", [("client", "Пришлите договора.")]),
    )

    assert ids(api, "цена") == set()
    assert ids(api, "цена", mode="forms") == {"prices-ru"}
    assert ids(api, "price", mode="forms") == {"prices-en"}
    assert ids(api, '"прислать договор"', mode="forms") == {"contract"}
    hits = search(api, "цена", mode="forms")["calls"][0]["hits"]
    assert [hit["text"][slice(*hit["spans"][0])] for hit in hits] == ["Цены", "ценой"]


@pytest.mark.parametrize(
    ("query", "position"),
    [("цена AND", 8), ("(цена", 5), ("цена NEAR/x дорого", 5), ("цена WITHIN first", 17)],
)
def test_syntax_error_is_400_with_position(
    api: TestClient, index_calls: Load, query: str, position: int
) -> None:
    index_calls(make_call("x", [("client", "цена")]))

    response = api.get("/v1/search", params={"q": query})

    assert response.status_code == 400
    assert response.json()["position"] == position
    assert "expected" in response.json()["detail"]


def test_too_broad_prefix_is_a_clear_400(api: TestClient, index_calls: Load) -> None:
    words = " ".join(f"ab{n:05d}" for n in range(16_500))  # more words than Lucene expands
    index_calls(make_call("many", [("client", words)]))

    response = api.get("/v1/search", params={"q": "ab*"})

    assert response.status_code == 400
    assert "more letters" in response.json()["detail"]
    assert ids(api, "ab00001*") == {"many"}
