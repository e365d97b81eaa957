"""Small helpers shared by management commands."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError, CommandParser


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
