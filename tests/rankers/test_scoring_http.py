"""The Perspective-compatible HTTP backend against a fake Perspective server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends import ScorerUnavailable, build_backend
from rankers.scoring.backends.perspective_http import PerspectiveHTTPBackend
from tests.fake_http import serving

REQUESTS: list[dict[str, object]] = []
# "slow" is answered only once this is set (after each test): a result without it means the client gave up.
RELEASE_SLOW = threading.Event()


def fake_perspective(path: str, body: bytes) -> tuple[int, bytes]:
    """Scores 0.9 for text with "idiot" in it, else 0.1; "slow", "fail" and "garbled" misbehave as named."""
    request = json.loads(body)
    REQUESTS.append(request)
    text = request["comment"]["text"]
    if text == "slow":
        RELEASE_SLOW.wait(timeout=10)  # shorter than any timeout "not under test"
    if text == "fail":
        return 500, b'{"error": "internal"}'
    if text == "garbled":
        return 200, b"<html>not json</html>"
    value = 0.9 if "idiot" in text else 0.1
    scores = {
        name: {"summaryScore": {"value": value, "type": "PROBABILITY"}} for name in request["requestedAttributes"]
    }
    return 200, json.dumps({"attributeScores": scores, "languages": ["en"]}).encode()


@pytest.fixture(scope="module")
def perspective_url() -> Iterator[str]:
    with serving(fake_perspective) as url:
        yield f"{url}/v1alpha1/comments:analyze"


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    REQUESTS.clear()
    RELEASE_SLOW.clear()
    configure()
    yield
    RELEASE_SLOW.set()
    configure()


def test_http_backend_scores_through_a_perspective_compatible_server(settings: object, perspective_url: str) -> None:
    settings.PRC_SCORER_BACKEND = "http"  # type: ignore[attr-defined]
    settings.PRC_SCORER_HTTP_URL = perspective_url  # type: ignore[attr-defined]
    settings.PRC_SCORER_DEADLINE_S = settings.PRC_SCORER_TIMEOUT_S = 30.0  # type: ignore[attr-defined]  # not tested here

    scores = score_items([SlateItem("kind", "thanks"), SlateItem("rude", "idiot")], [A.REASONING, A.TOXICITY])

    assert scores == {
        "kind": {A.REASONING: 0.1, A.TOXICITY: 0.1},
        "rude": {A.REASONING: 0.9, A.TOXICITY: 0.9},
    }
    assert {tuple(sorted(r["requestedAttributes"])) for r in REQUESTS} == {  # type: ignore[arg-type]
        ("REASONING_EXPERIMENTAL", "TOXICITY")
    }
    assert all(r["languages"] == ["en"] for r in REQUESTS)  # as the PRC's ranker sent


def test_http_backend_can_request_plain_attribute_names(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, perspective_names=False)

    assert backend.score(["x"], [A.GENERALIZATION]) == [{A.GENERALIZATION: 0.1}]
    assert list(REQUESTS[0]["requestedAttributes"]) == ["GENERALIZATION"]  # type: ignore[call-overload]


def test_http_backend_leaves_failed_and_garbled_items_unscored(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, timeout_s=30, deadline_s=30)  # not under test: wide

    assert backend.score(["fine", "fail", "garbled"], [A.TOXICITY]) == [{A.TOXICITY: 0.1}, None, None]


def test_http_backend_gives_up_on_a_slow_answer_at_its_request_timeout(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, timeout_s=0.2, deadline_s=30)

    assert backend.score(["slow"], [A.TOXICITY]) == [None]
    assert not RELEASE_SLOW.is_set()  # the server had not answered


def test_http_backend_gives_up_on_a_slow_answer_at_its_deadline(perspective_url: str) -> None:
    backend = PerspectiveHTTPBackend(perspective_url, timeout_s=30, deadline_s=0.3)

    assert backend.score(["slow", "slow"], [A.TOXICITY]) == [None, None]
    assert not RELEASE_SLOW.is_set()


def test_http_backend_with_nothing_listening_leaves_items_unscored() -> None:
    backend = PerspectiveHTTPBackend("http://127.0.0.1:9/analyze", timeout_s=0.2)

    assert backend.score(["a", "b"], [A.TOXICITY]) == [None, None]


def test_an_http_backend_without_a_url_is_not_built(settings: object) -> None:
    settings.PRC_SCORER_HTTP_URL = ""  # type: ignore[attr-defined]

    with pytest.raises(ScorerUnavailable, match="needs PRC_SCORER_HTTP_URL"):
        build_backend("http", settings)
