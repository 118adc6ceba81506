"""scripts/kibana-import against a small local HTTP server that answers like Kibana does.

This tests OUR script — that it waits for Kibana, sends the repo's objects the way the saved
objects import API expects (multipart `file`, `overwrite=true`, the `kbn-xsrf` header), reads
Kibana's answer body and names every object that did not land — not Kibana itself, which cannot
run here. The answers the server gives follow Kibana's documented import response: `success`,
`successCount`, `successResults`, and `errors` entries with `type`, `id`, `meta.title` and an
`error` of type missing_references, conflict, unsupported_type or unknown.
"""

from __future__ import annotations

import email
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from indexer.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "kibana-import"
OBJECTS_FILE = PROJECT_ROOT / "kibana" / "earshot.ndjson"
AVAILABLE = {"status": {"overall": {"level": "available"}}}


@dataclass
class FakeKibana:
    """What the server answers, and what it was sent."""

    not_ready_answers: int = 0  # GET /api/status answers 503 this many times first
    never_ready: bool = False
    import_status: int = 200
    import_body: bytes = b"{}"
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def imports(self) -> list[tuple[str, dict[str, str], bytes]]:
        return [
            (path, headers, body) for verb, path, headers, body in self.requests if verb == "POST"
        ]


def objects_in_repo() -> list[dict[str, Any]]:
    lines = OBJECTS_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def import_answer(
    errors: list[dict[str, Any]] | None = None, left_out: set[str] | None = None
) -> bytes:
    """Kibana's import answer: every object not in `errors` or `left_out` listed as imported."""
    errors = errors or []
    failed = {error["id"] for error in errors} | (left_out or set())
    landed = [
        {"type": obj["type"], "id": obj["id"], "meta": {"title": obj["attributes"]["title"]}}
        for obj in objects_in_repo()
        if obj["id"] not in failed
    ]
    answer = {"success": not errors, "successCount": len(landed), "successResults": landed}
    if errors:
        answer["errors"] = errors
    return json.dumps(answer).encode()


def lowered(headers: Any) -> dict[str, str]:
    """Header names are case-insensitive (urllib sends "Kbn-xsrf"): compare them lower-cased."""
    return {name.lower(): value for name, value in headers}


def serve(kibana: FakeKibana) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            kibana.requests.append(("GET", self.path, lowered(self.headers.items()), b""))
            if self.path != "/api/status":
                self.answer(404, b'{"statusCode":404}')
            elif kibana.never_ready or kibana.not_ready_answers > 0:
                kibana.not_ready_answers -= 1
                self.answer(503, b"Kibana server is not ready yet")
            else:
                self.answer(200, json.dumps(AVAILABLE).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            kibana.requests.append(("POST", self.path, lowered(self.headers.items()), body))
            self.answer(kibana.import_status, kibana.import_body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kibana() -> FakeKibana:
    return FakeKibana()


@pytest.fixture
def kibana_url(kibana: FakeKibana) -> Iterator[str]:
    yield from serve(kibana)


def run_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def uploaded_file(headers: dict[str, str], body: bytes) -> Message:
    message = email.message_from_bytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
    )
    parts = message.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == 1, "one multipart field: the file"
    assert isinstance(parts[0], Message)
    return parts[0]


def test_waits_for_kibana_then_imports_every_object(kibana: FakeKibana, kibana_url: str) -> None:
    kibana.not_ready_answers = 2
    kibana.import_body = import_answer()

    result = run_import(kibana_url, "--wait-s", "30")

    assert result.returncode == 0, result.stderr
    assert f"imported {len(objects_in_repo())} objects" in result.stderr
    statuses = [r for r in kibana.requests if r[0] == "GET"]
    assert len(statuses) == 3  # two "not ready yet", then available
    ((path, headers, body),) = kibana.imports()
    assert path == "/api/saved_objects/_import?overwrite=true"
    assert headers["kbn-xsrf"]
    part = uploaded_file(headers, body)
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename() == "earshot.ndjson"
    sent = part.get_payload(decode=True)
    assert isinstance(sent, bytes)
    assert sent.decode("utf-8").splitlines() == OBJECTS_FILE.read_text("utf-8").splitlines()


def test_names_each_object_kibana_refused(kibana: FakeKibana, kibana_url: str) -> None:
    kibana.import_body = import_answer(
        errors=[
            {
                "type": "dashboard",
                "id": "earshot-overview",
                "meta": {"title": "Earshot: calls overview"},
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "lens", "id": "earshot-talk-ratio"}],
                },
            },
            {
                "type": "index-pattern",
                "id": "earshot-calls",
                "meta": {"title": "calls"},
                "error": {"type": "unknown", "message": "mapper exception", "statusCode": 500},
            },
        ]
    )

    result = run_import(kibana_url, "--wait-s", "10")

    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: dashboard/earshot-overview (Earshot: calls overview): "
        "missing_references: lens/earshot-talk-ratio",
        "error: index-pattern/earshot-calls (calls): unknown: mapper exception",
    ]


def test_an_object_missing_from_the_answer_is_a_failure(
    kibana: FakeKibana, kibana_url: str
) -> None:
    kibana.import_body = import_answer(left_out={"earshot-client-objections"})

    result = run_import(kibana_url, "--wait-s", "10")

    assert result.returncode == 1
    assert "search/earshot-client-objections (Client objections: price): not in" in result.stderr


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"statusCode":400,"error":"Bad Request","message":"Invalid file extension .txt"}',
            "HTTP 400: Invalid file extension .txt",
        ),
        (200, b"<html>proxy error</html>", "not JSON"),
        (
            200,
            b'{"success": false, "successCount": 0}',
            "dashboard/earshot-overview (Earshot: calls overview): not in Kibana's list",
        ),
    ],
)
def test_an_answer_that_is_not_a_success_fails(
    kibana: FakeKibana, kibana_url: str, status: int, body: bytes, expected: str
) -> None:
    kibana.import_status, kibana.import_body = status, body

    result = run_import(kibana_url, "--wait-s", "10")

    assert result.returncode == 1
    assert expected in result.stderr


def test_gives_up_on_a_kibana_that_never_becomes_available(
    kibana: FakeKibana, kibana_url: str
) -> None:
    kibana.never_ready = True

    result = run_import(kibana_url, "--wait-s", "2")

    assert result.returncode == 2
    assert "not available after 2 s (HTTP 503)" in result.stderr
    assert kibana.imports() == []


def test_gives_up_on_an_unreachable_kibana() -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run_import(f"http://127.0.0.1:{port}", "--wait-s", "1")

    assert result.returncode == 2
    assert f"Kibana at http://127.0.0.1:{port} not available after 1 s" in result.stderr


def test_a_broken_objects_file_is_named_and_nothing_is_sent(
    kibana: FakeKibana, kibana_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.ndjson"
    broken.write_text('{"type":"index-pattern","id":"x","attributes":{}}\n{"type": oops\n')

    result = run_import(kibana_url, "--file", str(broken), "--wait-s", "5")

    assert result.returncode == 2
    assert f"{broken}:2: not JSON" in result.stderr
    assert kibana.requests == []
