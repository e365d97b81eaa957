"""The LLM backend through the real openai client, against an httpx2 MockTransport or a loopback chat server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx2
import pytest

from rankers.models import ScorerUsage
from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends import build_backend
from rankers.scoring.backends.llm import LLMBackend, parse_reply
from rankers.scoring.usage import Prices, Usage, call_cost
from tests.fake_http import serving

ATTRIBUTES = [A.REASONING, A.TOXICITY]


def completion(content: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


def post_text(request: httpx2.Request) -> str:
    prompt = json.loads(request.content)["messages"][-1]["content"]
    return prompt.split("<<<\n", 1)[1].split("\n>>>", 1)[0]


def fake_llm(request: httpx2.Request) -> httpx2.Response:
    text = post_text(request)
    if text == "server error":
        return httpx2.Response(500, json={"error": {"message": "boom"}})
    if text == "bad json":
        return httpx2.Response(200, json=completion("sure! reasoning: high"))
    if text == "out of range":
        return httpx2.Response(200, json=completion('{"REASONING": 1.7, "TOXICITY": 0.1}'))
    toxic = 0.9 if "idiot" in text else 0.05
    return httpx2.Response(200, json=completion(json.dumps({"reasoning": 0.6, "TOXICITY_EXPERIMENTAL": toxic})))


def backend(handler: Callable[[httpx2.Request], httpx2.Response]) -> LLMBackend:
    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return LLMBackend(model="fake-model", base_url="http://llm.test/v1", api_key="k", http_client=client)


@pytest.fixture(autouse=True)
def fresh_scorer() -> Iterator[None]:
    yield
    configure()


def test_llm_backend_returns_the_model_scores_and_leaves_bad_replies_unscored() -> None:
    configure(backend=backend(fake_llm))
    items = [
        SlateItem("kind", "a thoughtful post"),
        SlateItem("rude", "you idiot"),
        SlateItem("garbled", "bad json"),
        SlateItem("wild", "out of range"),
        SlateItem("down", "server error"),
    ]

    scores = score_items(items, ATTRIBUTES)

    assert scores == {
        "kind": {A.REASONING: 0.6, A.TOXICITY: 0.05},
        "rude": {A.REASONING: 0.6, A.TOXICITY: 0.9},
    }


def test_llm_backend_sends_the_configured_model_and_a_json_request() -> None:
    seen: list[dict[str, object]] = []

    def recording(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        return fake_llm(request)

    backend(recording).score(["hello"], ATTRIBUTES)

    assert seen[0]["model"] == "fake-model"
    assert seen[0]["response_format"] == {"type": "json_object"}
    assert "Reasoning" in str(seen[0]["messages"])


def test_llm_backend_leaves_everything_unscored_when_the_server_is_down() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    assert backend(refuse).score(["a", "b"], ATTRIBUTES) == [None, None]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"REASONING": 0.5, "TOXICITY": 0}', {A.REASONING: 0.5, A.TOXICITY: 0.0}),
        ('```json\n{"Reasoning": 1, "toxicity": 0.25}\n```', {A.REASONING: 1.0, A.TOXICITY: 0.25}),
        ('{"REASONING": 0.5}', None),
        ('{"REASONING": "0.5", "TOXICITY": 0.1}', None),
        ('{"REASONING": true, "TOXICITY": 0.1}', None),
        ("[0.5, 0.1]", None),
        ("", None),
        (None, None),
    ],
)
def test_llm_replies_are_validated(reply: str | None, expected: dict[str, float] | None) -> None:
    assert parse_reply(reply, ATTRIBUTES) == expected


def test_the_llm_backend_is_built_from_settings(settings: object) -> None:
    from rankers.scoring import get_backend

    settings.PRC_SCORER_BACKEND = "llm"  # type: ignore[attr-defined]
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    settings.PRC_LLM_MODEL = "local-model"  # type: ignore[attr-defined]
    configure()

    built = get_backend()

    assert isinstance(built, LLMBackend)
    assert built.name == "llm:local-model"
    assert str(built.client.base_url).startswith("http://127.0.0.1:9/v1")
    # Nothing listens there: the items stay unscored, and nothing raises.
    assert score_items([SlateItem("a", "text")], ATTRIBUTES) == {}


class LoopbackLLM:
    """An OpenAI-compatible chat server on loopback: answers like ``fake_llm``, with token usage, and counts
    the requests in flight (each is held until ``release`` is set, or answered at once when it is already set)."""

    PROMPT_TOKENS, COMPLETION_TOKENS = 120, 15

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.release = threading.Event()
        self.release.set()

    def handle(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert path == "/v1/chat/completions"
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.release.wait(timeout=10)
            request = json.loads(body)
            text = request["messages"][-1]["content"].split("<<<\n", 1)[1].split("\n>>>", 1)[0]
            content = "not json" if text == "bad json" else json.dumps({"REASONING": 0.6, "TOXICITY": 0.05})
            reply = completion(content) | {
                "usage": {
                    "prompt_tokens": self.PROMPT_TOKENS,
                    "completion_tokens": self.COMPLETION_TOKENS,
                    "total_tokens": self.PROMPT_TOKENS + self.COMPLETION_TOKENS,
                }
            }
            return 200, json.dumps(reply).encode()
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def loopback_llm() -> Iterator[tuple[LoopbackLLM, str]]:
    server = LoopbackLLM()
    with serving(server.handle) as url:
        yield server, f"{url}/v1"
    server.release.set()


def test_llm_backend_counts_the_tokens_and_cost_of_every_call_including_invalid_replies(
    loopback_llm: tuple[LoopbackLLM, str],
) -> None:
    _, url = loopback_llm
    batches: list[tuple[str, Usage]] = []
    prices = Prices(prompt_per_1k=0.5, completion_per_1k=2.0)
    llm = LLMBackend(
        model="m", base_url=url, timeout_s=10, deadline_s=10, prices=prices, on_usage=lambda *b: batches.append(b)
    )

    scores = llm.score(["a post", "bad json", "another post"], ATTRIBUTES)

    assert scores == [{A.REASONING: 0.6, A.TOXICITY: 0.05}, None, {A.REASONING: 0.6, A.TOXICITY: 0.05}]
    # Each call: 120 prompt tokens at 0.5 per 1k plus 15 completion tokens at 2.0 per 1k = 0.06 + 0.03.
    assert llm.usage.calls == 3
    assert llm.usage.failed_calls == 1
    assert (llm.usage.prompt_tokens, llm.usage.completion_tokens) == (360, 45)
    assert llm.usage.cost == pytest.approx(3 * 0.09)
    assert [(name, usage.calls, round(usage.cost, 6)) for name, usage in batches] == [("llm:m", 3, 0.27)]


def test_llm_backend_never_has_more_requests_in_flight_than_its_concurrency(
    loopback_llm: tuple[LoopbackLLM, str],
) -> None:
    server, url = loopback_llm
    server.release.clear()
    llm = LLMBackend(model="m", base_url=url, timeout_s=10, deadline_s=10, concurrency=3)
    threading.Timer(0.3, server.release.set).start()  # let the pool fill up first

    scores = llm.score([f"post {i}" for i in range(9)], ATTRIBUTES)

    assert all(s is not None for s in scores)
    assert server.most_in_flight == 3


@pytest.mark.django_db
def test_llm_usage_built_from_settings_adds_up_per_day_in_the_database(
    settings: object, loopback_llm: tuple[LoopbackLLM, str]
) -> None:
    _, url = loopback_llm
    settings.OPENAI_BASE_URL = url  # type: ignore[attr-defined]
    settings.PRC_LLM_MODEL = "local-model"  # type: ignore[attr-defined]
    settings.PRC_SCORER_TIMEOUT_S = settings.PRC_SCORER_DEADLINE_S = 10.0  # type: ignore[attr-defined]
    settings.PRC_LLM_PRICE_PROMPT_PER_1K = 1.0  # type: ignore[attr-defined]
    settings.PRC_LLM_PRICE_COMPLETION_PER_1K = 4.0  # type: ignore[attr-defined]
    llm = build_backend("llm", settings)

    llm.score(["one", "two"], ATTRIBUTES)
    llm.score(["bad json"], ATTRIBUTES)

    row = ScorerUsage.objects.get(backend="llm:local-model")
    assert (row.calls, row.failed_calls, row.prompt_tokens, row.completion_tokens) == (3, 1, 360, 45)
    assert row.cost == Decimal("0.540000")  # 3 x (120 x 1.0 + 15 x 4.0) / 1000


@pytest.mark.parametrize(
    ("prompt", "completion_tokens", "prices", "expected"),
    [
        (1000, 0, Prices(0.15, 0.6), 0.15),
        (0, 1000, Prices(0.15, 0.6), 0.6),
        (2500, 500, Prices(0.15, 0.6), 0.375 + 0.3),
        (2500, 500, Prices(), 0.0),
    ],
)
def test_a_call_costs_its_tokens_at_the_price_per_thousand(
    prompt: int, completion_tokens: int, prices: Prices, expected: float
) -> None:
    assert call_cost(prompt, completion_tokens, prices) == pytest.approx(expected)
