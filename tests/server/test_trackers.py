"""Trackers through the real API on the real Elasticsearch: statistics equal a brute-force
count over the sample calls, and the calls' ``trackers`` tags equal a brute-force computation
after every kind of change."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from builders import make_call, tracker_write
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from indexer.search.layout import term_layout
from indexer.search.matching import occurrences, role_allows
from indexer.search.query import Match, Mode, Pattern, RoleFilter
from indexer.search.text import terms_of_text
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.storage import trackers_index
from indexer.transcript import Call, read_call_file

Load = Callable[..., None]
SAMPLES = PROJECT_ROOT / "samples" / "calls"

COMPETITORS = {
    "id": "competitors",
    "name": "Competitors",
    "phrases": ["amoCRM", "Битрикс", "Bitrix", "Salesforce", "HubSpot"],
}
PRICING = {
    "id": "pricing",
    "name": "Pricing objections",
    "phrases": ["цена", "дорого", "скидка", "price", "expensive", "discount"],
    "role": "client",
    "mode": "forms",
}
CONTRACT = {
    "id": "contract",
    "name": "Contract",
    "phrases": ["договор", "send me the contract", "contract"],
    "role": "manager",
}


# --- Brute force: every utterance of every call, in plain Python ------------------------------


def mentions(tracker: dict[str, Any], call: Call) -> int:
    """Utterances of the tracker's role that say at least one of its phrases."""
    role = RoleFilter(tracker.get("role", "any"))
    mode = Mode(tracker.get("mode", "exact"))
    phrases = [
        Match(Pattern(tuple(terms_of_text(phrase))), role=role, mode=mode)
        for phrase in tracker["phrases"]
    ]
    count = 0
    for utterance in call.utterances:
        layout = term_layout(utterance.words, call.duration_s)
        if any(
            role_allows(match, utterance.role.value) and occurrences(match, layout)
            for match in phrases
        ):
            count += 1
    return count


def week_of(call: Call) -> str:
    """The Monday (UTC) of the ISO week the call started in."""
    day = call.started_at.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def expected_groups(
    tracker: dict[str, Any], calls: list[Call], key: Callable[[Call], str | None]
) -> dict[str | None, tuple[int, int, int]]:
    groups: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    for call in calls:
        found = mentions(tracker, call)
        group = groups[key(call)]
        group[0] += 1
        group[1] += found > 0
        group[2] += found
    return {name: (a, b, c) for name, (a, b, c) in groups.items()}


def expected_tags(trackers: list[dict[str, Any]], calls: list[Call]) -> dict[str, list[str]]:
    return {
        call.call_id: sorted(t["id"] for t in trackers if mentions(t, call) > 0) for call in calls
    }


# --- Helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_calls() -> list[Call]:
    return [read_call_file(path) for path in sorted(SAMPLES.glob("*.json"))]


def create(api: TestClient, tracker: dict[str, Any]) -> dict[str, Any]:
    """Create a tracker and wait for its job; the tracker as stored."""
    body: dict[str, Any] = tracker_write(api, "POST", "/v1/trackers", tracker)["tracker"]
    return body


