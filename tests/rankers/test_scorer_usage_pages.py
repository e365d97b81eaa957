"""What paid scorers cost, per day and backend, on the delivery page and in /metrics (from rankers.ScorerUsage,
which the llm backend writes; its own accounting is tested in test_scoring_llm.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from participants.models import Study
from rankers.models import ScorerUsage
from rankers.scoring.usage import Usage, daily_usage, record_usage
from tests.factories import StudyFactory
from tests.rankers.conftest import reader_browser

pytestmark = pytest.mark.django_db

LLM = "llm:gpt-4o-mini"


def spend(backend: str, *calls: tuple[int, int, float, bool]) -> None:
    """Record calls of (prompt tokens, completion tokens, cost, ok) today, as the llm backend does per batch."""
    usage = Usage()
    for prompt, completion, cost, ok in calls:
        usage.add(prompt_tokens=prompt, completion_tokens=completion, cost=cost, ok=ok)
    record_usage(backend=backend, usage=usage)


@pytest.fixture
def two_days() -> dt.date:
    today = timezone.localdate()
    spend(LLM, (1200, 150, 0.27, True), (800, 0, 0.12, False))
    spend("llm:local-model", (100, 10, 0.0, True))
    ScorerUsage.objects.create(
        day=today - dt.timedelta(days=1), backend=LLM, calls=10, failed_calls=0,
        prompt_tokens=12000, completion_tokens=1500, cost=Decimal("2.5"),
    )  # fmt: skip
    ScorerUsage.objects.create(day=today - dt.timedelta(days=30), backend=LLM, calls=1, cost=Decimal("9"))
    return today


def test_the_delivery_page_shows_each_days_tokens_and_cost_per_backend(two_days: dt.date) -> None:
    study = StudyFactory(status=Study.Status.RUNNING, timezone="UTC")

    page = reader_browser().get("/research/ranking/delivery/", {"study": study.slug}).content.decode()

    table = page[page.index('<table id="scorer-usage">') :]
    table = table[: table.index("</table>")]
    today = f'data-day="{two_days:%Y-%m-%d}" data-backend="{LLM}"'
    row = table[table.index(today) :][:600]
    assert '<td data-col="calls">2</td>' in row
    assert '<td data-col="failed" class="bad">1</td>' in row
    assert '<td data-col="prompt">2000</td>' in row
    assert '<td data-col="completion">150</td>' in row
    assert '<td data-col="cost">0.3900</td>' in row
    yesterday = table[table.index(f'data-day="{two_days - dt.timedelta(days=1):%Y-%m-%d}"') :][:600]
    assert '<td data-col="cost">2.5000</td>' in yesterday
    assert 'data-backend="llm:local-model"' in table
    assert f"{two_days - dt.timedelta(days=30):%Y-%m-%d}" not in table  # older than the page's 14 days


def test_metrics_export_calls_tokens_and_cost_per_backend_and_todays_cost(two_days: dt.date, settings: Any) -> None:
    settings.METRICS_TOKEN = "usage-metrics"

    metrics = Client().get("/metrics", headers={"Authorization": "Bearer usage-metrics"}).content.decode()

    assert f'prc_scorer_calls_total{{backend="{LLM}",outcome="ok"}} 12.0' in metrics  # 2 today (1 failed), 10, 1
    assert f'prc_scorer_calls_total{{backend="{LLM}",outcome="failed"}} 1.0' in metrics
    assert f'prc_scorer_tokens_total{{backend="{LLM}",kind="prompt"}} 14000.0' in metrics
    assert f'prc_scorer_tokens_total{{backend="{LLM}",kind="completion"}} 1650.0' in metrics
    assert f'prc_scorer_cost_total{{backend="{LLM}"}} 11.89' in metrics  # 0.39 + 2.5 + 9 (every day)
    assert f'prc_scorer_cost_today{{backend="{LLM}"}} 0.39' in metrics
    assert 'prc_scorer_cost_today{backend="llm:local-model"} 0.0' in metrics


def test_the_usage_of_the_last_days_is_read_newest_first(two_days: dt.date) -> None:
    rows = daily_usage(2, today=two_days)

    assert [(row.day, row.backend) for row in rows] == [
        (two_days, "llm:gpt-4o-mini"),
        (two_days, "llm:local-model"),
        (two_days - dt.timedelta(days=1), LLM),
    ]
