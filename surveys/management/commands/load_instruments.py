"""``manage.py load_instruments``: write the instrument library (``surveys/library.py``) into the database."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from surveys.services import load_instruments


class Command(BaseCommand):
    help = "Create or update the instruments of supplementary section 7 (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        for instrument, created, count in load_instruments():
            verb = "created" if created else "updated"
            self.stdout.write(f"{instrument.slug}: {verb}, {count} questions")
