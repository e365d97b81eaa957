"""Scorer backends for the scorer-worker tests, named by dotted path in ``PRC_SCORER_BACKEND``.

They run in real scorer worker processes, so they are configured through the environment the test gives the
worker (``FAKE_SCORER_SECONDS``: how long each batch takes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rankers.scoring.backends.base import Scores
from rankers.scoring.backends.baseline import BaselineBackend


class SlowBaseline(BaselineBackend):
    """The baseline scorer, taking ``FAKE_SCORER_SECONDS`` longer per batch (a model past its capacity)."""

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if texts != ["warm up"]:
            time.sleep(float(os.environ.get("FAKE_SCORER_SECONDS", "0.5")))
        return super().score(texts, attributes)


class Hanging:
    """Never answers a real batch (a wedged model server)."""

    name = "hanging"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if texts != ["warm up"]:
            time.sleep(3600)
        return [None for _ in texts]


class Garbage:
    """Answers every real batch with scores that are not scores."""

    name = "garbage"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if texts == ["warm up"]:
            return [None]
        return [dict.fromkeys(attributes, float("nan")) for _ in texts]


class Unloadable:
    """A model directory that is not there."""

    name = "unloadable"

    def load(self) -> None:
        raise FileNotFoundError("no model in /nonexistent/model-dir (config.json missing)")

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        raise AssertionError("never called")


class NotHere:
    """Fails the test if a web process (the test process) ever scores anything."""

    name = "not-here"
    texts_seen: list[str] = []

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        NotHere.texts_seen.extend(texts)
        raise AssertionError(f"a web process scored {len(texts)} texts")
