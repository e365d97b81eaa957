"""``manage.py compute_effects [--study SLUG]``: the nightly effect estimates, run by hand, with progress."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from participants.models import Study
from surveys import effects


class Command(BaseCommand):
    help = "Compute the S1 and S3 effect estimates of one study (or every live or closed one) now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", help="The study's slug; default every recruiting, running or closed study.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["study"]:
            studies = list(Study.objects.filter(slug=options["study"]))
            if not studies:
                raise CommandError(f"No study with the slug {options['study']!r}.")
        else:
            studies = list(Study.objects.filter(status__in=(*Study.SIGNUP_STATUSES, Study.Status.CLOSED)))
        for study in studies:
            try:
                run = effects.run_effects(study=study, progress=self._progress(study))
            except effects.AlreadyRunning as error:
                raise CommandError(str(error)) from None
            self.stdout.write(
                f"{study.slug}: {run.status}, {len(run.estimates)} estimates, {len(run.notes)} not identified"
                + (f" ({run.error})" if run.error else "")
            )

    def _progress(self, study: Study) -> Any:
        def report(done: int, total: int) -> None:
            self.stdout.write(f"{study.slug}: {done}/{total}", ending="\r" if done < total else "\n")

        return report