def stats(api: TestClient, tracker_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/trackers/{tracker_id}/stats", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def as_table(body: dict[str, Any]) -> dict[str | None, tuple[int, int, int]]:
    return {
        group["key"]: (group["calls"], group["calls_mentioning"], group["mentions"])
        for group in body["groups"]
    }


def stored_tags(es: Elasticsearch, settings: Settings) -> dict[str, list[str]]:
    es.indices.refresh(index=settings.calls_alias)
    found = es.search(
        index=settings.calls_alias, size=1000, source_includes=["trackers"], sort=["call_id"]
    )
    return {hit["_id"]: hit["_source"]["trackers"] for hit in found["hits"]["hits"]}


def all_tracker_specs(api: TestClient) -> list[dict[str, Any]]:
    return list(api.get("/v1/trackers").json()["trackers"])


# --- Statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize("tracker", [COMPETITORS, PRICING, CONTRACT], ids=lambda t: t["id"])
def test_stats_per_manager_and_per_week_equal_brute_force_over_the_samples(
    api: TestClient, index_calls: Load, sample_calls: list[Call], tracker: dict[str, Any]
) -> None:
    index_calls(*sample_calls)
    create(api, tracker)

    per_manager = stats(api, tracker["id"], group_by="manager")
    per_week = stats(api, tracker["id"], group_by="week")

    by_manager = expected_groups(tracker, sample_calls, lambda call: call.manager.id)
    by_week = expected_groups(tracker, sample_calls, week_of)
    assert as_table(per_manager) == by_manager
    assert as_table(per_week) == by_week
    # The test must be able to fail: the tracker is mentioned, but not everywhere.
    assert sum(m for _, _, m in by_manager.values()) > 0
    assert any(mentioning < calls for calls, mentioning, _ in by_manager.values())
    names = {call.manager.id: call.manager.name for call in sample_calls}
    assert {g["key"]: g["label"] for g in per_manager["groups"]} == names
    everything = expected_groups(tracker, sample_calls, lambda call: None)[None]
    total = per_manager["total"]
    assert (total["calls"], total["calls_mentioning"], total["mentions"]) == everything
    assert total["rate"] == pytest.approx(everything[1] / everything[0])
    weeks = [week for week in by_week if week is not None]
    assert len(weeks) == len(by_week), "every call falls in a week"
    assert [g["key"] for g in per_week["groups"]] == sorted(weeks)


def test_stats_per_team_day_and_month_in_a_time_zone_with_a_date_range(
    api: TestClient, index_calls: Load, sample_calls: list[Call]
) -> None:
    index_calls(*sample_calls)
    create(api, COMPETITORS)
    zone = ZoneInfo("America/Los_Angeles")
    first, last = date(2025, 2, 1), date(2026, 3, 31)

    def in_range(call: Call) -> bool:
        return first <= call.started_at.astimezone(zone).date() <= last

    chosen = [call for call in sample_calls if in_range(call)]
    assert 0 < len(chosen) < len(sample_calls)
    common = {"tz": "America/Los_Angeles", "date_from": str(first), "date_to": str(last)}

    per_team = stats(api, "competitors", group_by="team", **common)
    per_day = stats(api, "competitors", group_by="day", **common)
    per_month = stats(api, "competitors", group_by="month", **common)

    assert as_table(per_team) == expected_groups(COMPETITORS, chosen, lambda c: c.manager.team)
    assert as_table(per_day) == expected_groups(
        COMPETITORS, chosen, lambda c: c.started_at.astimezone(zone).date().isoformat()
    )
    assert as_table(per_month) == expected_groups(
        COMPETITORS,
        chosen,
        lambda c: c.started_at.astimezone(zone).date().replace(day=1).isoformat(),
    )
    assert per_team["total"]["calls"] == len(chosen)


def test_week_buckets_follow_the_time_zone(api: TestClient, index_calls: Load) -> None:
    # Sunday 23:30 UTC is already Monday in Moscow: another ISO week.
    late_sunday = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    index_calls(make_call("late", [("client", "price")], started_at=late_sunday))
    create(api, {"id": "price", "name": "Price", "phrases": ["price"]})

    assert as_table(stats(api, "price", group_by="week")) == {"2026-03-02": (1, 1, 1)}
    moscow = stats(api, "price", group_by="week", tz="Europe/Moscow")
    assert as_table(moscow) == {"2026-03-09": (1, 1, 1)}


def test_a_mention_is_an_utterance_not_an_occurrence(api: TestClient, index_calls: Load) -> None:
    index_calls(
        make_call(
            "repeats",
            [
                ("client", "price price price and a discount"),  # one mention
                ("manager", "the price is fine"),  # wrong role
                ("client", "what price"),  # a second mention
            ],
        ),
        make_call("silent", [("client", "hello")]),
    )
    create(api, {"id": "p", "name": "P", "phrases": ["price", "discount"], "role": "client"})

    body = stats(api, "p", group_by="manager")

    assert as_table(body) == {"m-1": (2, 1, 2)}
    assert body["groups"][0]["rate"] == 0.5


def test_a_tracker_created_after_loading_counts_old_calls_at_once(
    api: TestClient,
    es: Elasticsearch,
    settings: Settings,
    index_calls: Load,
    sample_calls: list[Call],
) -> None:
    index_calls(*sample_calls)
    assert not es.indices.exists(index=trackers_index(settings.calls_alias))

    create(api, PRICING)
    body = stats(api, "pricing", group_by="manager")

    assert as_table(body) == expected_groups(PRICING, sample_calls, lambda c: c.manager.id)
    assert body["total"]["mentions"] > 0
    # The tags were set on the old calls too, and the calls are still searchable by phrase
    # (a partial update would have dropped the search fields kept out of _source).
    assert stored_tags(es, settings) == expected_tags([PRICING], sample_calls)
    tagged = [c for c, tags in stored_tags(es, settings).items() if tags]
    for call in sample_calls:
        if call.call_id in tagged:
            first_words = " ".join(w.text for w in call.utterances[0].words[:2])
            hits = api.get("/v1/search", params={"q": f'"{first_words}"', "size": 100}).json()
            assert call.call_id in {c["call_id"] for c in hits["calls"]}, first_words


# --- Tags -----------------------------------------------------------------------------------


def test_tags_stay_equal_to_brute_force_through_every_change(
    api: TestClient,
    es: Elasticsearch,
    settings: Settings,
    index_calls: Load,
    sample_calls: list[Call],
) -> None:
    old, new = sample_calls[:12], sample_calls[12:]
    index_calls(*old)

    create(api, COMPETITORS)
    create(api, CONTRACT)
    assert stored_tags(es, settings) == expected_tags([COMPETITORS, CONTRACT], old)

    # Loading: the loader tags new calls by the stored trackers.
    index_calls(*new)
    assert stored_tags(es, settings) == expected_tags([COMPETITORS, CONTRACT], sample_calls)

    # Changing phrases and role: tags move both ways.
    changed = {**COMPETITORS, "phrases": ["HubSpot", "amoCRM"], "role": "client"}
    del changed["id"]
    tracker_write(api, "PUT", "/v1/trackers/competitors", changed)
    now = [{**changed, "id": "competitors"}, CONTRACT]
    assert stored_tags(es, settings) == expected_tags(now, sample_calls)
    assert stored_tags(es, settings) != expected_tags([COMPETITORS, CONTRACT], sample_calls)

    # Deleting: the tag leaves every call.
    tracker_write(api, "DELETE", "/v1/trackers/contract")
    assert stored_tags(es, settings) == expected_tags([now[0]], sample_calls)
    assert [t["id"] for t in all_tracker_specs(api)] == ["competitors"]


def test_tags_are_filterable_in_elasticsearch_for_kibana(
    api: TestClient,
    es: Elasticsearch,
    settings: Settings,
    index_calls: Load,
    sample_calls: list[Call],
) -> None:
    index_calls(*sample_calls)
    create(api, COMPETITORS)

    counted = es.count(index=settings.calls_alias, query={"term": {"trackers": "competitors"}})

    mentioning = sum(1 for call in sample_calls if mentions(COMPETITORS, call) > 0)
    assert counted["count"] == mentioning > 0
    listed = api.get("/v1/search", params={"manager_id": "m-ivanova"}).json()["calls"]
    assert {c["call_id"]: c["trackers"] for c in listed} == {
        c.call_id: expected_tags([COMPETITORS], [c])[c.call_id]
        for c in sample_calls
        if c.manager.id == "m-ivanova"
    }


# --- The API ----------------------------------------------------------------------------------


def test_crud(api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("x", [("client", "It is too expensive")]))

    made = create(api, {"name": "Too Expensive!", "phrases": [" too   expensive ", "дорого"]})
    assert made["id"] == "too-expensive"  # made from the name
    assert made["phrases"] == ["too expensive", "дорого"]
    assert (made["role"], made["mode"]) == ("any", "exact")
    assert api.get("/v1/trackers/too-expensive").json() == made

    cyrillic = create(api, {"name": "Цены", "phrases": ["цена"]})
    assert cyrillic["id"].startswith("tracker-")

    changed = tracker_write(
        api, "PUT", "/v1/trackers/too-expensive", {"name": "Expensive", "phrases": ["expensive"]}
    )["tracker"]
    assert changed["created_at"] == made["created_at"]
    assert changed["name"] == "Expensive"
    assert [t["id"] for t in all_tracker_specs(api)] == sorted(["too-expensive", cyrillic["id"]])

    assert tracker_write(api, "DELETE", "/v1/trackers/too-expensive")["tracker"] is None
    assert api.get("/v1/trackers/too-expensive").status_code == 404
    assert api.delete("/v1/trackers/too-expensive").status_code == 404


def test_trackers_before_any_call_is_loaded(
    api: TestClient, es: Elasticsearch, settings: Settings
) -> None:
    assert api.get("/v1/trackers").json() == {"trackers": []}
    create(api, COMPETITORS)

    assert api.get("/v1/trackers").json()["trackers"][0]["id"] == "competitors"
    assert api.get("/v1/trackers/competitors/stats").status_code == 503


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "phrases": ["?!"]}, "no searchable words"),
        ({"name": "x", "phrases": ["ok", "  "]}, "phrase 2"),
        ({"name": "x", "phrases": []}, "phrases"),
        ({"name": " ", "phrases": ["a"]}, "name"),
        ({"phrases": ["a"]}, "name"),
        ({"name": "x", "phrases": ["a"], "role": "boss"}, "role"),
        ({"name": "x", "phrases": ["a"], "mode": "fuzzy"}, "mode"),
        ({"name": "x", "phrases": ["a"], "id": "Bad Id"}, "id"),
        ({"name": "x", "phrases": ["a"], "colour": "red"}, "colour"),
        ({"name": "x", "phrases": ["a" * 201]}, "longer than"),
    ],
)
def test_bad_trackers_get_400(api: TestClient, body: dict[str, Any], message: str) -> None:
    response = api.post("/v1/trackers", json=body)

    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_an_id_is_taken_once(api: TestClient) -> None:
    create(api, COMPETITORS)

    response = api.post("/v1/trackers", json=COMPETITORS)

    assert response.status_code == 409
    assert "competitors" in response.json()["detail"]


