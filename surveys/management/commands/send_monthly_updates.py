"""``manage.py send_monthly_updates [--at ISO-8601]``: the periodic job, run by hand.

``--at`` sets the clock (tests, catching up after an outage)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from surveys import messaging


class Command(BaseCommand):
    help = "Run surveys.messaging.send_monthly_updates once and print what it did."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="Evaluate as of this time (ISO 8601 with offset); default now.")

    def handle(self, *args: Any, **options: Any) -> None:
        at = timezone.now()
        if options["at"]:
            try:
                at = dt.datetime.fromisoformat(options["at"])
            except ValueError:
                raise CommandError("--at must be an ISO 8601 time, e.g. 2024-10-29T09:00:00+00:00") from None
            if timezone.is_naive(at):
                raise CommandError("--at needs a UTC offset, e.g. 2024-10-29T09:00:00+00:00")
        result = messaging.send_monthly_updates(at=at)
        self.stdout.write(" ".join(f"{key}={value}" for key, value in sorted(result.items())) or "nothing to do")
