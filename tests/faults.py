"""A fault-injecting HTTP proxy in front of the real Elasticsearch (stdlib threads only).

Requests pass through to the node unchanged unless a fault is armed; each fault fires for the
next ``times`` matching requests, then the proxy is transparent again. The node itself stays
real: a bulk with per-item failures is really sent, and only the items the fault picks are
answered as refused (so a retried item lands for real); a ``timed_out`` search is really run and
only its flag is set.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

# stall: the request waits stall_s before it is sent on; late: it is sent on at once and its
# answer waits stall_s (the node did the work, the client gave up waiting); hang_up: the answer
# is sent whole, then the connection is closed without a word (as by a node restarted between
# two requests: the client's idle connection is dead).
FaultKind = Literal[
    "bulk_item_status", "stall", "late", "drop", "search_timed_out", "status", "hang_up"
]


@dataclass
class Fault:
    kind: FaultKind
    path_part: str | tuple[str, ...]  # the fault applies to requests whose path contains it
    times: int  # how many matching requests it hits
    status: int = 429  # bulk_item_status / status
    stall_s: float = 0.0


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # "METHOD path", every request
    fired: list[str] = field(default_factory=list)  # "kind path", every fault that fired
    hung_up: threading.Event = field(default_factory=threading.Event)  # a hang_up has closed
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def arm(
        self, kind: FaultKind, path_part: str | tuple[str, ...], times: int = 1, **options: Any
    ) -> None:
        with self._lock:
            self.faults.append(Fault(kind, path_part, times, **options))

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                parts = (fault.path_part,) if isinstance(fault.path_part, str) else fault.path_part
                if any(part in path for part in parts) and fault.times > 0:
                    fault.times -= 1
                    self.fired.append(f"{fault.kind} {path}")
                    return fault
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    proxy.seen.append(f"{self.command} {self.path}")
                fault = proxy._take(self.path)
                if fault is not None and fault.kind == "drop":
                    # Close without an answer: the client sees the connection reset.
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "stall":
                    time.sleep(fault.stall_s)
                if fault is not None and fault.kind == "status":
                    self._answer(fault.status, {"error": {"type": "injected", "reason": "fault"}})
                    return
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command
                )
                for name in ("Content-Type", "Accept"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with urllib.request.urlopen(request, timeout=120) as answer:
                        status, payload = answer.status, answer.read()
                        content_type = answer.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                    content_type = error.headers.get("Content-Type", "application/json")
                if fault is not None and fault.kind == "late":
                    time.sleep(fault.stall_s)
                if fault is not None and fault.kind in {"bulk_item_status", "search_timed_out"}:
                    document = json.loads(payload)
                    if fault.kind == "search_timed_out":
                        # A _msearch: each of its searches timed out.
                        for search in document.get("responses", [document]):
                            search["timed_out"] = True
                    else:
                        # Every other item refused: those landed for real are overwritten on
                        # the retry (same id), those refused land then.
                        for number, item in enumerate(document.get("items", [])):
                            if number % 2 == 0:
                                outcome = next(iter(item.values()))
                                outcome["status"] = fault.status
                                outcome["error"] = {"type": "injected", "reason": "fault"}
                        document["errors"] = True
                    self._answer(status, document)
                    return
                self._raw(status, payload, content_type)
                if fault is not None and fault.kind == "hang_up":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    proxy.hung_up.set()

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                self._raw(status, json.dumps(document).encode(), "application/json")

            def _raw(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
