"""An LLM as a scorer, through the ``openai`` client and any OpenAI-compatible server.

One chat completion per text (in parallel, bounded), asking for a JSON object with a score in [0, 1] for each
requested attribute, defined as in the paper's Table S12. A reply is used only if it is a JSON object holding a
valid score for every requested attribute; anything else (bad JSON, a missing or out-of-range score, an HTTP error,
a timeout) leaves that one text unscored. Too slow for the 500 ms hot path with a remote model: meant for a local
server, for the scorer processes with the cache in front, or for labelling a training set (``train_scorer``).

At most ``concurrency`` requests are in flight per process. Every call's tokens (from the reply's ``usage``) and
cost (``usage.call_cost`` at the configured prices) add up in ``self.usage``; after each ``score`` the batch's
usage goes to ``on_usage`` (by default ``usage.record_usage``: the day's ``ScorerUsage`` row).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rankers.scoring import usage as accounting
from rankers.scoring.attributes import DEFINITIONS, PAPER_NAMES, canonical_name
from rankers.scoring.backends.base import Scores, map_within, unit_interval

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You rate social media posts for rhetorical attributes. For each attribute, give the probability in [0, 1] "
    "that a careful human rater would say the post shows it. Reply with one JSON object mapping each attribute "
    "key to a number, and nothing else."
)


def build_prompt(text: str, attributes: Sequence[str]) -> str:
    lines = [f"- {a} ({PAPER_NAMES.get(a, a)}): {DEFINITIONS.get(a, '')}" for a in attributes]
    return "Attributes:\n" + "\n".join(lines) + f"\n\nPost:\n<<<\n{text}\n>>>"


def parse_reply(content: str | None, attributes: Sequence[str]) -> Scores | None:
    """The scores in an LLM reply, or None unless every requested attribute has a valid score."""
    if not content:
        return None
    body = content.strip()
    if body.startswith("```"):  # some models fence JSON even when asked not to
        body = body.strip("`").removeprefix("json").strip()
    try:
        raw = json.loads(body)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    by_name = {canonical_name(str(k)): v for k, v in raw.items()}
    scores: Scores = {}
    for attribute in attributes:
        number = unit_interval(by_name.get(attribute))
        if number is None:
            return None
        scores[attribute] = number
    return scores


class LLMBackend:
    concurrent = True  # up to PRC_SCORER_CONCURRENCY requests at once: a batch goes in one call

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str = "not-needed",
        timeout_s: float = 5.0,
        concurrency: int = 8,
        deadline_s: float | None = None,
        http_client: Any = None,
        prices: accounting.Prices | None = None,
        on_usage: Callable[[str, accounting.Usage], None] | None = None,
    ) -> None:
        from openai import OpenAI

        self.model = model
        self.name = f"llm:{model}"
        self.concurrency = max(1, concurrency)
        self.deadline_s = deadline_s if deadline_s is not None else 2 * timeout_s
        self.prices = prices or accounting.Prices()
        self.usage = accounting.Usage()  # since this backend was built
        self._batch_usage = accounting.Usage()  # since the last on_usage
        self.on_usage = on_usage
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="llm-scorer")
        self.client = OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0, http_client=http_client
        )

    def _score_one(self, text: str, attributes: Sequence[str]) -> Scores | None:
        try:
            completion = self.client.chat.completions.create(
                model=self.model,
                temperature=0,
                response_format={"type": "json_object"},
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": build_prompt(text, attributes)},
                ],
            )
            content = completion.choices[0].message.content
        except Exception as exc:
            logger.warning("LLM scoring request failed: %s", type(exc).__name__)
            self._count(None, ok=False)
            return None
        scores = parse_reply(content, attributes)
        if scores is None:
            logger.warning("LLM reply was not a valid score object; text left unscored")
        self._count(completion.usage, ok=scores is not None)  # an invalid reply still costs its tokens
        return scores

    def _count(self, reply_usage: Any, ok: bool) -> None:
        prompt = int(getattr(reply_usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(reply_usage, "completion_tokens", 0) or 0)
        cost = accounting.call_cost(prompt, completion, self.prices)
        logger.debug("LLM call: %d prompt + %d completion tokens, cost %.6f", prompt, completion, cost)
        for total in (self.usage, self._batch_usage):
            total.add(prompt_tokens=prompt, completion_tokens=completion, cost=cost, ok=ok)

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        results = map_within(self._pool, lambda text: self._score_one(text, attributes), texts, self.deadline_s)
        if self.on_usage is not None:
            # Calls still running past the deadline are counted with the next batch.
            self.on_usage(self.name, self._batch_usage.take())
        return results
