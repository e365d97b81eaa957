"""``manage.py create_ranker_key [--label X]``: issue a key for ``/rankers/<name>/rank``; the key is the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rankers.models import RankerServiceKey


class Command(BaseCommand):
    help = "Create a ranker service key. Only its hash is stored: copy the key now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--label", default="", help="Who or what the key is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        row, key = RankerServiceKey.issue(label=options["label"])
        self.stdout.write(f"Created ranker service key {row.prefix}… ({row.label or 'no label'}). It is shown once:")
        self.stdout.write(key)
