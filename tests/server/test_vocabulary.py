"""The company vocabulary on the real Elasticsearch: stored and edited through the API and the
CLI, a term matches each of its spellings and no other word, trackers and their statistics use
it, and a change re-tags past calls by a job (answered 202 at once; however vocabulary and
tracker writes interleave, the tags end as the final trackers and vocabulary dictate; a job cut
off by an API shutdown resumes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from builders import make_call, tracker_write, wait_for_job
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient
from retagging import (
    WORDS,
    all_jobs_finished,
    corpus,
    expected_tags,
    small_batches,
    stored_tags,
    wait_for_all,
    write_then_stop_mid_job,
)

from api.main import create_app
from api.routes.search import search_request
from indexer.search import Mode, RoleFilter
from indexer.search.runner import Deadline, PagePlan, StaleVocabulary, page_part, searched
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.changes import create_tracker
from indexer.trackers.jobs import enqueue_vocabulary_change, run_job
from indexer.trackers.model import TrackerCreate
from indexer.vocabulary import (
    TermCreate,
    TermSpec,
    create_term,
    delete_term,
    replace_term,
    vocabulary_index,
)

BITRIX = {
    "canonical": "Битрикс24",
    "spellings": ["Bitrix24", "битрикс 24", "Bitrix 24"],
    "language": "ru",
}
CALLS = [
    make_call("c-canonical", [("client", "у нас Битрикс24 стоит")], language="ru"),
    make_call("c-latin", [("client", "we use Bitrix24 today")]),
    make_call("c-two-words", [("client", "сейчас битрикс 24 облачный")], language="ru"),
    make_call("c-latin-two", [("manager", "the Bitrix 24 cloud")]),
    # Not spellings of the term: a shorter word, another number, another brand.
    make_call("c-other", [("client", "у нас битрикс и amoCRM, 24 менеджера")], language="ru"),
    make_call("c-unrelated", [("client", "цена вопроса 24 тысячи")], language="ru"),
]
SPELLED = {"c-canonical", "c-latin", "c-two-words", "c-latin-two"}


def _ids(api: TestClient, q: str, **params: Any) -> set[str]:
    response = api.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return {call["call_id"] for call in response.json()["calls"]}


def _tags(es: Elasticsearch, settings: Settings) -> dict[str, list[str]]:
    es.indices.refresh(index=settings.calls_alias)
    found = es.search(index=settings.calls_alias, size=100, source_includes=["call_id", "trackers"])
    return {hit["_source"]["call_id"]: hit["_source"]["trackers"] for hit in found["hits"]["hits"]}


def test_terms_are_stored_versioned_and_edited(api: TestClient) -> None:
    empty = api.get("/v1/vocabulary").json()
    assert empty["terms"] == []
    created = tracker_write(api, "POST", "/v1/vocabulary", BITRIX)
    term = created["term"]
    assert term["revision"] == 1
    assert term["id"] == "24"  # made from the Latin letters and digits of the canonical form
    assert (created["job"]["action"], created["job"]["tracker_id"]) == ("vocabulary", None)
    listed = api.get("/v1/vocabulary").json()
    assert [t["id"] for t in listed["terms"]] == [term["id"]]
    assert listed["version"] != empty["version"]
    assert api.post("/v1/vocabulary", json={**BITRIX, "id": term["id"]}).status_code == 409
    changed = tracker_write(
        api, "PUT", f"/v1/vocabulary/{term['id']}", {**BITRIX, "spellings": ["bitrix"]}
    )
    assert changed["term"]["revision"] == 2
    # Writes are numbered in the order they were stored.
    assert changed["job"]["version"] > created["job"]["version"]
    assert api.get("/v1/vocabulary").json()["version"] not in (listed["version"], empty["version"])
    bad = api.post("/v1/vocabulary", json={"canonical": "!!!", "spellings": []})
    assert bad.status_code == 422 or bad.status_code == 400
    deleted = tracker_write(api, "DELETE", f"/v1/vocabulary/{term['id']}")
    assert deleted["term"] is None
    assert deleted["job"]["version"] > changed["job"]["version"]
    assert api.get(f"/v1/vocabulary/{term['id']}").status_code == 404
    assert api.delete(f"/v1/vocabulary/{term['id']}").status_code == 404
    assert api.put(f"/v1/vocabulary/{term['id']}", json=BITRIX).status_code == 404


def test_a_term_matches_each_of_its_spellings_and_no_other_word(
    api: TestClient, index_calls: Callable[..., None]
) -> None:
    index_calls(*CALLS)
    # Without the vocabulary each spelling finds only itself.
    assert _ids(api, "Битрикс24") == {"c-canonical"}
    written = api.post("/v1/vocabulary", json=BITRIX)
    assert written.status_code == 202, written.text
    # A search expands with the term as soon as the write answers, before its job is done.
    for typed in ["Битрикс24", "bitrix24", '"битрикс 24"', '"Bitrix 24"']:
        assert _ids(api, typed) == SPELLED, typed
        assert _ids(api, typed, mode="forms") == SPELLED, typed
    # A phrase around a spelling, and a NEAR, expand too; the hit covers the words said.
    assert _ids(api, '"Битрикс24 стоит"') == {"c-canonical"}
    assert _ids(api, '"битрикс24 облачный"') == {"c-two-words"}
    assert _ids(api, "bitrix24 NEAR/1 cloud") == {"c-latin-two"}
    assert _ids(api, "NOT bitrix24") == {"c-other", "c-unrelated"}
    hits = api.get("/v1/search", params={"q": "bitrix24"}).json()["calls"]
    two_words = next(c for c in hits if c["call_id"] == "c-two-words")["hits"][0]
    # "битрикс" and "24" are words 1 and 2 (builders: 0.4 s words, 0.1 s apart).
    assert (two_words["start"], two_words["end"]) == (0.5, 1.4)
    # The words alone are not the term.
    assert _ids(api, "битрикс") == {"c-other", "c-two-words"}
    assert _ids(api, "24") == {"c-two-words", "c-latin-two", "c-other", "c-unrelated"}


def test_trackers_and_stats_use_the_vocabulary_and_follow_its_changes(
    api: TestClient, es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    index_calls(*CALLS)
    tracker = api.post("/v1/trackers", json={"name": "CRM", "phrases": ["Битрикс24"]})
    assert tracker.status_code == 202, tracker.text
    assert wait_for_job(api, tracker.headers["Location"])["state"] == "done"
    tracker_id = tracker.json()["tracker"]["id"]
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {"c-canonical"}

    term = tracker_write(api, "POST", "/v1/vocabulary", BITRIX)["term"]
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == SPELLED
    stats = api.get(f"/v1/trackers/{tracker_id}/stats", params={"group_by": "manager"}).json()
    assert stats["total"]["calls_mentioning"] == len(SPELLED)
    assert stats["total"]["mentions"] == len(SPELLED)

    # A call loaded later is tagged by the loader with the vocabulary in force.
    index_calls(make_call("c-late", [("client", "we moved to Bitrix 24")]))
    assert tracker_id in _tags(es, settings)["c-late"]

    narrowed = {**BITRIX, "spellings": ["Bitrix24"]}
    tracker_write(api, "PUT", f"/v1/vocabulary/{term['id']}", narrowed)
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {
        "c-canonical",
        "c-latin",
    }
    stats = api.get(f"/v1/trackers/{tracker_id}/stats", params={"group_by": "day"}).json()
    assert stats["total"]["calls_mentioning"] == 2
    tracker_write(api, "DELETE", f"/v1/vocabulary/{term['id']}")
    assert {c for c, tags in _tags(es, settings).items() if tracker_id in tags} == {"c-canonical"}


def test_a_search_follows_every_vocabulary_change_made_outside_the_api(
    api: TestClient, es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    """The API builds the vocabulary once and reuses it while the stored terms stay the same
    (``load_vocabulary``): every change stored by another client (here: written straight to
    Elasticsearch, as another API process or the CLI would) counts in the next search, even
    one that leaves the term's id, revision and number of terms as they were."""
    index_calls(*CALLS)
    term = TermCreate(id="crm", canonical="Битрикс24", spellings=["Bitrix24"], language="ru")
    create_term(es, settings, term)
    assert _ids(api, "Битрикс24") == {"c-canonical", "c-latin"}
    assert _ids(api, "Битрикс24") == {"c-canonical", "c-latin"}  # built once, then reused
    # The index deleted and made again: the new term has the old one's id, revision and
    # place in the index (its sequence number), other spellings.
    es.indices.delete(index=vocabulary_index(settings.calls_alias))
    create_term(es, settings, term.model_copy(update={"spellings": ["Bitrix 24"]}))
    assert _ids(api, "Битрикс24") == {"c-canonical", "c-latin-two"}
    replace_term(es, settings, "crm", TermSpec(canonical="Битрикс24", spellings=["битрикс 24"]))
    assert _ids(api, "Битрикс24") == {"c-canonical", "c-two-words"}
    delete_term(es, settings, "crm")
    assert _ids(api, "Битрикс24") == {"c-canonical"}