def test_tracker_count_is_capped(es: Elasticsearch, settings: Settings) -> None:
    capped = settings.model_copy(update={"max_trackers": 2})
    with TestClient(create_app(capped)) as client:
        for number in range(2):
            create(client, {"id": f"t{number}", "name": "t", "phrases": ["a"]})
        response = client.post("/v1/trackers", json={"id": "t9", "name": "t", "phrases": ["a"]})

    assert response.status_code == 409
    assert "EARSHOT_MAX_TRACKERS" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"group_by": "client"}, 400, "group_by"),
        ({"tz": "Mars/Olympus"}, 400, "time zone"),
        ({"tz": "localtime"}, 400, "time zone"),
        ({"tz": "../../etc/passwd"}, 400, "time zone"),
        ({"date_from": "soon"}, 400, "date_from"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, 400, "after date_to"),
        ({"groupby": "week"}, 400, "unknown query parameter"),
    ],
)
def test_bad_stats_parameters(
    api: TestClient, index_calls: Load, params: dict[str, str], status: int, message: str
) -> None:
    index_calls(make_call("x", [("client", "price")]))
    create(api, {"id": "p", "name": "p", "phrases": ["price"]})

    response = api.get("/v1/trackers/p/stats", params=params)

    assert response.status_code == status
    assert message in response.json()["detail"]


