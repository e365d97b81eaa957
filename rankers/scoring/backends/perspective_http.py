"""Any HTTP service speaking Perspective API's ``comments:analyze`` format, as a scorer.

Request: ``POST {"comment": {"text": ...}, "languages": ["en"], "requestedAttributes": {NAME: {}, ...}}``; response:
``{"attributeScores": {NAME: {"summaryScore": {"value": 0.42}}}}``. With ``perspective_names`` the experimental
attributes are requested as Perspective names them (``REASONING_EXPERIMENTAL``); without it, by our plain names.
Either spelling is accepted in the response. One request per text, in parallel over one keep-alive client; a
non-2xx answer, bad JSON or a timeout leaves that text unscored. Perspective itself shuts down at the end of 2026:
this backend is for compatible replacements.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from rankers.scoring.attributes import canonical_name, perspective_name
from rankers.scoring.backends.base import ScorerUnavailable, Scores, map_within, unit_interval

logger = logging.getLogger(__name__)


def build_request(text: str, attributes: Sequence[str], perspective_names: bool) -> dict[str, Any]:
    names = [perspective_name(a) if perspective_names else a for a in attributes]
    # Perspective guesses the language when none is given and refuses the experimental attributes for some
    # guesses; the PRC's ranker always said English.
    return {"comment": {"text": text}, "languages": ["en"], "requestedAttributes": {name: {} for name in names}}


def parse_response(body: Any, attributes: Sequence[str]) -> Scores | None:
    """Scores for the requested attributes found in a Perspective-format body; None when there are none."""
    if not isinstance(body, dict) or not isinstance(body.get("attributeScores"), dict):
        return None
    wanted = set(attributes)
    scores: Scores = {}
    for name, detail in body["attributeScores"].items():
        attribute = canonical_name(str(name))
        try:
            value = unit_interval(detail["summaryScore"]["value"])
        except (KeyError, TypeError):
            continue
        if attribute in wanted and value is not None:
            scores[attribute] = value
    return scores or None


class PerspectiveHTTPBackend:
    concurrent = True  # up to PRC_SCORER_CONCURRENCY requests at once: a batch goes in one call

    def __init__(
        self,
        url: str,
        timeout_s: float = 0.4,
        concurrency: int = 16,
        perspective_names: bool = True,
        deadline_s: float | None = None,
        client: httpx2.Client | None = None,
    ) -> None:
        if not url:
            raise ScorerUnavailable("the http scorer needs PRC_SCORER_HTTP_URL, a comments:analyze URL")
        self.url = url
        self.name = f"http:{url.split('?', 1)[0]}"  # no query string: it may hold an API key, and names get logged
        self.perspective_names = perspective_names
        self.concurrency = max(1, concurrency)
        # The whole slate's budget: a text still waiting on the pool after it stays unscored.
        self.deadline_s = deadline_s if deadline_s is not None else timeout_s + 0.05
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="http-scorer")
        self.client = client or httpx2.Client(
            timeout=httpx2.Timeout(timeout_s),
            limits=httpx2.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )

    def _score_one(self, text: str, attributes: Sequence[str]) -> Scores | None:
        try:
            response = self.client.post(self.url, json=build_request(text, attributes, self.perspective_names))
            response.raise_for_status()
            return parse_response(response.json(), attributes)
        except (httpx2.HTTPError, ValueError) as exc:
            logger.warning("HTTP scorer request failed: %s", type(exc).__name__)
            return None

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        return map_within(self._pool, lambda text: self._score_one(text, attributes), texts, self.deadline_s)
