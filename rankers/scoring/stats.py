"""Counters of the scoring service, kept in Redis so that every web process and scorer worker adds to one set.

Each event is added to a per-minute hash (kept two days, read by the delivery page) and to a running total
(read by ``/metrics``). Events:

- web processes: ``items_wanted`` / ``items_scored`` (rankable items with text in slates whose ranker reads
  attributes, and those that had every attribute at the answer), ``texts_cached`` (found in a cache at once),
  ``jobs_admitted`` / ``jobs_refused`` and ``texts_refused`` (admission control);
- scorer workers: ``jobs_expired`` / ``texts_expired`` (not scored because their deadline had passed, or would have
  before they were: whole jobs dropped before starting, or a job's texts that did not fit), ``texts_scored``,
  ``texts_from_db``, ``texts_failed`` (the backend raised), ``texts_garbage`` (it answered
  something that is not a score), ``batches``, ``scoring_ms``, ``texts_rescored`` (background rescoring).

Counting never fails the caller: a Redis error loses the count, not the slate or the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from rankers.scoring import store

logger = logging.getLogger(__name__)

EVENTS = (
    "items_wanted",
    "items_scored",
    "texts_cached",
    "jobs_admitted",
    "jobs_refused",
    "texts_refused",
    "jobs_expired",
    "texts_expired",
    "texts_scored",
    "texts_from_db",
    "texts_failed",
    "texts_garbage",
    "batches",
    "scoring_ms",
    "texts_rescored",
)
KEEP_MINUTES_S = 2 * 24 * 3600


def minute_key(minute: int) -> str:
    return f"{store.prefix()}:stats:{minute}"


def total_key() -> str:
    return f"{store.prefix()}:stats:total"


def _minute(at: float | None = None) -> int:
    return int((at if at is not None else time.time()) // 60)


def count(**events: int) -> None:
    """Add ``events`` (see the module docstring) from a synchronous process."""
    events = {name: n for name, n in events.items() if n}
    if not events:
        return
    try:
        pipe = store.client().pipeline(transaction=False)
        _add(pipe, events)
        pipe.execute()
    except Exception:
        logger.warning("scoring counters not updated: %s", events, exc_info=True)


async def acount(**events: int) -> None:
    """``count`` from a web process's event loop."""
    events = {name: n for name, n in events.items() if n}
    if not events:
        return
    try:
        pipe = store.async_client().pipeline(transaction=False)
        _add(pipe, events)
        await pipe.execute()
    except Exception:
        logger.warning("scoring counters not updated: %s", events, exc_info=True)


def _add(pipe: object, events: Mapping[str, int]) -> None:
    key = minute_key(_minute())
    for name, n in events.items():
        pipe.hincrby(key, name, n)  # type: ignore[attr-defined]
        pipe.hincrby(total_key(), name, n)  # type: ignore[attr-defined]
    pipe.expire(key, KEEP_MINUTES_S)  # type: ignore[attr-defined]


def totals() -> dict[str, int]:
    raw = store.client().hgetall(total_key())
    return {name: int(raw.get(name.encode(), 0)) for name in EVENTS}


@dataclass(frozen=True)
class Window:
    """The scoring service over some minutes: what share of wanted items was scored and what was shed."""

    start: dt.datetime
    minutes: int
    counts: Mapping[str, int]

    @property
    def scored_share(self) -> float | None:
        wanted = self.counts.get("items_wanted", 0)
        return self.counts.get("items_scored", 0) / wanted if wanted else None

    @property
    def cached_share(self) -> float | None:
        wanted = self.counts.get("items_wanted", 0)
        return self.counts.get("texts_cached", 0) / wanted if wanted else None


def recent(minutes: int, *, now: float | None = None) -> list[Window]:
    """One window per minute for the last ``minutes`` minutes, oldest first (empty minutes included)."""
    last = _minute(now)
    first = last - minutes + 1
    pipe = store.client().pipeline(transaction=False)
    for minute in range(first, last + 1):
        pipe.hgetall(minute_key(minute))
    windows = []
    for minute, raw in zip(range(first, last + 1), pipe.execute(), strict=True):
        counts = {name.decode(): int(value) for name, value in raw.items()}
        windows.append(Window(dt.datetime.fromtimestamp(minute * 60, tz=dt.UTC), 1, counts))
    return windows


def merged(windows: list[Window]) -> Window | None:
    """The windows added together; None when there are none."""
    if not windows:
        return None
    counts: dict[str, int] = {}
    for window in windows:
        for name, n in window.counts.items():
            counts[name] = counts.get(name, 0) + n
    return Window(windows[0].start, len(windows), counts)
