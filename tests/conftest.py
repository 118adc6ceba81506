"""Shared fixtures: a real Elasticsearch (started by scripts/es-local, or ES_URL) and a fresh
calls alias per test, removed afterwards.

Tests are grouped by what they need: ``tests/unit`` nothing running, ``tests/server`` a real
Elasticsearch (the ``es`` fixture), ``tests/asr`` the real Whisper model on real audio,
``tests/browser`` headless Chromium against a real uvicorn of the app. Without
a reachable Elasticsearch the server tests are skipped with the reason, so ``pytest tests/unit``
works on a laptop; under CI (``CI=true``, as ``.ci/run`` sets) they fail instead, so a missing
node can never pass as green."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

# Models come from local paths only; a hub must never be contacted from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Settings built from the environment (CLI runs, module-level Settings()) keep their transcript
# store out of the checkout's .cache/store, which scripts/run uses; removed when tests end.
if "EARSHOT_STORE_DIR" not in os.environ:
    os.environ["EARSHOT_STORE_DIR"] = tempfile.mkdtemp(prefix="earshot-test-store-")
    atexit.register(shutil.rmtree, os.environ["EARSHOT_STORE_DIR"], ignore_errors=True)

from builders import load_through_loader
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from api.main import create_app
from indexer.elastic import connect, is_reachable
from indexer.settings import PROJECT_ROOT, Settings
from indexer.transcript import Call

# Property tests: a fixed seed schedule by default, so CI explores the same cases every run and a
# failure reproduces (printed as the minimal example, then kept as an @example); "fish"
# (scripts/fish-properties) draws new random cases, many more of them; "mutation"
# (scripts/mutation-check) is "ci" without shrinking.
_PROPERTY_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=_PROPERTY_HEALTH,
)
hypothesis_settings.register_profile(
    "fish",
    derandomize=False,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("EARSHOT_FISH_EXAMPLES", "1000")),
    print_blob=True,
    suppress_health_check=_PROPERTY_HEALTH,
)
hypothesis_settings.register_profile(
    "mutation",
    parent=hypothesis_settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
hypothesis_settings.load_profile(os.environ.get("EARSHOT_HYPOTHESIS_PROFILE", "ci"))

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def es() -> Iterator[Elasticsearch]:
    client = connect(Settings(es_url=ES_URL))
    if not is_reachable(client):
        missing = f"no Elasticsearch at {ES_URL}: run scripts/es-local start (scripts/test does)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(missing)
        pytest.skip(missing)
    yield client
    client.close()


@pytest.fixture
def settings(es: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a calls alias of this test's own, and a transcript store of its
    own (a temporary directory apart from tmp_path, which tests load); indices deleted after."""
    alias = f"test-calls-{uuid.uuid4().hex[:12]}"
    store = tmp_path_factory.mktemp("store")
    yield Settings(es_url=ES_URL, calls_alias=alias, store_dir=store)
    # Wildcard deletes are refused by default (action.destructive_requires_name): name them.
    names = list(es.indices.get(index=f"{alias}-*", expand_wildcards="all"))
    if names:
        es.indices.delete(index=",".join(names))
    es.options(ignore_status=404).indices.delete_index_template(name=alias)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the team's shared data must sit beside the checkout")
    return SHARED


@pytest.fixture
def index_calls(es: Elasticsearch, settings: Settings) -> Callable[..., None]:
    """Load calls through the real loader into this test's alias, refreshed for search."""

    def load(*calls: Call) -> None:
        load_through_loader(es, settings, calls)

    return load


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """The real API app, talking to this test's alias on the real Elasticsearch."""
    with TestClient(create_app(settings)) as client:
        yield client
