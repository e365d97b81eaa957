"""Queries behind the content health page. Each returns plain rows (``rankers.content.charts`` draws them).

Only active sources count towards the pools: inactive ones are neither fetched nor drawn on. A post's age is
that of its ``created_at``, or of when we first saw it where the source gave no time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from participants.models import Participant
from participants.paper import PLATFORMS
from rankers.content.freshness import arm_stale_reason, hours_between, stale_reason
from rankers.content.inventory import candidate_from_row
from rankers.content.models import (
    INSERTING_ARMS,
    CandidatePool,
    CandidatePost,
    ConnectorRun,
    ContentSource,
    ParticipantQueue,
)
from rankers.plugins import inserting

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


# --- health per inserting arm ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmRow:
    """One inserting ranker on one platform: its pool, its queues and whether they are stale."""

    ranker_key: str
    platform: str
    pool_size: int
    fresh_candidates: int  # posts young enough for the arm's default age limit
    pool_built_at: dt.datetime | None
    newest_post_age_h: float | None
    participants: int  # enrolled participants whose arm runs this ranker
    fresh_queues: int | None  # of them, with a queue rebuilt within two refresh intervals; None: no queues
    personalized: int | None
    stale: str | None

    @property
    def coverage(self) -> float | None:
        if self.fresh_queues is None or not self.participants:
            return None
        return self.fresh_queues / self.participants


@dataclass(frozen=True)
class ExposureRow:
    """Posts an arm inserted in non-fallback slates over the window, by the lean of their source."""

    ranker_key: str
    platform: str
    lean: str
    inserted: int


def fresh_candidates(
    ranker_key: str, rows: Sequence[Mapping[str, Any]], *, newest: dt.datetime | None, now: dt.datetime
) -> int:
    """Pool posts an arm with default settings may insert now: within its age limit (Add News: of the newest
    scraped post, as it serves)."""
    defaults = inserting.arm_settings(ranker_key, {})
    if ranker_key == inserting.ADD_NEWS:
        if newest is None:
            return 0
        reference, limit = newest, inserting.hours(defaults["window_h"])
    else:
        reference, limit = now, inserting.hours(defaults["max_age_h"])
    candidates = (candidate_from_row(row) for row in rows)
    return sum(1 for c in candidates if inserting.is_fresh(c, newest_allowed_age=limit, reference=reference))


def arm_rows(*, now: dt.datetime, refresh: dt.timedelta) -> list[ArmRow]:
    pools = {(p.ranker_key, p.platform): p for p in CandidatePool.objects.all()}
    participants = dict(
        Participant.objects.enrolled()
        .filter(assignment__arm__ranker_key__in=INSERTING_ARMS)
        .values_list("assignment__arm__ranker_key")
        .annotate(n=Count("pk"))
        .values_list("assignment__arm__ranker_key", "n")
    )
    enrolled_ids = Participant.objects.enrolled().values("public_id")
    queues = {
        (row["ranker_key"], row["platform"]): (row["fresh"], row["personalized"])
        for row in ParticipantQueue.objects.filter(participant_id__in=enrolled_ids, built_at__gte=now - 2 * refresh)
        .values("ranker_key", "platform")
        .annotate(fresh=Count("pk"), personalized=Count("pk", filter=Q(personalized=True)))
    }
    return [
        _arm_row(
            ranker_key,
            platform,
            pools.get((ranker_key, platform)),
            participants.get(ranker_key, 0),
            queues.get((ranker_key, platform), (0, 0)),
            now=now,
            refresh=refresh,
        )
        for ranker_key in INSERTING_ARMS
        for platform in PLATFORMS
    ]


def _arm_row(
    ranker_key: str,
    platform: str,
    pool: CandidatePool | None,
    participants: int,
    queues: tuple[int, int],
    *,
    now: dt.datetime,
    refresh: dt.timedelta,
) -> ArmRow:
    queued = ranker_key in (inserting.ADD_NEWS, inserting.CHALLENGING_STEREOTYPES)
    fresh = fresh_candidates(ranker_key, pool.candidates, newest=pool.newest_post_at, now=now) if pool else 0
    fresh_queues = queues[0] if queued else None
    return ArmRow(
        ranker_key=ranker_key,
        platform=platform,
        pool_size=pool.size if pool else 0,
        fresh_candidates=fresh,
        pool_built_at=pool.built_at if pool else None,
        newest_post_age_h=hours_between(pool.newest_post_at, now) if pool and pool.newest_post_at else None,
        participants=participants,
        fresh_queues=fresh_queues,
        personalized=queues[1] if queued else None,
        stale=arm_stale_reason(
            pool_built_at=pool.built_at if pool else None,
            fresh_candidates=fresh,
            participants=participants,
            fresh_queues=fresh_queues,
            now=now,
            refresh=refresh,
        ),
    )


EXPOSURE_SQL = """
SELECT s.ranker_key, s.platform, COALESCE(e.value->>'lean', ''), count(*)
FROM rankers_slate s CROSS JOIN LATERAL jsonb_array_elements(s.inserted) AS e(value)
WHERE s.served_at >= %s AND s.ranker_key = ANY(%s) AND s.intervention_on
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


def exposure_rows(*, since: dt.datetime) -> list[ExposureRow]:
    """What each inserting arm showed since ``since``, by source lean (from the slate log's ``inserted``)."""
    with connection.cursor() as cursor:
        cursor.execute(EXPOSURE_SQL, [since, list(INSERTING_ARMS)])
        return [ExposureRow(*row) for row in cursor.fetchall()]
