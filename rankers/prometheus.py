"""Prometheus metrics of the ranking path, served at ``/metrics``.

Each web process counts in its own memory. ``python -m prc_site.serve`` with
several workers sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder) before it
starts them, so every process writes its counts there and ``/metrics``, which
any one process answers, adds them all up.

``/metrics`` is not public: Prometheus sends ``Authorization: Bearer
<METRICS_TOKEN>`` (a setting; unset means no token works), and signed-in
researchers can read it in the browser.

The scoring service's counters (``prc_scoring_events_total``, ``prc_scoring_queued_jobs``,
``prc_scoring_scored_share``) come from Redis, where every web process and scorer worker adds to them, so any
process's ``/metrics`` shows the whole service. What paid scorers (the ``llm`` backend) used comes from
PostgreSQL's ``ScorerUsage``, per backend: ``prc_scorer_calls_total{backend,outcome}``,
``prc_scorer_tokens_total{backend,kind}`` and ``prc_scorer_cost_total{backend}`` over every day (a day's use is
their ``increase`` over it), and today's cost as ``prc_scorer_cost_today{backend}``.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from participants.roles import is_researcher
from prc_site.lib.api_errors import error_response
from rankers.scoring import stats as scoring_stats
from rankers.scoring import store as scoring_store
from rankers.scoring import usage as scoring_usage

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

REQUESTS = Counter("prc_rank_requests_total", "Ranking requests by endpoint and HTTP status.", ["endpoint", "status"])
SERVED_SECONDS = Histogram(
    "prc_rank_served_seconds", "Receipt to answer, hold included.", ["endpoint"], buckets=LATENCY_BUCKETS
)
RANKER_SECONDS = Histogram(
    "prc_rank_ranker_seconds", "Time the ranker (and its scoring) took.", ["ranker"], buckets=LATENCY_BUCKETS
)
FALLBACKS = Counter("prc_rank_fallbacks_total", "Slates answered in the original order, by reason.", ["reason"])
ITEMS = Histogram(
    "prc_rank_items_per_request", "Items per ranking request.", buckets=(0, 1, 5, 10, 20, 30, 45, 50, 75, 100, 200)
)
SLATE_WRITE_FAILURES = Counter("prc_slate_write_failures_total", "Slates pushed to the Redis fallback list.")


class ScoringCollector(Collector):
    """The scoring service's shared counters, read from Redis at each scrape (nothing if Redis does not answer)."""

    def collect(self) -> list[Metric]:
        try:
            totals = scoring_stats.totals()
            queued = scoring_store.queued_jobs()
            last = scoring_stats.merged(scoring_stats.recent(5))
        except Exception:
            return []
        events = CounterMetricFamily(
            "prc_scoring_events", "Scoring service events (see rankers/scoring/stats.py).", labels=["event"]
        )
        for name, value in totals.items():
            events.add_metric([name], value)
        share = GaugeMetricFamily(
            "prc_scoring_scored_share", "Share of wanted items scored at the answer, last five minutes (NaN: none)."
        )
        share.add_metric([], last.scored_share if last and last.scored_share is not None else float("nan"))
        return [events, GaugeMetricFamily("prc_scoring_queued_jobs", "Scoring jobs waiting.", value=queued), share]


class ScorerUsageCollector(Collector):
    """Calls, tokens and cost of paid scorers, read from PostgreSQL at each scrape (nothing if it does not answer)."""

    def collect(self) -> list[Metric]:
        try:
            totals = scoring_usage.usage_totals()
            today = scoring_usage.daily_usage(1)
        except Exception:
            return []
        calls = CounterMetricFamily("prc_scorer_calls", "Paid scorer calls by outcome.", labels=["backend", "outcome"])
        tokens = CounterMetricFamily("prc_scorer_tokens", "Paid scorer tokens by kind.", labels=["backend", "kind"])
        cost = CounterMetricFamily("prc_scorer_cost", "Paid scorer cost at the configured prices.", labels=["backend"])
        for total in totals:
            calls.add_metric([total.backend, "ok"], total.calls - total.failed_calls)
            calls.add_metric([total.backend, "failed"], total.failed_calls)
            tokens.add_metric([total.backend, "prompt"], total.prompt_tokens)
            tokens.add_metric([total.backend, "completion"], total.completion_tokens)
            cost.add_metric([total.backend], float(total.cost))
        day = GaugeMetricFamily("prc_scorer_cost_today", "Paid scorer cost today (local date).", labels=["backend"])
        for row in today:
            day.add_metric([row.backend], float(row.cost))
        return [calls, tokens, cost, day]


REGISTRY.register(ScoringCollector())
REGISTRY.register(ScorerUsageCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_read_metrics(request):
        message = "Send Authorization: Bearer <METRICS_TOKEN>, or sign in as a researcher."
        return error_response("unauthenticated", message, status=401)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # every web process's counts, from the shared folder
        registry.register(ScoringCollector())
        registry.register(ScorerUsageCollector())
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def may_read_metrics(request: HttpRequest) -> bool:
    expected = str(settings.METRICS_TOKEN)
    header = request.headers.get("Authorization", "")
    if expected and header[:7].lower() == "bearer ":
        return hmac.compare_digest(header[7:].strip().encode(), expected.encode())
    return is_researcher(request.user)
