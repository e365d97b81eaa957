"""Monthly update emails (``manage.py send_monthly_updates``): status, next survey date and payments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from participants.models import Arm, Participant, Payment, Study
from rankers.management.commands.enroll_test_participant import create_test_participant
from surveys.models import MessageLog
from tests.surveys.conftest import make_wave

pytestmark = pytest.mark.django_db


def send(at: dt.datetime) -> str:
    out = StringIO()
    call_command("send_monthly_updates", "--at", at.isoformat(), stdout=out)
    return out.getvalue()


def test_each_enrolled_participant_gets_one_update_a_month_with_next_survey_and_payments(study: Study) -> None:
    arm = Arm.objects.get(study=study, slug="control")
    person, _ = create_test_participant(arm=arm, past_baseline=True)
    withdrawn, _ = create_test_participant(arm=arm, past_baseline=True)
    Participant.objects.filter(pk=person.pk).update(
        email="person@example.org", consented_at=timezone.now() - dt.timedelta(days=40)
    )
    Participant.objects.filter(pk=withdrawn.pk).update(
        email="gone@example.org", consented_at=timezone.now() - dt.timedelta(days=40), withdrawn_at=timezone.now()
    )
    Payment.objects.create(
        participant=person,
        amount=Decimal("5.00"),
        reason="Midline survey",
        idempotency_key="k1",
        status="paid",
        paid_at=timezone.now(),
    )
    Payment.objects.create(
        participant=person, amount=Decimal("5.00"), reason="Endline survey", idempotency_key="k2", status="owed"
    )
    make_wave(study, "midline", opens_after_days=60, open_days=7, payment_amount=Decimal("5.00"))
    now = timezone.now()

    first = send(now)
    again = send(now + dt.timedelta(days=1))

    assert "sent=1" in first
    assert "sent" not in again
    assert [m.to for m in mail.outbox] == [["person@example.org"]]
    body = mail.outbox[0].body
    assert "Next survey: Midline survey, from" in body
    assert "$5.00 paid so far, $5.00 on its way" in body
    assert "you are taking part" in body
    assert MessageLog.objects.filter(kind="monthly_update", participant=person).count() == 1
