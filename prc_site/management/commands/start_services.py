from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from prc_site.lib.embedded import start_configured


class Command(BaseCommand):
    help = "Start the embedded PostgreSQL and Redis of this checkout (for a Celery worker or beat run alone)."

    def handle(self, *args: Any, **options: Any) -> None:
        start_configured()  # manage.py has already done it; kept here so the command says what it does
        self.stdout.write("embedded PostgreSQL and Redis running (stop them with manage.py stop_services)")
