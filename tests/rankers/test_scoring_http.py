"""The Perspective-compatible HTTP backend against a fake Perspective server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends.perspective_http import PerspectiveHTTPBackend

REQUESTS: list[dict[str, object]] = []


class FakePerspective(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        REQUESTS.append(body)
        text = body["comment"]["text"]
        if text == "slow":
            time.sleep(1.0)
        if text == "fail":
            self._send(500, b'{"error": "internal"}')
            return
        if text == "garbled":
            self._send(200, b"<html>not json</html>")
            return
        value = 0.9 if "idiot" in text else 0.1
        scores = {
            name: {"summaryScore": {"value": value, "type": "PROBABILITY"}} for name in body["requestedAttributes"]
        }
        self._send(200, json.dumps({"attributeScores": scores, "languages": ["en"]}).encode())

    def _send(self, status: int, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout tests)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def perspective_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePerspective)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1alpha1/comments:analyze"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    REQUESTS.clear()
    configure()
    yield
    configure()


def test_http_backend_scores_through_a_perspective_compatible_server(settings: object, perspective_url: str) -> None:
    settings.PRC_SCORER_BACKEND = "http"  # type: ignore[attr-defined]
    settings.PRC_SCORER_HTTP_URL = perspective_url  # type: ignore[attr-defined]

    scores = score_items([SlateItem("kind", "thanks"), SlateItem("rude", "idiot")], [A.REASONING, A.TOXICITY])

    assert scores == {
        "kind": {A.REASONING: 0.1, A.TOXICITY: 0.1},
        "rude": {A.REASONING: 0.9, A.TOXICITY: 0.9},
    }
    assert {tuple(sorted(r["requestedAttributes"])) for r in REQUESTS} == {  # type: ignore[arg-type]
        ("REASONING_EXPERIMENTAL", "TOXICITY")
    }


def test_http_backend_can_request_plain_attribute_names(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, perspective_names=False)

    assert backend.score(["x"], [A.GENERALIZATION]) == [{A.GENERALIZATION: 0.1}]
    assert list(REQUESTS[0]["requestedAttributes"]) == ["GENERALIZATION"]  # type: ignore[call-overload]


def test_http_backend_leaves_failed_and_slow_items_unscored_within_its_deadline(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, timeout_s=0.2, deadline_s=0.3)

    started = time.perf_counter()
    results = backend.score(["fine", "fail", "garbled", "slow"], [A.TOXICITY])
    elapsed = time.perf_counter() - started

    assert results == [{A.TOXICITY: 0.1}, None, None, None]
    assert elapsed < 0.8


def test_http_backend_with_nothing_listening_leaves_items_unscored() -> None:
    backend = PerspectiveHTTPBackend("http://127.0.0.1:9/analyze", timeout_s=0.2)

    assert backend.score(["a", "b"], [A.TOXICITY]) == [None, None]
