"""Token and cost accounting of paid scorer calls (the ``llm`` backend).

``call_cost`` is the one price rule; ``Usage`` adds calls up in memory; ``record_usage`` adds one batch's usage
to the day's ``ScorerUsage`` row in PostgreSQL, where every scorer process's spending meets. ``daily_usage`` and
``usage_totals`` read it back for the delivery page and ``/metrics``; ``usage_sums`` adds rows up per day or
backend (the content health page's LLM annotation cost per day uses it too).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from rankers.models import ScorerUsage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prices:
    """Price per 1,000 tokens, in the study's currency (settings ``PRC_LLM_PRICE_*_PER_1K``)."""

    prompt_per_1k: float = 0.0
    completion_per_1k: float = 0.0


def call_cost(prompt_tokens: int, completion_tokens: int, prices: Prices) -> float:
    """The cost of one call: each kind of token at its price per 1,000."""
    return (prompt_tokens * prices.prompt_per_1k + completion_tokens * prices.completion_per_1k) / 1000


@dataclass
class Usage:
    """Calls, tokens and cost added up; thread-safe ``add``."""

    calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, prompt_tokens: int = 0, completion_tokens: int = 0, cost: float = 0.0, ok: bool = True) -> None:
        with self._lock:
            self.calls += 1
            self.failed_calls += 0 if ok else 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cost += cost

    def take(self) -> Usage:
        """What was added since the last ``take``, and start again from zero."""
        with self._lock:
            taken = replace(self, _lock=threading.Lock())
            self.calls = self.failed_calls = self.prompt_tokens = self.completion_tokens = 0
            self.cost = 0.0
        return taken


def record_usage(*, backend: str, usage: Usage) -> None:
    """Add ``usage`` to today's row for ``backend``. Never raises: accounting must not cost a slate its scores."""
    if not usage.calls:
        return
    try:
        row, _ = ScorerUsage.objects.get_or_create(day=timezone.localdate(), backend=backend[:200])
        ScorerUsage.objects.filter(pk=row.pk).update(
            calls=F("calls") + usage.calls,
            failed_calls=F("failed_calls") + usage.failed_calls,
            prompt_tokens=F("prompt_tokens") + usage.prompt_tokens,
            completion_tokens=F("completion_tokens") + usage.completion_tokens,
            cost=F("cost") + Decimal(str(round(usage.cost, 6))),
        )
    except Exception:
        logger.warning("could not record %s usage (%d calls)", backend, usage.calls, exc_info=True)


def daily_usage(days: int, *, today: dt.date | None = None) -> list[ScorerUsage]:
    """The ``ScorerUsage`` rows of the last ``days`` days up to ``today`` (the local date), newest day first."""
    last = today or timezone.localdate()
    rows = ScorerUsage.objects.filter(day__gt=last - dt.timedelta(days=days), day__lte=last)
    return list(rows.order_by("-day", "backend"))


# What a ``ScorerUsage`` row counts; ``usage_sums`` adds each up.
COUNTERS = ("calls", "failed_calls", "prompt_tokens", "completion_tokens", "cost")


def usage_sums(rows: QuerySet[ScorerUsage], by: str) -> list[dict[str, Any]]:
    """``rows`` added up per value of the column ``by`` (``day`` or ``backend``), in its order: one dict each with
    ``by`` and every counter of ``COUNTERS`` (``cost`` a Decimal)."""
    return list(rows.values(by).annotate(**{name: Sum(name) for name in COUNTERS}).order_by(by))


@dataclass(frozen=True)
class BackendTotal:
    backend: str
    calls: int
    failed_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal


def usage_totals() -> list[BackendTotal]:
    """Every day's usage added up per backend."""
    return [BackendTotal(**row) for row in usage_sums(ScorerUsage.objects.all(), "backend")]
