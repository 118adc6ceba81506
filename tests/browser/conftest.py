"""Browser fixtures: the real API served by a real uvicorn process on a free loopback port, its
own calls alias on the real Elasticsearch loaded through the real loader, recordings voiced by
scripts/make-demo-audio, and Debian's Chromium driven by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, Page, Playwright, Request, sync_playwright
from pydantic import SecretStr
from web_helpers import ADMIN_KEY, AUDIO_URL_SECRET, READ_KEY

from indexer.index.loader import load_calls
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.tagging import current_tagger
from indexer.transcript import SourcedCall, read_call_file

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
SAMPLES = PROJECT_ROOT / "samples" / "calls"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Headless Chromium plays audio only without the user-gesture rule.
    "--autoplay-policy=no-user-gesture-required",
]
# The calls that get a voiced recording (one English, one Russian; each has a phrase the tests
# search for).
VOICED = ("en-0006-insurance", "ru-0007-leasing", "en-0002-pricing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def demo_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Recordings and their transcripts (audio.uri relative to this folder) for VOICED."""
    out = tmp_path_factory.mktemp("demo-audio")
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "scripts" / "make-demo-audio"),
            "--out",
            str(out),
            *VOICED,
        ],
        check=True,
    )
    return out


@dataclass
class WebServer:
    """One uvicorn process serving the app over its own calls alias."""

    settings: Settings
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the API did not answer /healthz within 60 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _serve(es: Elasticsearch, demo_audio: Path, work: Path, *, keys: bool) -> Iterator[WebServer]:
    alias = f"test-web-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ES_URL": ES_URL,
        "EARSHOT_CALLS_ALIAS": alias,
        "EARSHOT_STORE_DIR": str(work / "store"),
        "EARSHOT_AUDIO_ROOT": str(demo_audio),
        "EARSHOT_AUDIO_URL_SECRET": AUDIO_URL_SECRET,
        "EARSHOT_API_KEYS_READ": READ_KEY if keys else "",
        "EARSHOT_API_KEYS_ADMIN": ADMIN_KEY if keys else "",
    }
    settings = Settings(
        es_url=ES_URL,
        calls_alias=alias,
        store_dir=work / "store",
        audio_root=demo_audio,
        audio_url_secret=SecretStr(AUDIO_URL_SECRET),
        api_keys_read=[SecretStr(READ_KEY)] if keys else [],
        api_keys_admin=[SecretStr(ADMIN_KEY)] if keys else [],
    )
    voiced = {path.stem: path for path in (demo_audio / "calls").glob("*.json")}
    calls = [
        SourcedCall(str(path), read_call_file(voiced.get(path.stem, path)))
        for path in sorted(SAMPLES.glob("*.json"))
    ]
    summary = load_calls(es, settings, calls, tag=current_tagger(es, settings))
    assert summary.failures == []
    server = WebServer(settings, env, work / "uvicorn.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        names = list(es.indices.get(index=f"{alias}*", expand_wildcards="all"))
        if names:
            es.indices.delete(index=",".join(names))
        es.options(ignore_status=404).indices.delete_index_template(name=alias)


@pytest.fixture(scope="module")
def server(
    es: Elasticsearch, demo_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    """The app with keys off (the local default of scripts/run)."""
    yield from _serve(es, demo_audio, tmp_path_factory.mktemp("web"), keys=False)


@pytest.fixture(scope="module")
def keyed_server(
    es: Elasticsearch, demo_audio: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebServer]:
    """The app with read and admin keys configured."""
    yield from _serve(es, demo_audio, tmp_path_factory.mktemp("web-keys"), keys=True)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium"
        # As for Elasticsearch (tests/conftest.py): skipped on a laptop, a failure under CI.
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(missing)
        pytest.skip(missing)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Recorded:
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def page(browser: Browser, recorded: Recorded) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) at laptop size; every request and every script
    error recorded. 'playing' events record the player's position at the moment play starts."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(
        "window.__playing = [];"
        "document.addEventListener('playing', (e) => window.__playing.push(e.target.currentTime),"
        " true);"
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)

    def on_request(request: Request) -> None:
        recorded.requests.append(request.url)

    tab.on("request", on_request)
    tab.on("pageerror", lambda error: recorded.errors.append(str(error)))
    yield tab
    context.close()
    assert recorded.errors == [], recorded.errors
