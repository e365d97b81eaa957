"""``manage.py refresh_queues``: rebuild the inserting arms' pools and participants' queues now (what beat runs).

manage.py refresh_queues                     # every platform, every inserting arm
manage.py refresh_queues --platform reddit   # one platform
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from participants.paper import PLATFORMS
from rankers.content import queues


class Command(BaseCommand):
    help = "Rebuild the inserting arms' candidate pools and per-participant queues, in this process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--platform", choices=PLATFORMS, action="append", help="Only this platform (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        for platform in options["platform"] or PLATFORMS:
            for result in queues.refresh_platform(platform):
                self.stdout.write(
                    f"{result.platform} {result.ranker_key}: pool {result.pool_size} posts, "
                    f"{result.queues} queues ({result.personalized} personalized)"
                )
