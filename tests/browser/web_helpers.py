"""What the browser tests share besides fixtures: keys, screenshots, waiting for the player."""

from __future__ import annotations

import os
from typing import Any

from playwright.sync_api import Page

from indexer.settings import PROJECT_ROOT

READ_KEY = "read-key-for-browser-tests-0001"
ADMIN_KEY = "admin-key-for-browser-tests-001"
AUDIO_URL_SECRET = "audio-url-secret-for-browser-tests"
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"


def screenshot(page: Page, name: str, **options: Any) -> None:
    """Saved to docs/screenshots only with EARSHOT_SCREENSHOTS=1, so CI rewrites no tracked
    file."""
    if os.environ.get("EARSHOT_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **options)


def first_play_position(page: Page) -> float:
    """Where the player was when it started playing (recorded by the page fixture)."""
    page.wait_for_function("() => window.__playing.length > 0")
    position: float = page.evaluate("window.__playing[0]")
    return position


def player_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        "(() => { const a = document.getElementById('player');"
        " return {time: a.currentTime, paused: a.paused, ready: a.readyState,"
        " src: a.currentSrc}; })()"
    )
    return state
