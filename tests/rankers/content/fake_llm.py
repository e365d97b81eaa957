"""An OpenAI-compatible chat server on loopback for the LLM annotator, answering by what the post says."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rankers.content.annotation import ISSUES, QUALITY_FLAGS
from tests.fake_http import serving


def valid_annotation(**changes: Any) -> dict[str, Any]:
    """A reply every field of which is valid; ``changes`` override (a value of ``...`` drops the field)."""
    reply: dict[str, Any] = {
        "explanation": "A senator praises a bill from the other party.",
        "tone": "Measured.",
        "ideological_analysis": "Broad appeal.",
        **{flag: False for flag in QUALITY_FLAGS},
        "has_enough_context": True,
        "is_political_social": True,
        "is_ideologically_surprising": True,
        "political_orientation": 5,
        **{f"opinion_{issue}": None for issue in ISSUES},
        "opinion_climate": 4,
        "is_bridging": True,
        "approval_republican": 4,
        "approval_democrat": 3.5,
        "national_interest": True,
    }
    reply.update(changes)
    return {key: value for key, value in reply.items() if value is not ...}


def completion(content: str, prompt_tokens: int = 1000, completion_tokens: int = 200) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": "fake-annotator",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()


def post_of(prompt: str) -> str:
    """The post the annotator put at the end of its prompt, between the last pair of fences."""
    return prompt.rsplit("```\n", 1)[-1].rsplit("\n```", 1)[0]


class FakeLLM:
    """Answers each chat request with ``answer(post, attempt)`` -> (status, body); counts requests per post.

    ``release`` ends any held (slow) answer at teardown."""

    def __init__(self, answer: Callable[[str, int], tuple[int, bytes]]) -> None:
        self.answer = answer
        self.requests: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def handle(self, path: str, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        post = post_of(request["messages"][-1]["content"])
        with self._lock:
            self.bodies.append(request)
            self.requests[post] = self.requests.get(post, 0) + 1
            attempt = self.requests[post]
        return self.answer(post, attempt)

    def hold(self, seconds: float) -> None:
        """Wait before answering (a slow server); returns early at teardown."""
        self.release.wait(seconds)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@contextmanager
def fake_llm(answer: Callable[[str, int], tuple[int, bytes]]) -> Iterator[tuple[FakeLLM, str]]:
    """A running fake and its ``/v1`` base URL."""
    fake = FakeLLM(answer)
    with serving(fake.handle) as url:
        try:
            yield fake, f"{url}/v1"
        finally:
            fake.release.set()