def _sent_pages(
    es: Elasticsearch, settings: Settings, q: str | None
) -> tuple[list[bool], set[str]]:
    """A page of ``q`` searched as the API searches it (``searched``): for each request sent,
    whether it read the stored terms with the page, and the calls found."""
    request = search_request(settings, q=q, role=RoleFilter.ANY, mode=Mode.EXACT)
    sent: list[bool] = []

    def build(answer: Any, meta: Any, plan: PagePlan) -> set[str] | StaleVocabulary:
        sent.append(plan.assumed_terms is not None)
        kind, part = page_part(answer, plan)
        assert kind != "refused", part
        if isinstance(part, StaleVocabulary):
            return part
        return {hit["_id"] for hit in part["hits"]["hits"]}

    found = searched(es, settings, request, Deadline(settings), build)
    return sent, found


def test_a_page_reads_the_terms_in_its_own_request_and_is_sent_again_only_after_a_change(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    """The stored terms are read in the page's own request (an ``_msearch``), not in one of
    their own: a page is one request while they stay as they were, and two when they changed
    since the vocabulary was last built (the second with the vocabulary of the terms just
    read), so a change made by any process counts in the very next search."""
    index_calls(*CALLS)
    # No terms stored, none built: the terms read with the page are those assumed.
    assert _sent_pages(es, settings, "Битрикс24") == ([True], {"c-canonical"})
    create_term(es, settings, TermCreate(id="crm", canonical="Битрикс24", spellings=["Bitrix24"]))
    assert _sent_pages(es, settings, "Битрикс24") == ([True, False], {"c-canonical", "c-latin"})
    assert _sent_pages(es, settings, "Битрикс24") == ([True], {"c-canonical", "c-latin"})
    replace_term(es, settings, "crm", TermSpec(canonical="Битрикс24", spellings=["Bitrix 24"]))
    assert _sent_pages(es, settings, "Битрикс24") == (
        [True, False],
        {"c-canonical", "c-latin-two"},
    )
    # A term no longer stored is no longer expanded, though the vocabulary built had it.
    delete_term(es, settings, "crm")
    assert _sent_pages(es, settings, "Битрикс24") == ([True, False], {"c-canonical"})
    # No query: nothing to expand, no terms read.
    sent, every_call = _sent_pages(es, settings, None)
    assert (sent, len(every_call)) == ([False], len(CALLS))


def test_a_missing_calls_index_is_named_with_the_vocabulary_read_and_without(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings)) as api:
        for params in ({"q": "price"}, {}):
            answer = api.get("/v1/search", params=params)
            assert answer.status_code == 503, (params, answer.text)
            assert "does not exist yet" in answer.json()["detail"], params


