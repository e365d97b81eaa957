"""The LLM backend through the real openai client, with the server faked by an httpx2 MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx2
import pytest

from rankers.plugins.base import SlateItem
from rankers.scoring import attributes as A
from rankers.scoring import configure, score_items
from rankers.scoring.backends.llm import LLMBackend, parse_reply

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
