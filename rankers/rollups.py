"""Daily per-arm rollups of the slate log.

A day is a calendar day in the study's time zone. Rolling up a day:

1. takes a transaction-scoped advisory lock on (study, day), so two runs of the
   same day queue up instead of racing on the unique constraint;
2. aggregates that day's slates in PostgreSQL (counts with ``FILTER``, means,
   ``percentile_cont``) grouped by effective arm, platform and content type;
3. replaces the day's rollup rows with the result, in the same transaction.

So a day can be rolled up any number of times, concurrently or not, and always
ends with the same rows; readers never see a half-written day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Aggregate, Avg, Count, F, FloatField, Q, Sum
from django.db.models.functions import Floor
from django.utils import timezone

from participants.models import Participant, Study
from rankers.latency_audit import LATE_MARGIN_MS
from rankers.models import Slate
from rankers.models_rollups import DailyArmRollup
from rankers.serving import ASSIGNED, NOT_STARTED

GROUP_BY = ("effective_arm", "platform", "content_type")
# Slates the latency audit reads: served after the participant's baseline days, when every arm has the full hold.
POST_BASELINE = Q(phase__in=(ASSIGNED, NOT_STARTED))
SCORING = Q(n_scored__isnull=False)


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expr)``: linear interpolation, nulls ignored."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def day_bounds(day: dt.date, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of ``day`` in the time zone ``tz_name`` (23 or 25 hours on DST days)."""
    tz = ZoneInfo(tz_name)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    # In UTC, so that ``end - start`` is the real length of the day (Python subtracts same-zone times by the clock).
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _lock_key(study_id: int, day: dt.date) -> int:
    digest = hashlib.blake2b(f"rankers.rollup:{study_id}:{day.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _aggregate_slates(study_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    slates = Slate.objects.served_between(start, end).filter(study_id=study_id).order_by()
    # Researchers' test participants try the study; their slates are not the study's data.
    tests = Participant.objects.filter(study_id=study_id, is_test=True).values("public_id")
    slates = slates.exclude(participant_id__in=tests)
    rows = slates.values(*GROUP_BY).annotate(
        slates=Count("id"),
        slates_intervened=Count("id", filter=Q(intervention_on=True)),
        nrc_slates=Count("nrc"),
        nrc_mean=Avg("nrc"),
        added_total=Sum("n_added"),
        added_mean=Avg("n_added", output_field=FloatField()),
        deleted_total=Sum("n_deleted"),
        deleted_mean=Avg("n_deleted", output_field=FloatField()),
        ranker_p50_ms=PercentileCont("ranker_ms", 0.5),
        ranker_p95_ms=PercentileCont("ranker_ms", 0.95),
        served_p50_ms=PercentileCont("served_ms", 0.5),
        served_p95_ms=PercentileCont("served_ms", 0.95),
        scoring_items=Sum("n_items", filter=SCORING, default=0),
        scored_items=Sum("n_scored", default=0),
        capped_slates=Count("id", filter=Q(capped=True)),
        audit_slates=Count("id", filter=POST_BASELINE),
        late_slates=Count("id", filter=POST_BASELINE & Q(served_ms__gt=F("hold_ms") + LATE_MARGIN_MS)),
    )
    fallbacks: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
    counted = slates.exclude(fallback_reason="").values(*GROUP_BY, "fallback_reason").annotate(n=Count("id"))
    for row in counted:
        fallbacks[tuple(row[key] for key in GROUP_BY)][row["fallback_reason"]] = row["n"]
    served_hist: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
    buckets = (
        slates.filter(POST_BASELINE).annotate(ms=Floor("served_ms")).values(*GROUP_BY, "ms").annotate(n=Count("id"))
    )
    for row in buckets:
        served_hist[tuple(row[key] for key in GROUP_BY)][str(int(row["ms"]))] = row["n"]
    return [
        {
            **row,
            "fallbacks": fallbacks.get(tuple(row[key] for key in GROUP_BY), {}),
            "served_hist": served_hist.get(tuple(row[key] for key in GROUP_BY), {}),
        }
        for row in rows
    ]


def rollup_study_day(*, study_id: int, day: dt.date, tz_name: str | None = None) -> int:
    """Recompute one study's rollup rows for ``day``; returns how many rows it wrote."""
    if tz_name is None:
        tz_name = Study.objects.values_list("timezone", flat=True).get(pk=study_id)
    start, end = day_bounds(day, tz_name)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(study_id, day)])
        rows = _aggregate_slates(study_id, start, end)
        computed_at = timezone.now()
        DailyArmRollup.objects.filter(study_id=study_id, day=day).delete()
        DailyArmRollup.objects.bulk_create(
            DailyArmRollup(
                study_id=study_id,
                day=day,
                arm_slug=row.pop("effective_arm"),
                computed_at=computed_at,
                **row,
            )
            for row in rows
        )
    return len(rows)


def rollup_day(*, day: dt.date, study_ids: Iterable[int] | None = None) -> int:
    """Roll up ``day`` for every study (or the given ones); returns the rows written."""
    studies = Study.objects.order_by("id")
    if study_ids is not None:
        studies = studies.filter(id__in=list(study_ids))
    return sum(
        rollup_study_day(study_id=study_id, day=day, tz_name=tz_name)
        for study_id, tz_name in studies.values_list("id", "timezone")
    )


def rollup_recent_days(*, now: dt.datetime | None = None) -> int:
    """Roll up yesterday and today, each study in its own time zone: what beat runs every few minutes."""
    now = now or timezone.now()
    written = 0
    for study_id, tz_name in Study.objects.exclude(status=Study.Status.DRAFT).values_list("id", "timezone"):
        today = now.astimezone(ZoneInfo(tz_name)).date()
        for day in (today - dt.timedelta(days=1), today):
            written += rollup_study_day(study_id=study_id, day=day, tz_name=tz_name)
    return written