def _vocab_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m indexer vocab ARGS`` on this test's alias, as a process of its own."""
    env = {
        **os.environ,
        "ES_URL": settings.es_url,
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(settings.store_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "indexer", "vocab", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_adds_lists_and_deletes_terms(
    settings: Settings, api: TestClient, es: Elasticsearch, index_calls: Callable[..., None]
) -> None:
    index_calls(make_call("c-hub", [("client", "мы на хабспот")], language="ru"))
    tracker_write(api, "POST", "/v1/trackers", {"id": "crm", "name": "CRM", "phrases": ["HubSpot"]})
    assert _tags(es, settings)["c-hub"] == []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _vocab_cli(settings, *args)

    added = run("add", "HubSpot", "-s", "хабспот", "-s", "хаб спот", "--id", "hubspot")
    assert added.returncode == 0, added.stderr
    # The command answers once the tags follow (it runs the change's job itself). Its job is
    # queued claimed by the command, so the API's worker, running beside it, never runs it
    # too: the one call it changed is counted once.
    assert "tracker tags re-checked: 1 calls changed" in added.stderr, added.stderr
    assert _tags(es, settings)["c-hub"] == ["crm"]
    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["hubspot\tany\tHubSpot\tхабспот, хаб спот"]
    assert api.get("/v1/vocabulary/hubspot").json()["spellings"] == ["хабспот", "хаб спот"]
    assert run("add", "HubSpot", "--id", "hubspot").returncode == 1  # the id is taken
    assert run("add", "...").returncode == 1  # nothing searchable
    assert run("delete", "hubspot").returncode == 0
    assert _tags(es, settings)["c-hub"] == []
    missing = run("delete", "hubspot")
    assert missing.returncode == 1
    assert "no vocabulary term with id 'hubspot'" in missing.stderr


# --- The re-tagging job -----------------------------------------------------------------------

# With the term, a tracker for "deal" also tags calls that say "contract" (and one for
# "contract" those that say "deal"); with the next, "discount" instead.
DEAL_CONTRACT = {"id": "deal", "canonical": "deal", "spellings": ["contract"]}
DEAL_DISCOUNT = {"canonical": "deal", "spellings": ["discount"]}
TRACKERS = [
    {"id": "a", "name": "A", "phrases": ["deal"]},
    {"id": "b", "name": "B", "phrases": ["price", "hello"]},
]


def _group(*words: str) -> dict[str, set[str]]:
    """What each word of one vocabulary term stands for (brute force for ``expected_tags``)."""
    return {word: set(words) for word in words}


def test_a_write_answers_202_at_once_and_its_job_retags_every_call(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    calls = corpus(64)
    index_calls(*calls)
    with TestClient(create_app(settings)) as api:
        for tracker in TRACKERS:
            tracker_write(api, "POST", "/v1/trackers", tracker)
    before = stored_tags(es, settings)
    assert before == expected_tags(TRACKERS, calls)

    # An API without its worker (no lifespan ran): the write is answered without any
    # re-tagging done in the request; its job waits, queued.
    idle = TestClient(create_app(settings))
    answer = idle.post("/v1/vocabulary", json=DEAL_CONTRACT)
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/jobs/{answer.json()['job']['id']}"
    assert answer.json()["term"]["id"] == "deal"
    assert answer.json()["job"]["state"] == "queued"
    assert idle.get(answer.headers["location"]).json()["state"] == "queued"
    assert stored_tags(es, settings) == before
    # Searches follow the term at once.
    assert idle.get("/v1/search", params={"q": "deal"}).json()["total"] == 48

    with TestClient(create_app(small_batches(settings))) as api:
        done = wait_for_job(api, answer.headers["location"])
    after = expected_tags(TRACKERS, calls, _group("deal", "contract"))
    changed = sum(before[call_id] != tags for call_id, tags in after.items())
    assert changed == 16  # "contract" without "deal": a quarter of the calls
    assert done["state"] == "done"
    assert done["calls_retagged"] == changed == done["calls_examined"]
    assert stored_tags(es, settings) == after


def test_interleaved_vocabulary_and_tracker_writes_end_with_the_tags_of_the_last(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    calls = corpus(96)
    index_calls(*calls)
    with TestClient(create_app(small_batches(settings))) as api:
        tracker_write(api, "POST", "/v1/trackers", TRACKERS[0])
        script: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", "/v1/vocabulary", DEAL_CONTRACT),
            ("PUT", "/v1/vocabulary/deal", DEAL_DISCOUNT),
            ("POST", "/v1/trackers", TRACKERS[1]),
            ("PUT", "/v1/trackers/b", {"name": "B", "phrases": ["discount"]}),
            ("POST", "/v1/vocabulary", {"id": "hi", "canonical": "hello", "spellings": ["price"]}),
            ("DELETE", "/v1/vocabulary/hi", None),
            ("PUT", "/v1/vocabulary/deal", {"canonical": "deal", "spellings": ["hello"]}),
        ]
        answers = [api.request(method, path, json=body) for method, path, body in script]
        assert [answer.status_code for answer in answers] == [202] * len(script)
        jobs = wait_for_all(api, answers)
        final_trackers = api.get("/v1/trackers").json()["trackers"]
        final_terms = api.get("/v1/vocabulary").json()["terms"]
    assert {job["state"] for job in jobs} <= {"done", "superseded"}
    assert jobs[-1]["state"] == "done"
    assert [(t["canonical"], t["spellings"]) for t in final_terms] == [("deal", ["hello"])]
    assert [(t["id"], t["phrases"]) for t in final_trackers] == [
        ("a", ["deal"]),
        ("b", ["discount"]),
    ]
    expected = expected_tags(final_trackers, calls, _group("deal", "hello"))
    assert stored_tags(es, settings) == expected


def _spellings_of(terms: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Brute force of what a one-word phrase stands for under these (one-word) terms: every
    spelling of every term that has it among its spellings."""
    found: dict[str, set[str]] = {}
    for term in terms:
        words = {term["canonical"].lower(), *(s.lower() for s in term["spellings"])}
        for word in words:
            found.setdefault(word, set()).update(words)
    return found


def test_concurrent_vocabulary_and_tracker_writes_end_consistent(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    calls = corpus(96)
    index_calls(*calls)

    def vocabulary_writer(number: int) -> list[int]:
        term_id = f"t{number % 2}"  # two writers per term: their writes race
        statuses = []
        for step in range(4):
            canonical = WORDS[(number + step) % len(WORDS)]
            spellings = [WORDS[(number + 2 * step + 1) % len(WORDS)]]
            body = {"canonical": canonical, "spellings": spellings}
            statuses.append(api.post("/v1/vocabulary", json={**body, "id": term_id}).status_code)
            statuses.append(api.put(f"/v1/vocabulary/{term_id}", json=body).status_code)
            if step % 2:
                statuses.append(api.delete(f"/v1/vocabulary/{term_id}").status_code)
        return statuses

    def tracker_writer(number: int) -> list[int]:
        statuses = []
        for step in range(3):
            phrases = [WORDS[(number + step) % len(WORDS)]]
            body = {"name": "T", "phrases": phrases}
            statuses.append(api.put(f"/v1/trackers/{'ab'[number]}", json=body).status_code)
        return statuses

    with TestClient(create_app(small_batches(settings))) as api:
        for tracker in TRACKERS:
            tracker_write(api, "POST", "/v1/trackers", tracker)
        with ThreadPoolExecutor(6) as pool:
            writes = [pool.submit(vocabulary_writer, n) for n in range(4)]
            writes += [pool.submit(tracker_writer, n) for n in range(2)]
            statuses = [status for write in writes for status in write.result()]
        # Only the answers a race allows: taken (409), gone (404), or accepted.
        assert set(statuses) <= {202, 404, 409}
        assert statuses.count(202) > len(statuses) // 2
        deadline = time.monotonic() + 180
        while not all_jobs_finished(es, settings):
            assert time.monotonic() < deadline, "jobs still unfinished"
            time.sleep(0.2)
        final_trackers = api.get("/v1/trackers").json()["trackers"]
        final_terms = api.get("/v1/vocabulary").json()["terms"]
    expected = expected_tags(final_trackers, calls, _spellings_of(final_terms))
    assert stored_tags(es, settings) == expected


def test_a_job_for_an_older_vocabulary_write_stops_superseded(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    calls = corpus(32)
    index_calls(*calls)
    create_tracker(es, settings, TrackerCreate.model_validate(TRACKERS[0]))
    # Two writes stored, their jobs queued; no API runs them.
    create_term(es, settings, TermCreate.model_validate(DEAL_CONTRACT))
    older = enqueue_vocabulary_change(es, settings)
    replace_term(es, settings, "deal", TermSpec.model_validate(DEAL_DISCOUNT))
    newer = enqueue_vocabulary_change(es, settings)
    assert newer.version > older.version

    stopped = run_job(es, settings, older)
    assert stopped is not None
    assert stopped.state == "superseded"
    assert stopped.calls_retagged == 0
    assert stored_tags(es, settings) == expected_tags([TRACKERS[0]], calls)
    done = run_job(es, settings, newer)
    assert done is not None
    assert done.state == "done"
    assert stored_tags(es, settings) == expected_tags(
        [TRACKERS[0]], calls, _group("deal", "discount")
    )


def test_a_vocabulary_job_cut_off_by_a_shutdown_resumes_on_the_next_start(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    calls = corpus(256)
    index_calls(*calls)
    with TestClient(create_app(settings)) as api:
        for tracker in TRACKERS:
            tracker_write(api, "POST", "/v1/trackers", tracker)
    location, cut = write_then_stop_mid_job(es, settings, "POST", "/v1/vocabulary", DEAL_CONTRACT)
    # The API is stopped: its worker left the job mid-way (64 calls to tag, 2 at a time).
    assert cut["state"] == "running"
    assert 0 < cut["calls_examined"] < 64
    after = expected_tags(TRACKERS, calls, _group("deal", "contract"))
    assert stored_tags(es, settings) != after

    with TestClient(create_app(small_batches(settings))) as api:
        done = wait_for_job(api, location)
    assert done["state"] == "done"
    assert stored_tags(es, settings) == after


def test_a_cli_change_waits_for_the_api_job_it_must_not_overlap_and_says_its_exact_count(
    es: Elasticsearch, settings: Settings, index_calls: Callable[..., None]
) -> None:
    """A vocabulary job runs alone: the CLI's, queued while an API worker re-tags a tracker,
    starts only after that job is done (in the CLI, or in the API's worker right after), and
    the command says the calls its job changed, counted once by whichever runner ran it."""
    calls = corpus(512)
    index_calls(*calls)
    one_at_a_time = small_batches(settings, bulk_chunk_size=1, retag_processes=0)
    with TestClient(create_app(one_at_a_time)) as api:
        tracker_write(api, "POST", "/v1/trackers", TRACKERS[0])
        slow = api.post("/v1/trackers", json={"id": "p", "name": "P", "phrases": ["price"]})
        assert slow.status_code == 202, slow.text
        while api.get(slow.headers["location"]).json()["calls_examined"] == 0:
            time.sleep(0.01)
        added = _vocab_cli(settings, "add", "deal", "-s", "contract", "--id", "deal")
        assert added.returncode == 0, added.stderr
        tracker_job = wait_for_job(api, slow.headers["location"])
    # The calls that say "contract" and not "deal" gain tracker a: a quarter of them.
    assert "tracker tags re-checked: 128 calls changed" in added.stderr, added.stderr
    index = f"{settings.calls_alias}-jobs"
    es.indices.refresh(index=index)
    found = es.search(index=index, query={"term": {"action": "vocabulary"}})["hits"]["hits"]
    assert len(found) == 1
    vocabulary_job = found[0]["_source"]
    assert (vocabulary_job["state"], vocabulary_job["calls_retagged"]) == ("done", 128)
    # It was queued while the tracker's job ran, and did not run beside it: had it, it would
    # have tagged some of p's calls itself, and both jobs' counts would be off.
    assert vocabulary_job["created_at"] < tracker_job["updated_at"]
    assert tracker_job["state"] == "done"
    assert tracker_job["calls_examined"] == tracker_job["calls_retagged"] == 256
    expected = expected_tags(
        [TRACKERS[0], {"id": "p", "phrases": ["price"]}], calls, _group("deal", "contract")
    )
    assert stored_tags(es, settings) == expected
