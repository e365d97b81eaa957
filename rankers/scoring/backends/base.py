"""What a scorer backend is: texts in, one score mapping (or None) per text out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, wait
from typing import Protocol

# attribute -> score in [0, 1]; None for a text the backend could not score.
Scores = dict[str, float]


class ScorerUnavailable(RuntimeError):
    """A backend cannot be built from its settings (a missing model directory, a model that does not load).

    Raised by ``build_backend`` so that a scorer process refuses to start with this message instead of
    running and leaving every text unscored.
    """


class ScorerBackend(Protocol):
    # Part of the cache key: two backends never share cached scores.
    name: str
    # Optional (class attribute ``concurrent = True``): the backend scores a call's texts concurrently (remote
    # calls), so its time does not grow with their number and a scorer worker gives it a batch in one call
    # instead of in chunks that each fit before the deadline.

    def score(self, texts: Sequence[str], attributes: Sequence[str]) -> list[Scores | None]:
        """Score each text on the requested attributes; same length and order as ``texts``.

        May return fewer attributes than asked for a text (a model without that label). May raise: the caller
        (``score_items``) turns any exception into "unscored".
        """
        ...


def unit_interval(value: object) -> float | None:
    """``value`` as a float in [0, 1], or None when it is not a finite number in that range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0.0 or number > 1.0:
        return None
    return number


def pick(raw: Mapping[str, object], attributes: Sequence[str], canonical: Mapping[str, str]) -> Scores:
    """Keep the requested attributes whose values are valid scores; ``canonical`` maps raw keys to our names."""
    wanted = set(attributes)
    scores: Scores = {}
    for key, value in raw.items():
        name = canonical.get(key)
        number = unit_interval(value)
        if name in wanted and number is not None:
            scores[name] = number
    return scores


def map_within(
    pool: Executor, fn: Callable[[str], Scores | None], texts: Sequence[str], deadline_s: float
) -> list[Scores | None]:
    """``fn`` over ``texts`` on ``pool``; results not ready within ``deadline_s`` seconds are None (unscored)."""
    futures = [pool.submit(fn, text) for text in texts]
    wait(futures, timeout=deadline_s)
    results: list[Scores | None] = []
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is None:
            results.append(future.result())
        else:
            future.cancel()
            results.append(None)
    return results
