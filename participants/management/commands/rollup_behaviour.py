"""Recompute the daily behaviour rollups over a range of days: the periodic rollup, run by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants import events
from participants.models import Study
from prc_site.lib.commands import add_day_range

MAX_DAYS = 3660


class Command(BaseCommand):
    help = "Recompute daily active minutes and event counts from --start to --end (inclusive). Safe to rerun."

    def add_arguments(self, parser: CommandParser) -> None:
        add_day_range(parser)

    def handle(self, *args: Any, start: dt.date, end: dt.date, study: str | None, **options: Any) -> None:
        if start > end:
            raise CommandError("--start must not be after --end")
        n_days = (end - start).days + 1
        if n_days > MAX_DAYS:
            raise CommandError(f"Recompute at most {MAX_DAYS} days at a time")
        studies = Study.objects.all() if study is None else Study.objects.filter(slug=study)
        if study is not None and not studies.exists():
            raise CommandError(f"No study {study!r}")
        written = 0
        for one in studies:
            for offset in range(n_days):
                written += events.rollup_behaviour_day(study=one, day=start + dt.timedelta(days=offset))
        self.stdout.write(f"{written} rows over {n_days} days")
