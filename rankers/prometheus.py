"""Prometheus metrics of the ranking path, served at ``/metrics``.

One process per node keeps the default registry simple; with several worker
processes per node set ``PROMETHEUS_MULTIPROC_DIR`` and serve a
``MultiProcessCollector`` instead.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

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


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
