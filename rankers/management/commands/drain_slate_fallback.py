"""``manage.py drain_slate_fallback [--limit N]``: the beat job ``rankers.tasks.drain_slate_fallback``, by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rankers.slatelog import drain_fallback, fallback_key


class Command(BaseCommand):
    help = "Move slates from the Redis fallback list into the slate log (what beat runs every minute)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=5000, help="At most this many slates.")

    def handle(self, *args: Any, **options: Any) -> None:
        moved = drain_fallback(limit=options["limit"])
        self.stdout.write(f"moved {moved} slates from {fallback_key()}")
