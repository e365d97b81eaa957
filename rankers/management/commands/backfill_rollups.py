"""Recompute the daily rollups over a range of days: the periodic rollup, run by hand."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants.models import Study
from rankers.charts import days_between
from rankers.rollups import rollup_day

MAX_DAYS = 3660


def iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class Command(BaseCommand):
    help = "Recompute the daily per-arm rollups for every day from --start to --end (inclusive). Safe to rerun."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, type=iso_date, help="First day, YYYY-MM-DD.")
        parser.add_argument("--end", required=True, type=iso_date, help="Last day, YYYY-MM-DD (included).")
        parser.add_argument("--study", help="Slug of one study; default every study.")

    def handle(self, *args: Any, start: dt.date, end: dt.date, study: str | None, **options: Any) -> None:
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
            rows = rollup_day(day=day, study_ids=study_ids)
            total += rows
            self.stdout.write(f"[{n}/{len(days)}] {day.isoformat()}: {rows} rollup rows")
        elapsed = time.monotonic() - began
        self.stdout.write(self.style.SUCCESS(f"Rolled up {len(days)} days, {total} rows in {elapsed:.1f} s"))
