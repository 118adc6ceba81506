"""The web app in headless Chromium against the real API, Elasticsearch and recordings: search,
syntax errors, playing a hit, moment links, filters, trackers, the offline API docs, and keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from conftest import WebServer
from playwright.sync_api import Browser, Page, expect
from web_helpers import ADMIN_KEY, AUDIO_URL_SECRET, READ_KEY, first_play_position, player_state
from web_helpers import screenshot as save_screenshot

from api.security.signing import UrlSigner
from indexer.settings import PROJECT_ROOT


def api_get(server: WebServer, path: str, key: str | None = None, **params: str) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)


def shown_call_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator(".call-card").evaluate_all(
        "cards => cards.map(c => c.dataset.callId)"
    )
    return ids


def search(page: Page, text: str) -> None:
    box = page.locator("#q")
    page.wait_for_selector("#results:not([aria-busy])", state="attached")  # the first load
    box.fill(text)
    with page.expect_response(lambda response: "/v1/search?" in response.url):
        box.press("Enter")  # Enter searches
    page.wait_for_selector("#results:not([aria-busy])", state="attached")


# --- search -----------------------------------------------------------------------------------


def test_a_phrase_finds_its_calls_with_the_words_highlighted(server: WebServer, page: Page) -> None:
    page.goto(server.url)
    search(page, '"send me the contract"')
    expected = api_get(server, "/v1/search", q='"send me the contract"').json()
    ids = shown_call_ids(page)
    assert ids == [call["call_id"] for call in expected["calls"]]
    # The samples' deliberate situation: said in en-0006; split across utterances in en-0003.
    assert "en-0006-insurance" in ids
    assert "en-0003-contract-split" not in ids
    assert page.locator("#total b").inner_text() == str(expected["total"])
    card = page.locator('.call-card[data-call-id="en-0006-insurance"]')
    marks = card.locator(".hit mark").all_inner_texts()
    assert marks
    assert all(mark.lower() == "send me the contract" for mark in marks)
    assert card.locator(".hit .role").first.inner_text().lower() == "client"
    assert "q=%22send+me+the+contract%22" in page.url  # the URL holds the search
    save_screenshot(page, "search")


def test_a_russian_phrase_and_its_hits_in_the_utterance(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/?q=%22пришлите+договор%22")  # a bookmarked search runs by itself
    page.wait_for_selector("#total")
    assert shown_call_ids(page) == ["ru-0007-leasing"]
    hits = page.locator('.call-card[data-call-id="ru-0007-leasing"] .hit')
    expect(hits).to_have_count(2)
    for text in hits.locator(".text").all_inner_texts():
        assert "пришлите договор" in text
    assert hits.locator("mark").all_inner_texts() == ["пришлите договор"] * 2


def test_a_syntax_error_is_shown_at_its_position(server: WebServer, page: Page) -> None:
    page.goto(server.url)
    query = 'client:(дорого OR "скидка'
    search(page, query)
    answer = api_get(server, "/v1/search", q=query)
    assert answer.status_code == 400
    position = answer.json()["position"]
    error = page.locator("#query-error .error")
    expect(error).to_contain_text(f"position {position}")
    expect(error).to_contain_text(answer.json()["detail"])
    lines = error.locator("pre.caret").inner_text().split("\n")
    assert lines[0] == query
    assert lines[1].index("^") == position
    assert page.locator("#q").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.getElementById('q').selectionStart") == position


def test_filters_change_the_results_and_the_url(server: WebServer, page: Page) -> None:
    page.goto(server.url)
    search(page, '"too expensive"')
    anyone = set(shown_call_ids(page))
    # The client says it in en-0002, the manager in en-0004 (samples/calls situations).
    assert {"en-0002-pricing", "en-0004-salesforce-switch"} <= anyone
    page.select_option("select[name=role]", "client")  # a filter searches at once
    page.wait_for_url(re.compile(r"role=client"))
    page.wait_for_selector("#total")
    expect(page.locator(".call-card")).not_to_have_count(len(anyone))
    by_client = set(shown_call_ids(page))
    expected = api_get(server, "/v1/search", q='"too expensive"', role="client").json()
    assert by_client == {call["call_id"] for call in expected["calls"]}
    assert "en-0002-pricing" in by_client
    assert "en-0004-salesforce-switch" not in by_client
    page.fill("input[name=min_duration_s]", "100000")
    page.locator("input[name=min_duration_s]").dispatch_event("change")
    page.wait_for_url(re.compile(r"min_duration_s=100000"))
    expect(page.locator(".empty")).to_be_visible()
    query = parse_qs(urlsplit(page.url).query)
    assert query == {
        "q": ['"too expensive"'],
        "role": ["client"],
        "min_duration_s": ["100000"],
    }
    page.go_back()  # the previous search comes back with its results
    page.wait_for_url(re.compile(r"role=client$"))
    page.wait_for_selector("#total")
    assert set(shown_call_ids(page)) == by_client


# --- playing ----------------------------------------------------------------------------------


def test_clicking_a_hit_plays_the_recording_from_that_second(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/?q=%22пришлите+договор%22")
    hit = page.locator('.call-card[data-call-id="ru-0007-leasing"] .hit').nth(1)
    expected = api_get(server, "/v1/search", q='"пришлите договор"').json()
    start = expected["calls"][0]["hits"][1]["start"]
    hit.click()
    page.wait_for_url(re.compile(r"/calls/ru-0007-leasing\?"))
    position = first_play_position(page)
    assert start - 0.5 <= position <= start, (position, start)
    state = player_state(page)
    assert not state["paused"]
    assert "sig=" in state["src"]  # a signed URL, not the bare endpoint
    # The word being said is highlighted while it plays.
    page.wait_for_selector(".w.now")
    save_screenshot(page, "call")
    # A hit in the call page's own list seeks and plays too.
    first = expected["calls"][0]["hits"][0]["start"]
    page.evaluate("window.__playing = []; document.getElementById('player').pause()")
    page.locator(".call-hits .hit").first.click()
    position = first_play_position(page)
    assert first - 0.5 <= position <= first, (position, first)


def test_a_moment_link_opens_the_call_at_its_second(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/calls/ru-0007-leasing?t=65.8&q=%22пришлите+договор%22")
    page.wait_for_function("() => document.getElementById('player')?.readyState >= 1")
    page.wait_for_function(
        "() => Math.abs(document.getElementById('player').currentTime - 65.8) < .5"
    )
    state = player_state(page)
    assert state["paused"]  # a shared link opens there; it plays when asked to
    speaking = page.locator(".utt.speaking")
    expect(speaking).to_have_count(1)
    expect(speaking).to_be_in_viewport()
    expect(speaking).to_contain_text("пришлите договор")
    expect(page.locator(".call-hits .hit")).to_have_count(2)
    # Space plays from there, and pauses again.
    page.locator("h1").click()
    page.keyboard.press("Space")
    position = first_play_position(page)
    assert 65.8 - 0.5 <= position <= 65.8
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('player').paused")


def test_hits_and_player_are_reachable_by_keyboard(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/?q=%22пришлите+договор%22")
    page.wait_for_selector("#total")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('hit')"):
            break
    else:
        pytest.fail("no hit was reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/calls/ru-0007-leasing\?"))
    first_play_position(page)
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id === 'player'"):
            return
    pytest.fail("the player was not reached with Tab")


# --- trackers ---------------------------------------------------------------------------------


def test_a_tracker_created_on_the_page_shows_its_statistics(server: WebServer, page: Page) -> None:
    page.goto(f"{server.url}/trackers")
    page.fill("input[name=name]", "Price objections")
    page.fill("textarea[name=phrases]", "too expensive\nэто дорого")
    page.select_option(".tracker-form select[name=role]", "client")
    page.click("text=Create tracker")
    page.wait_for_selector(".stats tfoot")
    trackers = api_get(server, "/v1/trackers").json()["trackers"]
    created = next(t for t in trackers if t["name"] == "Price objections")
    stats = api_get(server, f"/v1/trackers/{created['id']}/stats", group_by="manager").json()
    total = page.locator(".stats tfoot td").all_inner_texts()
    assert total[:3] == [
        str(stats["total"]["calls"]),
        str(stats["total"]["calls_mentioning"]),
        str(stats["total"]["mentions"]),
    ]
    assert stats["total"]["calls_mentioning"] >= 2  # en-0002 (client), ru-0003 and ru-0008
    expect(page.locator(".stats tbody tr")).to_have_count(len(stats["groups"]))
    expect(page.locator("svg.chart rect.chart-bar")).to_have_count(len(stats["groups"]))
    save_screenshot(page, "trackers")
    page.select_option("select[name=group_by]", "month")
    page.wait_for_url(re.compile(r"group_by=month"))
    monthly = api_get(server, f"/v1/trackers/{created['id']}/stats", group_by="month").json()
    expect(page.locator(".stats tbody tr")).to_have_count(len(monthly["groups"]))
    # The calls it tags show the tag in search results.
    page.goto(f"{server.url}/?q=%22too+expensive%22&role=client")
    tag = page.locator('.call-card[data-call-id="en-0002-pricing"] .tag')
    expect(tag).to_have_text(created["id"])
    # Edited and deleted from the page too.
    page.goto(f"{server.url}/trackers")
    row = page.locator(f'tr[data-tracker="{created["id"]}"]')
    row.get_by_role("button", name="Edit").click()
    page.fill("input[name=name]", "Price objections (client)")
    page.click("text=Save")
    expect(page.locator(".tracker-stats h2")).to_have_text("Price objections (client)")
    edited = api_get(server, f"/v1/trackers/{created['id']}").json()
    assert edited["name"] == "Price objections (client)"
    assert edited["phrases"] == created["phrases"]
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert api_get(server, f"/v1/trackers/{created['id']}").status_code == 404


# --- the API's docs ---------------------------------------------------------------------------


def _leaving_the_machine(urls: list[str]) -> list[str]:
    """Requests that would go over a network: data: and blob: URLs are made in the page."""
    local = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue
        if parts.hostname not in ("127.0.0.1", "localhost"):
            local.append(url[:200])
    return local


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_render_with_nothing_from_outside(
    server: WebServer, page: Page, recorded: object, path: str
) -> None:
    page.goto(f"{server.url}{path}")
    spec = api_get(server, "/openapi.json").json()
    summaries = [op["summary"] for ops in spec["paths"].values() for op in ops.values()]
    if path == "/docs":
        expect(page.locator(".opblock")).to_have_count(len(summaries))
    else:
        page.wait_for_selector("[data-section-id]")
    expect(page.get_by_text(summaries[0]).first).to_be_attached()
    page.wait_for_load_state("networkidle")
    requests: list[str] = recorded.requests  # type: ignore[attr-defined]
    assert requests
    assert _leaving_the_machine(requests) == []


# --- keys on ----------------------------------------------------------------------------------


def test_with_keys_the_page_asks_once_and_works_with_a_read_key(
    keyed_server: WebServer, page: Page
) -> None:
    page.goto(f"{keyed_server.url}/?q=%22пришлите+договор%22")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", READ_KEY)
    page.click("text=Use this key")
    page.wait_for_selector("#total")
    assert shown_call_ids(page) == ["ru-0007-leasing"]
    # Kept for the tab: the next page asks no more, and the recording plays by signed URL.
    page.locator(".hit").first.click()
    first_play_position(page)
    expect(dialog).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("document.cookie") == ""
    # A tracker write needs an admin key: refused, and said so.
    page.goto(f"{keyed_server.url}/trackers")
    page.fill("input[name=name]", "Not allowed")
    page.fill("textarea[name=phrases]", "discount")
    page.click("text=Create tracker")
    expect(page.locator(".tracker-form .error")).to_contain_text("admin key")
    assert api_get(keyed_server, "/v1/trackers", READ_KEY).json()["trackers"] == []
    # The docs show the schema with the same key.
    page.goto(f"{keyed_server.url}/docs")
    page.wait_for_selector(".opblock")


def test_with_keys_an_expired_or_forged_audio_url_fails(
    keyed_server: WebServer, page: Page
) -> None:
    page.goto(keyed_server.url)
    page.fill("#key-input", READ_KEY)
    page.click("text=Use this key")
    page.wait_for_selector("#total")
    signer = UrlSigner(AUDIO_URL_SECRET.encode(), ttl_s=300)
    expired = signer.sign("ru-0007-leasing", "read", now=time.time() - 301).url
    fresh = api_get(keyed_server, "/v1/calls/ru-0007-leasing/audio-url", READ_KEY).json()["url"]
    other_call = fresh.replace("ru-0007-leasing", "en-0006-insurance")
    statuses = page.evaluate(
        "async (urls) => Promise.all(urls.map(async (u) => (await fetch(u)).status))",
        [fresh, expired, other_call, "/v1/calls/ru-0007-leasing/audio"],
    )
    assert statuses == [200, 403, 403, 401]
    # The player itself refuses to play an expired URL.
    error = page.evaluate(
        """(url) => new Promise((resolve) => {
            const audio = new Audio(url);
            audio.onerror = () => resolve(audio.error.code);
            audio.oncanplay = () => resolve(0);
        })""",
        expired,
    )
    assert error != 0
    signature = parse_qs(urlsplit(fresh).query)["sig"][0]
    time.sleep(0.5)  # uvicorn writes its access log line after the response
    log = keyed_server.log()
    assert "/v1/calls/ru-0007-leasing/audio?" in log
    assert signature not in log
    assert parse_qs(urlsplit(expired).query)["sig"][0] not in log
    assert READ_KEY not in log
    assert ADMIN_KEY not in log


# --- the benchmark script ---------------------------------------------------------------------


def test_bench_web_measures_the_page_against_the_api(server: WebServer) -> None:
    """A smoke run of scripts/bench-web (the figures are in docs/benchmarks.md)."""
    bench = [sys.executable, str(PROJECT_ROOT / "scripts" / "bench-web"), "--url", server.url]
    done = subprocess.run(
        [*bench, "--runs", "1", "--json", '"пришлите договор"'],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    (row,) = report["queries"]
    assert row["query"] == '"пришлите договор"'
    assert row["total"] == 1
    for name in ("page_load_ms", "search_to_results_ms", "browser_fetch_ms", "api_client_ms"):
        assert row[name]["p50"] > 0, name
    # The page's search includes its own request.
    assert row["search_to_results_ms"]["p50"] >= row["browser_fetch_ms"]["p50"]


def test_the_pages_fit_a_phone(server: WebServer, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        for path, ready, name in (
            ("/?q=%22пришлите+договор%22", "#total", "search-phone"),
            (
                "/calls/ru-0007-leasing?q=%22пришлите+договор%22&t=65.8",
                ".utt.speaking",
                "call-phone",
            ),
            ("/trackers", ".tracker-form", None),
        ):
            phone.goto(f"{server.url}{path}")
            phone.wait_for_selector(ready)
            overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (path, overflow)
            cut = phone.evaluate(
                "[...document.querySelectorAll('input, select, button, .hit, .utt')]"
                ".filter((e) => e.getClientRects().length)"
                ".filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)"
                ".map((e) => e.outerHTML.slice(0, 80))"
            )
            assert cut == [], (path, cut)
            if name:
                save_screenshot(phone, name)
    finally:
        context.close()
