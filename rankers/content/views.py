"""The content health page: is the inventory behind the inserting arms fresh, and which sources are not."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from participants.roles import researcher_required
from rankers.charts import figure_html
from rankers.content import annotating, charts, dashboard


@require_GET
@researcher_required
def health(request: HttpRequest) -> HttpResponse:
    return render(request, "rankers/content_health.html", health_context(now=timezone.now()))


def health_context(*, now: dt.datetime) -> dict[str, Any]:
    limit_h = settings.PRC_CONTENT_STALE_AFTER_H
    limit = dt.timedelta(hours=limit_h)
    pools = dashboard.pool_rows(now=now, limit=limit)
    sources = dashboard.source_rows(now=now, limit=limit)
    arms = dashboard.arm_rows(now=now, refresh=dt.timedelta(seconds=settings.PRC_QUEUE_REFRESH_S))
    return {
        "now": now,
        "limit_h": limit_h,
        "pools": pools,
        "pool_totals": (sum(row.posts for row in pools), sum(row.fresh_posts for row in pools)),
        "sources": sources,
        "stale": [row for row in sources if row.stale],
        "arms": arms,
        "stale_arms": [row for row in arms if row.stale],
        "refresh_h": settings.PRC_QUEUE_REFRESH_S / 3600,
        "exposure": dashboard.exposure_rows(since=now - dt.timedelta(days=1)),
        "annotation": annotating.annotation_stats(now - dt.timedelta(days=7)),
        "charts": [
            figure_html(charts.pool_figure(pools, limit_h=limit_h), div_id="content-pools"),
            figure_html(charts.age_figure(sources, limit_h=limit_h), div_id="content-ages"),
        ],
        "lean_labels": charts.LEAN_LABELS,
    }
