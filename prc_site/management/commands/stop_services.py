from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from prc_site.lib.embedded import stop_postgres, stop_redis


class Command(BaseCommand):
    help = "Stop the embedded PostgreSQL and Redis servers of this checkout."

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections

        connections.close_all()
        stop_redis()
        stop_postgres()
        self.stdout.write("embedded PostgreSQL and Redis stopped")
