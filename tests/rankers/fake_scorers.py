"""Scorer backends for the scorer-worker tests, named by dotted path in ``PRC_SCORER_BACKEND``.

They run in real scorer worker processes, so they are configured through the environment the test gives the
worker (``FAKE_SCORER_SECONDS``: how long each call takes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rankers.scoring.backends.base import Scores
from rankers.scoring.backends.baseline import BaselineBackend


class SlowBaseline(BaselineBackend):
    """The baseline scorer, taking ``FAKE_SCORER_SECONDS`` longer per call, however many texts (a model past its
    capacity, its time all a cost per call), except for the start-up check's one text."""

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if texts != ["warm up"]:
            time.sleep(float(os.environ.get("FAKE_SCORER_SECONDS", "0.5")))
        return super().score(texts, attributes)


class SlowPerText(BaselineBackend):
    """The baseline scorer at ``FAKE_SCORER_SECONDS_PER_TEXT`` per text, warm-up included (a model on a CPU, whose
    time grows with the texts of a call)."""

    def __init__(self, seconds_per_text: float | None = None) -> None:
        super().__init__()
        default = float(os.environ.get("FAKE_SCORER_SECONDS_PER_TEXT", "0.03"))
        self.seconds_per_text = default if seconds_per_text is None else seconds_per_text
        self.calls: list[int] = []

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        self.calls.append(len(texts))
        time.sleep(self.seconds_per_text * len(texts))
        return super().score(texts, attributes)


class SlowPerCharacter(BaselineBackend):
    """The baseline scorer at ``seconds_per_character`` per character of its texts (a model whose time grows with
    a text's tokens)."""

    def __init__(self, seconds_per_character: float) -> None:
        super().__init__()
        self.seconds_per_character = seconds_per_character

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        time.sleep(self.seconds_per_character * sum(len(text) for text in texts))
        return super().score(texts, attributes)


class Hanging:
    """Never answers a real batch (a wedged model server)."""

    name = "hanging"

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        if not texts[0].startswith("warm up"):  # the start-up check and the pace's warm-up answer
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


class ClockedModel(BaselineBackend):
    """A model whose calls take ``overhead + per_text * texts + per_character * characters`` on a clock of the
    test's own (no sleeping, so a loaded machine cannot blur the timings)."""

    def __init__(self, overhead: float = 0.0, per_text: float = 0.0, per_character: float = 0.0) -> None:
        super().__init__()
        self.overhead, self.per_text, self.per_character, self.now = overhead, per_text, per_character, 100.0
        self.calls: list[int] = []

    def clock(self) -> float:
        return self.now

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        self.calls.append(len(texts))
        self.now += self.overhead + self.per_text * len(texts) + self.per_character * sum(map(len, texts))
        return super().score(texts, attributes)
