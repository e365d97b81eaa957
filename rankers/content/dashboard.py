"""Queries behind the content health page. Each returns plain rows (``rankers.content.charts`` draws them).

Only active sources count towards the pools: inactive ones are neither fetched nor drawn on. A post's age is
that of its ``created_at``, or of when we first saw it where the source gave no time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from rankers.content.freshness import hours_between, stale_reason
from rankers.content.models import CandidatePost, ConnectorRun, ContentSource

UNRATED = ""
POSTED_AT = Coalesce("created_at", "first_seen_at")


@dataclass(frozen=True)
class PoolRow:
    """Posts of active sources on one platform with one lean ("" for sources without a rating)."""

    platform: str
    lean: str
    posts: int
    fresh_posts: int  # posted within the freshness limit


@dataclass(frozen=True)
class SourceRow:
    source_id: int
    name: str
    platform: str
    kind: str
    connector: str
    lean: str
    active: bool
    posts: int
    newest_post_at: dt.datetime | None
    newest_post_age_h: float | None
    last_run_status: str  # "" when never run
    last_run_at: dt.datetime | None
    last_run_error: str
    last_run_new: int
    last_run_skipped: int
    last_success_at: dt.datetime | None
    stale: str | None  # why it is stale, None when fresh


def pool_rows(*, now: dt.datetime, limit: dt.timedelta) -> list[PoolRow]:
    rows = (
        CandidatePost.objects.filter(source__active=True)
        .annotate(posted_at=POSTED_AT)
        .values("platform", "source__lean")
        .annotate(posts=Count("id"), fresh=Count("id", filter=Q(posted_at__gte=now - limit)))
        .order_by("platform", "source__lean")
    )
    return [PoolRow(row["platform"], row["source__lean"], row["posts"], row["fresh"]) for row in rows]


def source_rows(*, now: dt.datetime, limit: dt.timedelta) -> list[SourceRow]:
    """Every source with its newest post, its last run and whether it is stale; stale ones first.

    The last run and last success are looked up per source through the (source, -started_at) index, so the
    page costs the same however many runs have piled up.
    """
    runs = ConnectorRun.objects.filter(source=OuterRef("pk")).order_by("-started_at")
    sources = list(
        ContentSource.objects.annotate(
            n_posts=Count("posts"),
            newest=Max(Coalesce("posts__created_at", "posts__first_seen_at")),
            last_run_id=Subquery(runs.values("pk")[:1]),
            last_success_at=Subquery(runs.filter(status=ConnectorRun.Status.SUCCEEDED).values("finished_at")[:1]),
        ).order_by("platform", "name")
    )
    last_runs = ConnectorRun.objects.in_bulk([s.last_run_id for s in sources if s.last_run_id])  # type: ignore[attr-defined]
    rows = [
        _source_row(source, last_runs.get(source.last_run_id), source.last_success_at, now, limit)  # type: ignore[attr-defined]
        for source in sources
    ]
    return sorted(rows, key=lambda row: (row.stale is None, not row.active))


def _source_row(
    source: ContentSource,
    run: ConnectorRun | None,
    succeeded_at: dt.datetime | None,
    now: dt.datetime,
    limit: dt.timedelta,
) -> SourceRow:
    newest: dt.datetime | None = source.newest  # type: ignore[attr-defined]
    return SourceRow(
        source_id=source.pk,
        name=source.name,
        platform=source.platform,
        kind=source.get_kind_display(),
        connector=source.connector,
        lean=source.lean,
        active=source.active,
        posts=source.n_posts,  # type: ignore[attr-defined]
        newest_post_at=newest,
        newest_post_age_h=hours_between(newest, now) if newest else None,
        last_run_status=run.status if run else "",
        last_run_at=run.started_at if run else None,
        last_run_error=run.error if run else "",
        last_run_new=run.items_new if run else 0,
        last_run_skipped=run.items_skipped if run else 0,
        last_success_at=succeeded_at,
        stale=stale_reason(
            active=source.active, newest_post_at=newest, last_success_at=succeeded_at, now=now, limit=limit
        ),
    )
