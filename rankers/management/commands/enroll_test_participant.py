"""``manage.py enroll_test_participant --arm <slug> [--past-baseline] [--study <slug>]``.

Creates an enrolled, consented and included participant in one arm with a
working extension token, for extension developers and QA. Prints exactly
``user_id: <id>`` and ``token: <token>``.

The participant is a test participant (``Participant.is_test``, as issue 14 asks of every participant a
researcher makes by hand): left out of the funnel, costs, CONSORT, rollups and exports, deletable, and
placed in the arm on a test stratum (``test:enroll_test_participant``) outside the randomization sequence,
so it neither takes a real position nor counts as "randomized" for the locked design.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from participants.models import Arm, Assignment, ConsentDocument, ConsentRecord, ExtensionInstall, Participant
from participants.randomization import TEST_PREFIX
from participants.tokens import new_extension_token

TEST_STRATUM = f"{TEST_PREFIX}enroll_test_participant"


def create_test_participant(
    *, arm: Arm, past_baseline: bool = False, at: dt.datetime | None = None, is_test: bool = True
) -> tuple[Participant, str]:
    """Participant, consent, assignment and install in one transaction; returns (participant, token).

    ``is_test=False`` makes a participant the study's data counts (for tests of rollups and exports that need
    enrolled participants quickly); it is still placed outside the randomization sequence.
    """
    at = at or timezone.now()
    study = arm.study
    signup = at - dt.timedelta(days=max(study.baseline_days, study.ramp_days) + 1) if past_baseline else at
    with transaction.atomic():
        document = ConsentDocument.objects.filter(study=study, effective_at__lte=at).order_by("-effective_at").first()
        if document is None:
            document = ConsentDocument.objects.create(
                study=study, version=f"test-{secrets.token_hex(3)}", text="Test consent.", effective_at=signup
            )
        participant = Participant.objects.create(
            study=study,
            stage=Participant.Stage.ENROLLED,
            vendor_pid="",
            created_at=signup,
            screened_in_at=signup,
            consented_at=signup,
            enrolled_at=signup,
            baseline_completed_at=signup,
            included_at=signup + dt.timedelta(days=study.inclusion_days),
            is_test=is_test,
        )
        ConsentRecord.objects.create(participant=participant, document=document, given_at=signup)
        position = Assignment.objects.filter(arm=arm, stratum=TEST_STRATUM).count()
        Assignment.objects.create(
            participant=participant, arm=arm, stratum=TEST_STRATUM, position=position, assigned_at=signup
        )
        token = new_extension_token()
        ExtensionInstall.objects.create(
            participant=participant,
            install_key=f"test-{secrets.token_hex(6)}",
            token_hash=ExtensionInstall.hash_token(token),
            installed_at=signup,
        )
    return participant, token


class Command(BaseCommand):
    help = (
        "Create an enrolled, consented, included test participant (left out of the study's data) in one arm and"
        " print its user id and token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--arm", required=True, help="Arm slug.")
        parser.add_argument("--study", help="Study slug (needed when several studies have this arm).")
        parser.add_argument(
            "--past-baseline", action="store_true", help="Signed up long enough ago that the arm is in effect now."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        arms = Arm.objects.select_related("study").filter(slug=options["arm"])
        if options["study"]:
            arms = arms.filter(study__slug=options["study"])
        found = list(arms[:2])
        if not found:
            raise CommandError(
                f"No arm {options['arm']!r}" + (f" in study {options['study']!r}." if options["study"] else ".")
            )
        if len(found) > 1:
            raise CommandError(f"Several studies have an arm {options['arm']!r}; choose one with --study.")
        participant, token = create_test_participant(arm=found[0], past_baseline=options["past_baseline"])
        self.stdout.write(f"user_id: {participant.public_id}")
        self.stdout.write(f"token: {token}")
