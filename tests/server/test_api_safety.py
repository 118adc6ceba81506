"""The API under bad and hostile input: API keys, limits, timeouts, audio confinement, CORS.

Everything runs against the real app and the real Elasticsearch; the audio tests use real files
and symlinks in a temporary directory, the timeout tests a real TCP peer that never answers.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import uvicorn
from builders import make_call
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.deps import AdminDep
from api.main import create_app
from api.security import ApiKeys, api_routes
from api.security.signing import RedactSignatures, UrlSigner, install_log_redaction
from indexer.settings import Settings
from indexer.transcript import Call

Load = Callable[..., None]

READ_KEY = "read-key-0123456789abcdef-READ"
ADMIN_KEY = "admin-key-0123456789abcdef-ADMIN"
WRONG_KEY = "wrong-key-0123456789abcdef-NOPE"
ALLOWED_ORIGIN = "https://earshot.example"
OPEN_PATHS = {"/healthz", "/readyz"}


def keyed(settings: Settings, **changes: Any) -> Settings:
    """The test's settings with read and admin keys on (and any other changes)."""
    update = {"api_keys_read": [SecretStr(READ_KEY)], "api_keys_admin": [SecretStr(ADMIN_KEY)]}
    return settings.model_copy(update={**update, **changes})


@pytest.fixture
def keyed_api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(keyed(settings))) as client:
        yield client


def read(key: str = READ_KEY) -> dict[str, str]:
    return {"X-API-Key": key}


# --- API keys -------------------------------------------------------------------------------------