def test_unknown_tracker_stats_is_404(api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("x", [("client", "price")]))

    response = api.get("/v1/trackers/nope/stats")

    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_each_alias_has_its_own_trackers(
    api: TestClient, es: Elasticsearch, settings: Settings
) -> None:
    create(api, COMPETITORS)
    other = settings.model_copy(update={"calls_alias": f"{settings.calls_alias}-other"})
    try:
        with TestClient(create_app(other)) as client:
            assert client.get("/v1/trackers").json() == {"trackers": []}
    finally:
        es.options(ignore_status=404).indices.delete(index=trackers_index(other.calls_alias))
    assert es.indices.exists(index=trackers_index(settings.calls_alias))


@pytest.fixture
def keyed_api(settings: Settings) -> Iterator[TestClient]:
    keyed = settings.model_copy(
        update={
            "api_keys_read": [SecretStr("r" * 32)],
            "api_keys_admin": [SecretStr("a" * 32)],
        }
    )
    with TestClient(create_app(keyed)) as client:
        yield client


def test_writes_need_the_admin_key(keyed_api: TestClient) -> None:
    read, admin = {"X-API-Key": "r" * 32}, {"X-API-Key": "a" * 32}
    tracker = {"id": "p", "name": "p", "phrases": ["price"]}

    assert keyed_api.post("/v1/trackers", json=tracker).status_code == 401
    assert keyed_api.post("/v1/trackers", json=tracker, headers=read).status_code == 403
    tracker_write(keyed_api, "POST", "/v1/trackers", tracker, headers=admin)
    assert keyed_api.get("/v1/trackers/p", headers=read).status_code == 200
    assert (
        keyed_api.put("/v1/trackers/p", json=tracker | {"id": None}, headers=read).status_code
        == 403
    )
    assert keyed_api.delete("/v1/trackers/p", headers=read).status_code == 403
    tracker_write(keyed_api, "DELETE", "/v1/trackers/p", headers=admin)


