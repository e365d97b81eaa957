from typing import Any

from django.core.management.base import BaseCommand

from participants.roles import create_roles


class Command(BaseCommand):
    help = "Create or update the researcher role groups (PI, read-only researcher, payments/operations)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, group in create_roles().items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions")
