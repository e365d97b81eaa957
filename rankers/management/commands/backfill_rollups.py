"""Recompute the daily rollups over a range of days: the periodic rollup, run by hand.

With ``--remeasure`` it first recomputes each slate's measures under the current definitions
(``rankers.remeasure``), e.g. after the normalized rank change became the paper's.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants.models import Study
from prc_site.lib.commands import add_day_range
from rankers.charts import days_between
from rankers.remeasure import remeasure_slates
from rankers.rollups import day_bounds, rollup_day

MAX_DAYS = 3660


class Command(BaseCommand):
    help = "Recompute the daily per-arm rollups for every day from --start to --end (inclusive). Safe to rerun."

    def add_arguments(self, parser: CommandParser) -> None:
        add_day_range(parser)
        parser.add_argument(
            "--remeasure",
            action="store_true",
            help="First recompute each slate's NRC, RBO and slate length under the current definitions.",
        )

    def handle(
        self, *args: Any, start: dt.date, end: dt.date, study: str | None, remeasure: bool, **options: Any
    ) -> None:
        if start > end:
            raise CommandError("--start must not be after --end")
        days = days_between(start, end)
        if len(days) > MAX_DAYS:
            raise CommandError(f"Backfill at most {MAX_DAYS} days at a time")
        study_ids = None
        if study:
            study_ids = list(Study.objects.filter(slug=study).values_list("id", flat=True))
            if not study_ids:
                raise CommandError(f"No study with slug {study!r}")
        began = time.monotonic()
        total = 0
        for n, day in enumerate(days, start=1):
            remeasured = self._remeasure(day, study_ids) if remeasure else None
            rows = rollup_day(day=day, study_ids=study_ids)
            total += rows
            note = f", {remeasured} slates remeasured" if remeasured is not None else ""
            self.stdout.write(f"[{n}/{len(days)}] {day.isoformat()}: {rows} rollup rows{note}")
        elapsed = time.monotonic() - began
        self.stdout.write(self.style.SUCCESS(f"Rolled up {len(days)} days, {total} rows in {elapsed:.1f} s"))

    @staticmethod
    def _remeasure(day: dt.date, study_ids: list[int] | None) -> int:
        studies = Study.objects.order_by("id")
        if study_ids is not None:
            studies = studies.filter(id__in=study_ids)
        changed = 0
        for study_id, tz_name in studies.values_list("id", "timezone"):
            start, end = day_bounds(day, tz_name)
            changed += remeasure_slates(study_id=study_id, start=start, end=end)
        return changed
