"""``manage.py revoke_ranker_key PREFIX``: stop a ranker service key working (audited, like the admin action)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rankers.models import RankerServiceKey


class Command(BaseCommand):
    help = "Revoke the ranker service key whose prefix (shown in the admin and by create_ranker_key) is given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="The key's first characters, e.g. rk_AbCdE.")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        keys = list(RankerServiceKey.objects.filter(prefix=prefix)[:2])
        if len(keys) != 1:
            raise CommandError(f"{'no' if not keys else 'more than one'} key with prefix {prefix!r}")
        if keys[0].revoke():
            self.stdout.write(f"Revoked {keys[0]}; it stops working on the next request.")
        else:
            self.stdout.write(f"{keys[0]} was already revoked.")
