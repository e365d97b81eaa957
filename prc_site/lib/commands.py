"""Small helpers shared by management commands."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone


def iso_date(value: str) -> dt.date:
    """An argparse ``type`` for YYYY-MM-DD that fails as a command error, not a traceback."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def add_day_range(parser: CommandParser) -> None:
    """``--start`` and ``--end`` (inclusive) days, and an optional ``--study`` slug."""
    parser.add_argument("--start", required=True, type=iso_date, help="First day, YYYY-MM-DD.")
    parser.add_argument("--end", required=True, type=iso_date, help="Last day, YYYY-MM-DD (included).")
    parser.add_argument("--study", help="Slug of one study; default every study.")


def parse_at(value: str | None) -> dt.datetime:
    """``--at``'s time, which must carry a UTC offset; now when not given."""
    if not value:
        return timezone.now()
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError("--at must be an ISO 8601 time, e.g. 2024-10-29T09:00:00+00:00") from None
    if timezone.is_naive(at):
        raise CommandError("--at needs a UTC offset, e.g. 2024-10-29T09:00:00+00:00")
    return at


class ClockedJobCommand(BaseCommand):
    """A periodic job run by hand: ``manage.py <job> [--at ISO-8601]`` runs ``job(at=...)`` once and prints the
    counts it returns. ``--at`` sets the clock (tests, catching up after an outage)."""

    @staticmethod
    def job(*, at: dt.datetime) -> dict[str, int]:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="Evaluate as of this time (ISO 8601 with offset); default now.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = self.job(at=parse_at(options["at"]))
        self.stdout.write(" ".join(f"{key}={value}" for key, value in sorted(result.items())) or "nothing to do")
