"""Score the texts of recently logged slates that were served before their scores arrived (beat runs this too)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from rankers.scoring import identity
from rankers.scoring.rescore import rescore_missed


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since-minutes",
            type=int,
            default=None,
            help="Look at slates served this many minutes back (default: since the last run, at most "
            "PRC_RESCORE_WINDOW_S).",
        )
        parser.add_argument("--max-texts", type=int, default=None, help="Stop after this many (PRC_RESCORE_MAX_TEXTS).")

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["since_minutes"]
        since = timezone.now() - dt.timedelta(minutes=minutes) if minutes is not None else None
        done = rescore_missed(since=since, max_texts=options["max_texts"])
        self.stdout.write(f"scored {done} texts with {identity()}")
