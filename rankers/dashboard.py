"""Queries behind the ranking dashboards. Each returns plain rows.

The timelines and delivery pages read ``DailyArmRollup`` only; the slate log is
read one slate at a time, by the inspector.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from django.db.models import F, FloatField, Max, Q, QuerySet, Sum
from django.db.models.functions import Cast

from participants.models import Arm, Study
from rankers.charts import DeliveryRow, TimelinePoint
from rankers.latency_audit import AuditInput, LatencyAudit, percentile
from rankers.latency_audit import latency_audit as audit_from_rows
from rankers.models import ContentItem, Slate
from rankers.models_rollups import DailyArmRollup
from rankers.scoring import stats as scoring_stats
from rankers.scoring import store as scoring_store

logger = logging.getLogger(__name__)


def rollups(
    study: Study, *, start: dt.date, end: dt.date, platform: str = "", content_type: str = ""
) -> QuerySet[DailyArmRollup]:
    return (
        DailyArmRollup.objects.for_study(study.id)
        .between(start, end)
        .on_platform(platform)
        .of_content_type(content_type)
        .order_by()
    )


def arm_labels(study: Study, extra_slugs: set[str] | frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """``(slug, name)`` of the study's arms in their configured order, then any slug only the logs know."""
    arms = [(slug, name) for slug, name in Arm.objects.filter(study=study).order_by("id").values_list("slug", "name")]
    known = {slug for slug, _ in arms}
    return arms + [(slug, slug) for slug in sorted(extra_slugs - known)]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def timeline_points(
    study: Study, *, start: dt.date, end: dt.date, platform: str = "", content_type: str = ""
) -> list[TimelinePoint]:
    """Per arm and day, pooled over the selected platforms and content types (weighted by slates)."""
    rows = (
        rollups(study, start=start, end=end, platform=platform, content_type=content_type)
        .values("day", "arm_slug")
        .annotate(
            n=Sum("slates"),
            nrc_n=Sum("nrc_slates"),
            nrc_sum=Sum(F("nrc_mean") * Cast("nrc_slates", FloatField())),
            added=Sum("added_total"),
            deleted=Sum("deleted_total"),
        )
        .order_by("day", "arm_slug")
    )
    return [
        TimelinePoint(
            day=row["day"],
            arm_slug=row["arm_slug"],
            slates=row["n"],
            nrc_mean=_ratio(row["nrc_sum"], row["nrc_n"]),
            added_mean=row["added"] / row["n"],
            deleted_mean=row["deleted"] / row["n"],
        )
        for row in rows
        if row["n"]
    ]


def delivery_rows(
    study: Study, *, start: dt.date, end: dt.date, platform: str = "", content_type: str = ""
) -> list[DeliveryRow]:
    """Per arm over the range. Daily percentiles cannot be pooled exactly, so ranker p50 is the slate-weighted
    mean of the daily medians and p95 the worst day's p95: the number to hold against the budget. Served time is
    read off the pooled post-baseline histograms (exact to the ms): during the baseline weeks the lag ramps up,
    so mixing them in would make control, which has them all, look faster than every other arm."""
    qs = rollups(study, start=start, end=end, platform=platform, content_type=content_type)
    fallbacks: dict[str, Counter[str]] = {}
    for arm_slug, counts in qs.exclude(fallbacks={}).values_list("arm_slug", "fallbacks"):
        fallbacks.setdefault(arm_slug, Counter()).update(counts)
    served = _served_after_baseline(qs)
    rows = (
        qs.values("arm_slug")
        .annotate(
            n=Sum("slates"),
            intervened=Sum("slates_intervened"),
            ranker_n=Sum("slates", filter=~_null("ranker_p50_ms")),
            ranker_p95=Max("ranker_p95_ms"),
            scoring_items=Sum("scoring_items"),
            scored_items=Sum("scored_items"),
            capped=Sum("capped_slates"),
            ranker_w=Sum(F("ranker_p50_ms") * Cast("slates", FloatField())),
        )
        .order_by("arm_slug")
    )
    return [
        DeliveryRow(
            arm_slug=row["arm_slug"],
            slates=row["n"],
            slates_intervened=row["intervened"],
            fallbacks=dict(sorted(fallbacks.get(row["arm_slug"], Counter()).items())),
            ranker_p50_ms=_ratio(row["ranker_w"], row["ranker_n"]),
            ranker_p95_ms=row["ranker_p95"],
            served_p50_ms=served.get(row["arm_slug"], (None, None))[0],
            served_p95_ms=served.get(row["arm_slug"], (None, None))[1],
            scoring_items=row["scoring_items"] or 0,
            scored_items=row["scored_items"] or 0,
            capped_slates=row["capped"] or 0,
        )
        for row in rows
    ]


