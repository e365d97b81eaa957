"""Daily per-arm rollups of the slate log: what the ranking dashboards read.

One row per study, day (in the study's time zone), arm, platform and content
type. Rows are derived data: ``rankers.rollups.rollup_day`` replaces a day's
rows wholesale, so they can be recomputed at any time.
"""

from __future__ import annotations

import datetime as dt

from django.db import models


class DailyArmRollupQuerySet(models.QuerySet["DailyArmRollup"]):
    def for_study(self, study_id: int) -> DailyArmRollupQuerySet:
        return self.filter(study_id=study_id)

    def between(self, start: dt.date, end: dt.date) -> DailyArmRollupQuerySet:
        """Days from ``start`` to ``end``, both included."""
        return self.filter(day__gte=start, day__lte=end)

    def on_platform(self, platform: str) -> DailyArmRollupQuerySet:
        return self.filter(platform=platform) if platform else self

    def of_content_type(self, content_type: str) -> DailyArmRollupQuerySet:
        return self.filter(content_type=content_type) if content_type else self


class DailyArmRollup(models.Model):
    study = models.ForeignKey("participants.Study", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="Calendar day in the study's time zone.")
    arm_slug = models.SlugField(help_text="The arm whose ranker was in effect (Slate.effective_arm).")
    platform = models.CharField(max_length=20)
    content_type = models.CharField(max_length=20)

    slates = models.PositiveIntegerField()
    slates_intervened = models.PositiveIntegerField(help_text="Slates answered with the ranker's order.")
    nrc_slates = models.PositiveIntegerField(default=0, help_text="Slates with a normalized rank change.")
    nrc_mean = models.FloatField(null=True, help_text="Mean normalized rank change over those slates.")
    added_total = models.PositiveIntegerField()
    added_mean = models.FloatField()
    deleted_total = models.PositiveIntegerField()
    deleted_mean = models.FloatField()
    fallbacks = models.JSONField(default=dict, help_text="Slates that fell back, by reason.")
    ranker_p50_ms = models.FloatField(null=True)
    ranker_p95_ms = models.FloatField(null=True)
    served_p50_ms = models.FloatField(null=True)
    served_p95_ms = models.FloatField(null=True)
    scoring_items = models.PositiveIntegerField(default=0, help_text="Items in slates whose ranker reads attributes.")
    scored_items = models.PositiveIntegerField(
        default=0, help_text="Of those, items scored on every attribute the ranker reads."
    )
    capped_slates = models.PositiveIntegerField(
        default=0, help_text="Slates whose ranker inserted or removed more than its caps (its first items were kept)."
    )
    audit_slates = models.PositiveIntegerField(
        default=0, help_text="Slates served after the participant's baseline days: what the latency audit reads."
    )
    late_slates = models.PositiveIntegerField(default=0, help_text="Of those, answers later than their hold + 50 ms.")
    served_hist = models.JSONField(
        default=dict, help_text="Of those, served time in whole ms -> slates (histograms pool exactly across rows)."
    )
    computed_at = models.DateTimeField()

    objects = DailyArmRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "day", "arm_slug", "platform", "content_type"], name="daily_arm_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["study", "platform", "day"], name="rollup_study_platform_day")]
        ordering = ["day", "arm_slug", "platform", "content_type"]

    def __str__(self) -> str:
        return f"{self.day} {self.arm_slug} {self.platform}/{self.content_type}"

    @property
    def fallback_total(self) -> int:
        return sum(self.fallbacks.values())
