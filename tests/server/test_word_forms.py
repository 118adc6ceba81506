"""``mode=forms`` on a fixed list of Russian and English words, on the real Elasticsearch.

Each entry is a query word and the forms said in calls, each marked with what forms mode does
with it: ``FOUND`` (an inflection it finds), ``MISSED`` (an inflection it does not find: a known
gap of the dictionaries, listed in docs/query-language.md), ``OTHER`` (a different word built on
the same root, which it rightly does not find). The test fails when any of them changes, so the
documented figures stay true.
"""

from __future__ import annotations

from collections.abc import Callable

from builders import make_call
from fastapi.testclient import TestClient

from indexer.settings import PROJECT_ROOT

FOUND, MISSED, OTHER = "found", "missed", "other word"

WORD_FORMS: dict[str, dict[str, str]] = {
    "цена": {
        "цены": FOUND, "цену": FOUND, "ценой": FOUND, "ценами": FOUND, "ценах": FOUND,
        "цене": FOUND, "цен": FOUND, "ценовой": OTHER, "ценник": OTHER,
    },
    "договор": {
        "договора": FOUND, "договору": FOUND, "договором": FOUND, "договоры": FOUND,
        "договоров": FOUND, "договорились": OTHER,
    },
    "скидка": {
        "скидки": FOUND, "скидку": FOUND, "скидкой": FOUND, "скидок": FOUND, "скидками": FOUND,
        "скидочка": OTHER,
    },
    "доставка": {"доставки": FOUND, "доставку": FOUND, "доставкой": FOUND, "доставить": OTHER},
    "прислать": {
        "пришлите": FOUND, "пришлю": FOUND, "прислал": FOUND, "прислали": FOUND,
        "присылайте": MISSED,  # the imperfective verb is a lemma of its own in OpenCorpora
    },
    "дорого": {"дорогой": FOUND, "дорогая": FOUND, "дорогие": FOUND, "дороже": FOUND},
    "подумать": {"подумаем": FOUND, "подумаю": FOUND, "подумал": FOUND, "подумайте": FOUND},
    "price": {"prices": FOUND, "priced": FOUND, "pricing": MISSED, "pricey": OTHER},
    "contract": {"contracts": FOUND, "contracted": FOUND, "contracting": FOUND},
    "send": {"sends": FOUND, "sent": FOUND, "sending": FOUND},
    "discount": {"discounts": FOUND, "discounted": FOUND, "discounting": FOUND},
    "company": {"companies": FOUND, "company's": FOUND},
    "buy": {"buys": FOUND, "bought": FOUND, "buying": MISSED, "buyer": OTHER},
    "call": {"calls": FOUND, "called": FOUND, "calling": FOUND, "callback": OTHER},
}  # fmt: skip


def test_forms_mode_on_the_fixed_word_list(
    api: TestClient, index_calls: Callable[..., None]
) -> None:
    calls = [
        make_call(f"{n}-{i}", [("client", f"ну {form} вот")], manager_id=f"m-{n}")
        for n, forms in enumerate(WORD_FORMS.values())
        for i, form in enumerate(forms)
    ]
    index_calls(*calls)

    found_forms = 0
    for n, (query, forms) in enumerate(WORD_FORMS.items()):
        body = api.get(
            "/v1/search",
            params={"q": query, "mode": "forms", "manager_id": f"m-{n}", "size": 50},
        ).json()
        said = {f"{n}-{i}": form for i, form in enumerate(forms)}
        found = {said[call["call_id"]] for call in body["calls"]}
        assert found == {form for form, kind in forms.items() if kind == FOUND}, query
        found_forms += len(found)
        exact = api.get("/v1/search", params={"q": query, "manager_id": f"m-{n}"}).json()
        assert exact["total"] == 0, f"exact mode must not find other forms of {query}"

    inflections = sum(kind != OTHER for forms in WORD_FORMS.values() for kind in forms.values())
    derived = sum(kind == OTHER for forms in WORD_FORMS.values() for kind in forms.values())
    # The figures the docs print are these: a change to the list or to the lemmatiser must
    # update them, never leave them behind.
    doc = " ".join(
        (PROJECT_ROOT / "docs" / "query-language.md").read_text(encoding="utf-8").split()
    )
    # Whitespace collapsed: the docs wrap their lines anywhere.
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (
        f"finds **{found_forms} of {inflections} inflected forms**, and rightly none of the "
        f"{derived} derived words"
    ) in doc
    assert f"{found_forms} of {inflections} inflections on a fixed list" in readme