def latency_audit(
    study: Study, *, start: dt.date, end: dt.date, platform: str = "", content_type: str = ""
) -> LatencyAudit | None:
    """The equal-latency audit over post-baseline slates in the range; None when the study has no control arm."""
    control = study.control_arm()
    if control is None:
        return None
    rows = (
        rollups(study, start=start, end=end, platform=platform, content_type=content_type)
        .filter(audit_slates__gt=0)
        .values_list("arm_slug", "platform", "audit_slates", "late_slates", "served_hist")
    )
    return audit_from_rows((AuditInput(*row) for row in rows), control_slug=control.slug)


def _served_after_baseline(qs: QuerySet[DailyArmRollup]) -> dict[str, tuple[float | None, float | None]]:
    """arm -> (p50, p95) of served time over its post-baseline slates, from the pooled histograms."""
    hists: dict[str, Counter[int]] = {}
    for arm_slug, hist in qs.filter(audit_slates__gt=0).values_list("arm_slug", "served_hist"):
        hists.setdefault(arm_slug, Counter()).update({int(ms): n for ms, n in hist.items()})
    return {arm: (percentile(hist, 0.5), percentile(hist, 0.95)) for arm, hist in hists.items()}


def _null(field: str) -> Q:
    return Q(**{f"{field}__isnull": True})


def in_arm_order(rows: list[DeliveryRow], arms: list[tuple[str, str]]) -> list[DeliveryRow]:
    order = {slug: i for i, (slug, _) in enumerate(arms)}
    return sorted(rows, key=lambda row: (order.get(row.arm_slug, len(order)), row.arm_slug))


# --- the slate inspector ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlateEntry:
    """One item of a logged slate, with its 1-based place in the original and the returned order."""

    item_id: str
    before: int | None  # None: the ranker added it
    after: int | None  # None: the ranker deleted it
    text: str = ""
    title: str = ""

    @property
    def status(self) -> str:
        if self.before is None:
            return "added"
        return "deleted" if self.after is None else "kept"

    @property
    def moved_up(self) -> int | None:
        """Places gained from the original to the returned order (negative: moved down)."""
        return self.before - self.after if self.before is not None and self.after is not None else None


def slate_orders(original_ids: list[str], returned_ids: list[str]) -> tuple[list[SlateEntry], list[SlateEntry]]:
    """The original and the returned order as entries, each knowing its place in the other order."""
    before = {item_id: n for n, item_id in enumerate(original_ids, start=1)}
    after = {item_id: n for n, item_id in enumerate(returned_ids, start=1)}
    original = [SlateEntry(item_id, n, after.get(item_id)) for item_id, n in before.items()]
    returned = [SlateEntry(item_id, before.get(item_id), n) for item_id, n in after.items()]
    return original, returned


@dataclass(frozen=True)
class SlateView:
    slate: Slate
    original: list[SlateEntry]
    returned: list[SlateEntry]


def slate_view(slate: Slate) -> SlateView:
    """One logged slate with its items' text from ``ContentItem`` (the logged version where known)."""
    original, returned = slate_orders(slate.original_ids, slate.returned_ids)
    ids = {entry.item_id for entry in (*original, *returned)}
    versions: dict[tuple[str, str], ContentItem] = {}
    latest: dict[str, ContentItem] = {}
    for item in ContentItem.objects.filter(platform=slate.platform, item_id__in=ids).order_by("first_seen_at"):
        versions[(item.item_id, item.text_hash)] = item
        latest[item.item_id] = item
    logged_hash = dict(zip(slate.original_ids, slate.original_hashes, strict=False))

    def with_text(entry: SlateEntry) -> SlateEntry:
        item = versions.get((entry.item_id, logged_hash.get(entry.item_id, ""))) or latest.get(entry.item_id)
        if item is None:
            return entry
        return SlateEntry(entry.item_id, entry.before, entry.after, item.text, item.title)

    return SlateView(slate, [with_text(e) for e in original], [with_text(e) for e in returned])


@dataclass(frozen=True)
class ScoringService:
    """The shared scoring service now: per-minute windows of the last hour and the jobs waiting."""

    minutes: list[scoring_stats.Window]
    queued_jobs: int

    @property
    def last_5(self) -> scoring_stats.Window | None:
        return scoring_stats.merged(self.minutes[-5:])

    @property
    def last_60(self) -> scoring_stats.Window | None:
        return scoring_stats.merged(self.minutes)


def scoring_service(minutes: int = 60) -> ScoringService | None:
    """What the scorer workers and web processes counted in Redis; None when Redis does not answer."""
    try:
        return ScoringService(scoring_stats.recent(minutes), scoring_store.queued_jobs())
    except Exception:
        logger.warning("scoring service counters unavailable", exc_info=True)
        return None