def test_sync_repairs_tags(
    api: TestClient,
    es: Elasticsearch,
    settings: Settings,
    index_calls: Load,
    sample_calls: list[Call],
) -> None:
    index_calls(*sample_calls)
    create(api, COMPETITORS)
    # A call whose tags went stale (e.g. loaded with a tagger that raced a tracker change).
    stale = next(c for c in sample_calls if mentions(COMPETITORS, c) > 0)
    index_calls_untagged(es, settings, stale, ["ghost"])

    # What an engineer runs after a crash in the middle of a tracker change.
    done = subprocess.run(
        [sys.executable, "-m", "indexer", "sync-tags"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "ES_URL": settings.es_url,
            "EARSHOT_CALLS_ALIAS": settings.calls_alias,
            "EARSHOT_STORE_DIR": str(settings.store_dir),
        },
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    # Two writes to the stale call: "competitors" added, "ghost" removed.
    assert "2 calls changed" in done.stderr
    assert stored_tags(es, settings) == expected_tags([COMPETITORS], sample_calls)


def index_calls_untagged(
    es: Elasticsearch, settings: Settings, call: Call, tags: list[str]
) -> None:
    from indexer.index.loader import load_calls
    from indexer.transcript import SourcedCall

    summary = load_calls(es, settings, [SourcedCall("test", call)], tag=lambda _: tags)
    assert summary.loaded == 1


def test_counts_are_exact_for_many_groups(api: TestClient, index_calls: Load) -> None:
    """More groups than one composite page holds: every group comes back."""
    from indexer.trackers import stats as trackers

    managers = trackers.STATS_PAGE_SIZE + 3
    calls = [
        make_call(f"c{n}", [("client", "price" if n % 2 else "hello")], manager_id=f"m{n:04d}")
        for n in range(managers)
    ]
    index_calls(*calls)
    create(api, {"id": "p", "name": "p", "phrases": ["price"]})

    body = stats(api, "p", group_by="manager")

    assert len(body["groups"]) == managers
    assert Counter(g["calls_mentioning"] for g in body["groups"]) == Counter(
        n % 2 for n in range(managers)
    )
    assert body["total"] == {
        "calls": managers,
        "calls_mentioning": managers // 2,
        "mentions": managers // 2,
        "rate": (managers // 2) / managers,
    }