def test_without_keys_the_api_is_open_and_says_so_once(
    settings: Settings, index_calls: Load, caplog: pytest.LogCaptureFixture
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    with caplog.at_level(logging.WARNING, logger="earshot.api"):
        app = create_app(settings)
    warnings = [r for r in caplog.records if "no API keys are configured" in r.getMessage()]
    assert len(warnings) == 1
    with TestClient(app) as client:
        assert client.get("/v1/search", params={"q": "expensive"}).json()["total"] == 1


def test_a_request_without_a_key_is_401_with_a_message(
    keyed_api: TestClient, index_calls: Load
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    response = keyed_api.get("/v1/search", params={"q": "expensive"})
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "key",
    [WRONG_KEY, READ_KEY[:-1], READ_KEY + "x", READ_KEY.upper(), " ", "x" * 5000],
    ids=["unknown", "prefix", "longer", "other-case", "blank", "huge"],
)
def test_a_key_that_is_not_exactly_a_configured_one_is_401(keyed_api: TestClient, key: str) -> None:
    response = keyed_api.get("/v1/search", headers=read(key))
    assert response.status_code == 401
    assert response.json()["detail"]


def test_read_key_reads_by_header_or_bearer_token(keyed_api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    by_header = keyed_api.get("/v1/search", params={"q": "expensive"}, headers=read())
    by_bearer = keyed_api.get(
        "/v1/search", params={"q": "expensive"}, headers={"Authorization": f"Bearer {READ_KEY}"}
    )
    assert by_header.status_code == by_bearer.status_code == 200
    assert by_header.json()["total"] == by_bearer.json()["total"] == 1
    assert keyed_api.get("/v1/calls/c1", headers=read()).status_code == 200
    wrong_scheme = keyed_api.get("/v1/search", headers={"Authorization": f"Basic {READ_KEY}"})
    assert wrong_scheme.status_code == 401


def test_read_key_cannot_delete_and_the_call_stays(
    keyed_api: TestClient, index_calls: Load
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    response = keyed_api.delete("/v1/calls/c1", headers=read())
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert keyed_api.get("/v1/calls/c1", headers=read()).status_code == 200


def test_admin_key_deletes_a_call(keyed_api: TestClient, index_calls: Load) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    assert keyed_api.delete("/v1/calls/c1").status_code == 401
    assert keyed_api.delete("/v1/calls/c1", headers=read(ADMIN_KEY)).status_code == 204
    assert keyed_api.get("/v1/calls/c1", headers=read()).status_code == 404


def test_admin_dependency_guards_a_read_route_too(settings: Settings) -> None:
    app = create_app(keyed(settings))
    router = APIRouter()

    @router.get("/v1/admin-only")
    def admin_only(principal: AdminDep) -> dict[str, str]:
        return {"by": principal.key_name}

    app.include_router(router)
    client = TestClient(app)
    assert client.get("/v1/admin-only").status_code == 401
    assert client.get("/v1/admin-only", headers=read()).status_code == 403
    answer = client.get("/v1/admin-only", headers=read(ADMIN_KEY))
    assert answer.status_code == 200
    assert answer.json() == {"by": "admin-1"}


def test_every_route_but_the_health_probes_needs_a_key(settings: Settings) -> None:
    """Also guards routes added later: a new route is closed unless marked public."""
    app = create_app(keyed(settings))
    client = TestClient(app)
    checked = set()
    for path, route in api_routes(app):
        concrete = path
        for name in route.param_convertors:
            concrete = concrete.replace("{" + name + "}", "x")
        for method in route.methods or ():
            status = client.request(method, concrete).status_code
            if path in OPEN_PATHS:
                assert status != 401, (method, path)
            else:
                assert status == 401, (method, path, status)
            checked.add((method, path))
    assert {("GET", "/v1/search"), ("GET", "/v1/calls/{call_id}")} <= checked
    assert client.get("/healthz").status_code == 200
    # The schema is behind a key too (the docs pages send the tab's key); the pages' shells and
    # static files carry no data and are open.
    assert ("GET", "/openapi.json") in checked
    assert client.get("/openapi.json", headers=read()).status_code == 200
    for page in ("/", "/calls/x", "/trackers", "/docs", "/redoc", "/static/app.js"):
        assert client.get(page).status_code == 200, page


def test_keys_come_from_the_environment_as_json_or_commas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EARSHOT_API_KEYS_READ", f" {READ_KEY} , {WRONG_KEY},")
    monkeypatch.setenv("EARSHOT_API_KEYS_ADMIN", json.dumps([ADMIN_KEY]))
    settings = Settings()
    assert [key.get_secret_value() for key in settings.api_keys_read] == [READ_KEY, WRONG_KEY]
    assert [key.get_secret_value() for key in settings.api_keys_admin] == [ADMIN_KEY]
    assert READ_KEY not in repr(settings)
    assert ADMIN_KEY not in str(settings.model_dump())


def test_a_short_or_malformed_key_setting_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in ("short-secret", f'["{READ_KEY}"'):
        monkeypatch.setenv("EARSHOT_API_KEYS_READ", value)
        with pytest.raises(ValueError, match="api_keys_read") as raised:
            Settings()
        assert "short-secret" not in str(raised.value)
        assert READ_KEY not in str(raised.value)


def test_a_key_in_both_lists_is_an_admin_key() -> None:
    keys = ApiKeys(read=[SecretStr(ADMIN_KEY)], admin=[SecretStr(ADMIN_KEY)])
    principal = keys.identify(ADMIN_KEY)
    assert principal is not None
    assert principal.is_admin
    assert keys.identify(READ_KEY) is None


def test_keys_never_reach_the_logs(
    settings: Settings, index_calls: Load, caplog: pytest.LogCaptureFixture
) -> None:
    """A real uvicorn (access log on) and DEBUG logging everywhere: requests with a read key,
    an admin key, a wrong key and a bearer token leave no key text in any log record."""
    index_calls(make_call("c1", [("client", "too expensive")]))
    caplog.set_level(logging.DEBUG)
    with (
        running_server(create_app(keyed(settings))) as base,
        httpx.Client(base_url=base) as client,
    ):
        answers = [
            client.get("/v1/search", params={"q": "expensive"}, headers=read()),
            client.get("/v1/calls/c1", headers={"Authorization": f"Bearer {READ_KEY}"}),
            client.get("/v1/search", headers=read(WRONG_KEY)),
            client.delete("/v1/calls/c1", headers=read()),
            client.delete("/v1/calls/nope", headers=read(ADMIN_KEY)),
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 401, 403, 404]
    logged = caplog.text + "".join(repr(record.args) for record in caplog.records)
    assert "GET /v1/search" in logged  # the access log was captured: the check below can fail
    assert "refused GET /v1/search" in logged
    for key in (READ_KEY, ADMIN_KEY, WRONG_KEY):
        assert key not in logged
        assert all(key not in answer.text for answer in answers)


# --- Limits ---------------------------------------------------------------------------------------


def test_query_length_and_term_count_limits(settings: Settings, index_calls: Load) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    limited = settings.model_copy(update={"max_query_length": 40, "max_query_terms": 3})
    with TestClient(create_app(limited)) as api:
        too_long = api.get("/v1/search", params={"q": "expensive " * 5})
        assert too_long.status_code == 400
        assert too_long.json() == {"detail": "query is longer than 40 characters", "position": 40}
        too_many = api.get("/v1/search", params={"q": "a1 b2 c3 d4"})
        assert too_many.status_code == 400
        assert "more than 3" in too_many.json()["detail"]
        assert api.get("/v1/search", params={"q": "too expensive"}).status_code == 200


@pytest.mark.parametrize(
    ("size", "detail"),
    [("101", "size must be at most 100"), ("0", "size"), ("-5", "size"), ("many", "size")],
)
def test_page_size_is_bounded(api: TestClient, size: str, detail: str) -> None:
    response = api.get("/v1/search", params={"size": size})
    assert response.status_code == 400
    assert detail in response.json()["detail"]


def _cursor_payload(cursor: str) -> dict[str, Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return payload


def _cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_cursor_pages_and_refuses_tampered_or_foreign_cursors(
    api: TestClient, index_calls: Load
) -> None:
    index_calls(*(make_call(f"c{n}", [("client", f"price number {n}")]) for n in range(5)))
    first = api.get("/v1/search", params={"q": "price", "size": 2}).json()
    cursor = first["next_cursor"]
    second = api.get("/v1/search", params={"q": "price", "size": 2, "cursor": cursor}).json()
    assert {c["call_id"] for c in first["calls"]}.isdisjoint(c["call_id"] for c in second["calls"])

    payload = _cursor_payload(cursor)
    bad_cursors = {
        "garbage": "!!not-base64!!",
        "not-json": base64.urlsafe_b64encode(b"hello").decode(),
        "truncated": cursor[: len(cursor) // 2],
        "other-fingerprint": _cursor({**payload, "q": "0" * 16}),
        "object-value": _cursor({**payload, "after": [{"a": 1}, "c1"]}),
        "boolean-value": _cursor({**payload, "after": [True, "c1"]}),
        "nulls": _cursor({**payload, "after": [None, None]}),
        "infinite": _cursor({**payload, "after": [float("inf"), "c1"]}),
        "huge-int": _cursor({**payload, "after": [2**64, "c1"]}),
        "id-not-text": _cursor({**payload, "after": [1.0, 5]}),
        "one-value": _cursor({**payload, "after": [1.0]}),
    }
    for name, bad in bad_cursors.items():
        response = api.get("/v1/search", params={"q": "price", "size": 2, "cursor": bad})
        assert response.status_code == 400, name
        assert "cursor" in response.json()["detail"], name
    foreign = api.get("/v1/search", params={"q": "number", "size": 2, "cursor": cursor})
    assert foreign.status_code == 400
    assert "different query" in foreign.json()["detail"]
    # A date sort takes no ±Infinity (a metric sort's "missing" marker): refused by the cluster.
    newest = api.get("/v1/search", params={"sort": "newest", "size": 2}).json()["next_cursor"]
    forged = _cursor({**_cursor_payload(newest), "after": ["Infinity", "c1"]})
    response = api.get("/v1/search", params={"sort": "newest", "size": 2, "cursor": forged})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "2026-02-30"},
        {"min_duration_s": "inf"},
        {"max_duration_s": "nan"},
        {"min_duration_s": "-1"},
        {"manager_id": "m" * 129},
        {"role": "boss"},
    ],
)
def test_out_of_range_filters_are_400(api: TestClient, params: dict[str, str]) -> None:
    response = api.get("/v1/search", params=params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["detail"]


def test_unknown_and_repeated_parameters_are_refused_by_name(
    api: TestClient, index_calls: Load
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    misspelt = api.get("/v1/search", params={"q": "expensive", "rol": "manager"})
    assert misspelt.status_code == 400
    assert "'rol'" in misspelt.json()["detail"]
    assert "role" in misspelt.json()["detail"]  # the parameters it does take are listed
    repeated = api.get("/v1/search", params=[("q", "expensive"), ("q", "cheap")])
    assert repeated.status_code == 400
    assert "'q'" in repeated.json()["detail"]
    assert api.get("/v1/calls/c1", params={"fields": "all"}).status_code == 400
    assert api.get("/healthz", params={"verbose": "1"}).status_code == 400
    # A parameter that takes several values may repeat.
    metrics = [("metric", "talk_s_client>0"), ("metric", "talk_s_client<1000")]
    assert api.get("/v1/search", params=metrics).status_code == 200


def test_over_long_urls_and_bodies_are_refused_before_any_route(
    settings: Settings, index_calls: Load
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    limited = keyed(settings, max_url_length=300, max_request_body_bytes=100)
    with TestClient(create_app(limited)) as api:
        long_url = api.get("/v1/search", params={"client_id": "c" * 300}, headers=read())
        assert long_url.status_code == 414
        assert "300" in long_url.json()["detail"]
        big_body = api.request(
            "DELETE", "/v1/calls/c1", content=b"x" * 101, headers=read(ADMIN_KEY)
        )
        assert big_body.status_code == 413
        chunked = api.request(
            "DELETE", "/v1/calls/c1", content=iter([b"x"] * 3), headers=read(ADMIN_KEY)
        )
        assert chunked.status_code == 411
        assert api.get("/v1/calls/c1", headers=read()).status_code == 200  # nothing was lost


# --- Elasticsearch that is slow or gone ---------------------------------------------------------


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A TCP address that accepts connections and never answers: a hung Elasticsearch."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://elastic:s3cret-password@127.0.0.1:{port}"


def test_an_elasticsearch_that_does_not_answer_is_a_504(
    settings: Settings, silent_peer: str
) -> None:
    hung = settings.model_copy(
        update={"es_url": silent_peer, "es_request_timeout_s": 0.3, "es_max_retries": 0}
    )
    with TestClient(create_app(hung)) as api:
        search = api.get("/v1/search", params={"q": "price"})
        call = api.get("/v1/calls/c1")
        ready = api.get("/readyz")
    assert search.status_code == 504
    assert "took too long" in search.json()["detail"]
    assert call.status_code == 504
    assert ready.status_code == 503


def test_an_unreachable_elasticsearch_is_a_503_without_its_credentials(
    settings: Settings, closed_port: str
) -> None:
    gone = settings.model_copy(update={"es_url": closed_port, "es_max_retries": 0})
    with TestClient(create_app(gone)) as api:
        search = api.get("/v1/search", params={"q": "price"})
        ready = api.get("/readyz")
    assert search.status_code == 503
    assert "unavailable" in search.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["status"] == "not ready"
    for answer in (search, ready):
        assert "s3cret-password" not in answer.text


# --- Audio ----------------------------------------------------------------------------------------


def _wav(seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(8000)
        recording.writeframes(bytes(range(256)) * int(8000 * 2 * seconds / 256))
    return buffer.getvalue()


SECRET = b"SECRET-OUTSIDE-THE-AUDIO-ROOT"


@pytest.fixture
def audio_root(tmp_path: Path) -> Path:
    """root/ok.wav, root/sub/nested.wav, symlinks in and out; secrets beside the root."""
    root = tmp_path / "recordings"
    (root / "sub").mkdir(parents=True)
    (root / "ok.wav").write_bytes(_wav())
    (root / "sub" / "nested.wav").write_bytes(_wav(0.2))
    (tmp_path / "secret.wav").write_bytes(SECRET)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.wav").write_bytes(SECRET)
    (root / "link-in.wav").symlink_to(root / "ok.wav")
    (root / "link-out.wav").symlink_to(tmp_path / "secret.wav")
    (root / "dir-out").symlink_to(tmp_path / "elsewhere")
    return root


def _with_audio(call_id: str, uri: str) -> Call:
    call = make_call(call_id, [("client", "hello")])
    return call.model_copy(update={"audio": call.audio.model_copy(update={"uri": uri})})


def _audio_uris(root: Path) -> dict[str, tuple[str, int]]:
    """call id → (audio.uri, the status GET /v1/calls/{id}/audio must answer)."""
    outside = root.parent
    return {
        "file-uri": (f"file://{root}/ok.wav", 200),
        "localhost-uri": (f"file://localhost{root}/ok.wav", 200),
        "relative": ("ok.wav", 200),
        "relative-sub": ("sub/nested.wav", 200),
        "absolute-inside": (f"{root}/sub/nested.wav", 200),
        "symlink-inside": ("link-in.wav", 200),
        "dotdot-uri": (f"file://{root}/../secret.wav", 403),
        "dotdot-relative": ("../secret.wav", 403),
        "dotdot-deep": ("sub/../../secret.wav", 403),
        "encoded-dotdot": (f"file://{root}/%2e%2e/secret.wav", 403),
        "encoded-slashes": (f"file://{root}/sub%2f..%2f..%2fsecret.wav", 403),
        "absolute-elsewhere": (str(outside / "secret.wav"), 403),
        "system-file": ("/etc/passwd", 403),
        "symlink-out": ("link-out.wav", 403),
        "symlinked-dir-out": ("dir-out/x.wav", 403),
        "missing-outside": (f"file://{root}/../no-such.wav", 403),
        "http": ("http://127.0.0.1/ok.wav", 403),
        "s3": ("s3://bucket/ok.wav", 403),
        "other-host": (f"file://fileserver{root}/ok.wav", 403),
        "null-byte": (f"file://{root}/ok.wav%00.txt", 403),
        "double-encoded": (f"file://{root}/%252e%252e/secret.wav", 404),
        "missing-inside": ("no-such.wav", 404),
        "the-root-itself": (str(root), 404),
        "empty": ("", 404),
    }


def test_audio_is_served_only_from_inside_the_root(
    settings: Settings, index_calls: Load, audio_root: Path
) -> None:
    cases = _audio_uris(audio_root)
    index_calls(*(_with_audio(call_id, uri) for call_id, (uri, _) in cases.items()))
    with TestClient(create_app(settings.model_copy(update={"audio_root": audio_root}))) as api:
        for call_id, (uri, expected) in cases.items():
            response = api.get(f"/v1/calls/{call_id}/audio")
            assert response.status_code == expected, (call_id, uri, response.text)
            assert SECRET not in response.content, call_id
            if expected == 200:
                assert response.headers["content-type"] == "audio/x-wav"
                assert response.headers["accept-ranges"] == "bytes"
                assert response.content[:4] == b"RIFF"
            else:
                detail = response.json()["detail"]
                assert detail
                assert str(audio_root) not in detail  # no server path in a message
        assert api.get("/v1/calls/file-uri/audio").content == (audio_root / "ok.wav").read_bytes()
        traversal_id = api.get("/v1/calls/..%2F..%2Fetc%2Fpasswd/audio")
        assert traversal_id.status_code == 404


def test_audio_byte_ranges_for_seeking(
    settings: Settings, index_calls: Load, audio_root: Path
) -> None:
    index_calls(_with_audio("c1", "ok.wav"))
    whole = (audio_root / "ok.wav").read_bytes()
    size = len(whole)
    with TestClient(create_app(settings.model_copy(update={"audio_root": audio_root}))) as api:
        part = api.get("/v1/calls/c1/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        assert part.content == whole[100:200]
        tail = api.get("/v1/calls/c1/audio", headers={"Range": "bytes=-10"})
        assert (tail.status_code, tail.content) == (206, whole[-10:])
        two = api.get("/v1/calls/c1/audio", headers={"Range": "bytes=0-9,50-59"})
        assert two.status_code == 206
        assert two.headers["content-type"].startswith("multipart/byteranges")
        past_end = api.get("/v1/calls/c1/audio", headers={"Range": f"bytes={size}-"})
        assert past_end.status_code == 416
        assert past_end.headers["content-range"] == f"bytes */{size}"
        assert "past the end" in past_end.json()["detail"]
        for malformed in ("bytes=abc", "items=0-10", "bytes=20-10"):
            response = api.get("/v1/calls/c1/audio", headers={"Range": malformed})
            assert response.status_code == 400, malformed
            assert "Range" in response.json()["detail"]


def test_audio_needs_a_root_a_call_and_a_key(
    settings: Settings, index_calls: Load, audio_root: Path, api: TestClient
) -> None:
    index_calls(_with_audio("c1", "ok.wav"))
    unconfigured = api.get("/v1/calls/c1/audio")
    assert unconfigured.status_code == 404
    assert unconfigured.json()["detail"] == "audio serving is not configured"
    with TestClient(create_app(keyed(settings, audio_root=audio_root))) as keyed_api:
        assert keyed_api.get("/v1/calls/c1/audio").status_code == 401
        assert keyed_api.get("/v1/calls/c1/audio", headers=read()).status_code == 200
        unknown = keyed_api.get("/v1/calls/nope/audio", headers=read())
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["detail"]


def test_a_signed_audio_url_opens_one_call_until_it_expires(
    settings: Settings, index_calls: Load, audio_root: Path
) -> None:
    index_calls(_with_audio("c1", "ok.wav"), _with_audio("c2", "ok.wav"))
    secret = "a-shared-secret-of-the-api-workers"
    app_settings = keyed(settings, audio_root=audio_root, audio_url_secret=SecretStr(secret))
    with TestClient(create_app(app_settings)) as api:
        assert api.get("/v1/calls/c1/audio-url").status_code == 401
        signed = api.get("/v1/calls/c1/audio-url", headers=read()).json()
        assert signed["expires_at"] - time.time() == pytest.approx(300, abs=5)
        url = signed["url"]
        assert url.startswith("/v1/calls/c1/audio?")
        assert "scope=read" in url
        whole = (audio_root / "ok.wav").read_bytes()
        assert api.get(url).content == whole  # no key: the signature is the permission
        part = api.get(url, headers={"Range": "bytes=0-9"})
        assert (part.status_code, part.content) == (206, whole[:10])
        head = api.head(url)
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(whole)))
        # Another worker with the same secret honours it: nothing is kept per process.
        with TestClient(create_app(app_settings)) as other_worker:
            assert other_worker.get(url).status_code == 200
        query = dict(parse_qsl(urlsplit(url).query))
        expired = UrlSigner(secret.encode(), 300).sign("c1", "read", now=time.time() - 300)
        refusals = {
            "expired": expired.url,
            "other call": url.replace("/c1/", "/c2/"),
            "forged": url.replace(query["sig"], query["sig"][::-1]),
            "longer life": url.replace(f"exp={query['exp']}", f"exp={int(query['exp']) + 999}"),
            "wider scope": url.replace("scope=read", "scope=admin"),
            "no expiry": url.replace(f"exp={query['exp']}&", ""),
            "other secret": UrlSigner(b"another-secret-entirely", 300).sign("c1", "read").url,
        }
        for why, refused in refusals.items():
            response = api.get(refused)
            assert response.status_code == 403, why
            assert query["sig"] not in response.text
        assert "expired" in api.get(expired.url).json()["detail"]
        assert api.get("/v1/calls/nope/audio-url", headers=read()).status_code == 404
    # Without a configured secret each process signs with its own (and says so).
    with TestClient(create_app(keyed(settings, audio_root=audio_root))) as one:
        url = one.get("/v1/calls/c1/audio-url", headers=read()).json()["url"]
        assert one.get(url).status_code == 200
        with TestClient(create_app(keyed(settings, audio_root=audio_root))) as another:
            assert another.get(url).status_code == 403


def test_signatures_are_blanked_in_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/calls/c1/audio?exp=1&scope=read&sig=SECRETSIG", "1.1", 200),
        None,
    )
    install_log_redaction()
    install_log_redaction()  # once per process, however many apps are made
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, RedactSignatures) for f in access.filters) == 1
    assert RedactSignatures().filter(record)
    message = record.getMessage()
    assert "SECRETSIG" not in message
    assert "/v1/calls/c1/audio?exp=1&scope=read&sig=<redacted>" in message


# --- CORS -----------------------------------------------------------------------------------------


def _preflight(api: TestClient, origin: str) -> httpx.Response:
    response: httpx.Response = api.options(
        "/v1/search",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key",
        },
    )
    return response


def test_cors_preflight_allows_only_configured_origins(
    settings: Settings, index_calls: Load
) -> None:
    index_calls(make_call("c1", [("client", "too expensive")]))
    app = create_app(keyed(settings, cors_origins=[ALLOWED_ORIGIN]))
    with TestClient(app) as api:
        allowed = _preflight(api, ALLOWED_ORIGIN)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
        refused = _preflight(api, "https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        answer = api.get("/v1/search", headers={"Origin": ALLOWED_ORIGIN, **read()})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        # A refusal carries the header too, so the page can show the message.
        no_key = api.get("/v1/search", headers={"Origin": ALLOWED_ORIGIN})
        assert no_key.status_code == 401
        assert no_key.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        other = api.get("/v1/search", headers={"Origin": "https://evil.example", **read()})
        assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_no_origin_is_allowed(api: TestClient) -> None:
    response = _preflight(api, ALLOWED_ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    answer = api.get("/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert "access-control-allow-origin" not in answer.headers


# --- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_declares_every_error_with_the_problem_body(settings: Settings) -> None:
    spec = TestClient(create_app(keyed(settings))).get("/openapi.json", headers=read()).json()
    assert "ApiKeyHeader" in spec["components"]["securitySchemes"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            assert "400" in responses, (method, path)
            if path in OPEN_PATHS:
                assert "security" not in operation
                continue
            assert {"401", "503", "504"} <= set(responses), (method, path)
            if method != "get":
                assert "403" in responses, (method, path)
            problem = responses["401"]["content"]["application/json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
    search = {p["name"]: p for p in spec["paths"]["/v1/search"]["get"]["parameters"]}
    assert search["size"]["schema"]["maximum"] == settings.max_page_size


# --- helpers --------------------------------------------------------------------------------------


class running_server:  # noqa: N801 - used as a context manager, like open()
    """A real uvicorn serving ``app`` on a free loopback port, in a thread; logging left to
    the test (no uvicorn log config), so caplog sees the access log."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_config=None, access_log=True, log_level="debug")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()
