"""The survey schedule run as ``manage.py run_survey_schedule``: invitations, windows, reminders, withdrawal."""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from participants.models import AuditEvent, ConsentDocument, Participant, RecruitmentSource, Study
from surveys import messaging, services
from surveys.models import Invitation, MessageLog, Wave
from tests.factories import ConsentDocumentFactory, ParticipantFactory, StudyFactory
from tests.surveys.conftest import answer_all, enrol, link_in, make_wave, run_schedule

pytestmark = pytest.mark.django_db


def test_reminders_follow_the_interval_stop_at_the_maximum_and_are_logged(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    now = timezone.now()
    run_schedule(now)
    subjects = [m.subject for m in mail.outbox]

    for day in (1, 3, 3, 6, 9, 12, 15):  # max 3 reminders, every 3 days
        run_schedule(now + dt.timedelta(days=day, minutes=1))

    subjects = [m.subject for m in mail.outbox]
    assert subjects == ["Baseline survey is open for you"] + ["Reminder: Baseline survey is open for you"] * 3
    invitation = Invitation.objects.get(participant=participant)
    assert (invitation.reminders_sent, invitation.next_reminder_at) == (3, None)
    keys = sorted(MessageLog.objects.filter(participant=participant).values_list("key", flat=True))
    assert keys == [f"invitation:{invitation.pk}:0", *(f"reminder:{invitation.pk}:{n}" for n in (1, 2, 3))]


def test_completing_the_survey_cancels_the_remaining_reminders_in_the_same_transaction(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    answer_all(client, link_in(mail.outbox[-1]))
    sent = len(mail.outbox)

    output = run_schedule(timezone.now() + dt.timedelta(days=4))

    assert len(mail.outbox) == sent
    assert "emails_sent" not in output
    invitation = Invitation.objects.get(participant=participant)
    assert invitation.completed_at is not None
    assert (invitation.next_reminder_at, invitation.reminders_cancelled) == (None, 3)


@pytest.mark.django_db(transaction=True)
def test_a_reminder_racing_a_completion_is_either_sent_before_it_or_cancelled_by_it(
    study: Study, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    wave = make_wave(study, "baseline", max_reminders=2, reminder_interval_days=1)
    participant, _, _ = enrol(Client(), source, consent_doc, "p1")
    start = timezone.now()
    run_schedule(start)
    invitation = Invitation.objects.get(participant=participant)
    due = start + dt.timedelta(days=1, minutes=1)
    barrier = threading.Barrier(2)

    def complete() -> None:
        barrier.wait()
        services.complete_invitation(invitation=invitation, at=due)
        connection.close()

    def remind() -> None:
        barrier.wait()
        run_schedule(due)
        connection.close()

    threads = [threading.Thread(target=complete), threading.Thread(target=remind)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    invitation.refresh_from_db()
    reminders = MessageLog.objects.filter(participant=participant, kind="reminder").count()
    assert invitation.completed_at is not None
    assert invitation.next_reminder_at is None
    assert reminders + invitation.reminders_cancelled == wave.max_reminders
    assert reminders in (0, 1)


def test_withdrawn_participants_are_never_contacted_and_pending_reminders_are_cancelled(
    client: Client,
    source: RecruitmentSource,
    consent_doc: ConsentDocument,
    baseline: Wave,
    django_capture_on_commit_callbacks: Any,
) -> None:
    participant, key, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": ""}).status_code == 302
    sent = len(mail.outbox)
    make_wave(baseline.study, "midline")

    run_schedule(timezone.now() + dt.timedelta(days=4))

    assert len(mail.outbox) == sent
    invitation = Invitation.objects.get(participant=participant, wave=baseline)
    assert (invitation.cancel_reason, invitation.reminders_cancelled) == ("withdrawn", 3)
    assert not Invitation.objects.filter(participant=participant, wave__kind="midline").exists()
    link = link_in(mail.outbox[0])
    assert client.get(link).status_code == 403


def test_a_fixed_window_opens_and_closes_at_its_edges(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, study: Study
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    opens = timezone.now() + dt.timedelta(days=10)
    make_wave(
        study, "midline", opens_after_days=None, open_days=None, opens_at=opens, closes_at=opens + dt.timedelta(days=7)
    )

    assert "invitations_created=0" in run_schedule(opens - dt.timedelta(seconds=1))
    assert "invitations_created=1" in run_schedule(opens)
    invitation = Invitation.objects.get(participant=participant)
    assert "expired=0" in run_schedule(opens + dt.timedelta(days=7, seconds=-1))
    assert "expired=1" in run_schedule(opens + dt.timedelta(days=7))
    invitation.refresh_from_db()
    assert invitation.status == "expired"


def test_a_rolling_window_counts_whole_days_in_the_study_timezone(study: Study) -> None:
    study.timezone = "America/Los_Angeles"
    study.save()
    wave = make_wave(study, "midline", opens_after_days=60, open_days=7)
    tz = zoneinfo.ZoneInfo("America/Los_Angeles")
    signup = dt.datetime(2024, 9, 1, 23, 30, tzinfo=tz)  # 06:30 UTC on 2 September

    opens, closes = wave.window_for(signup)

    assert opens == dt.datetime(2024, 10, 31, 0, 0, tzinfo=tz)
    assert closes == dt.datetime(2024, 11, 8, 0, 0, tzinfo=tz)
    assert not wave.is_open_for(signup, opens - dt.timedelta(microseconds=1))
    assert wave.is_open_for(signup, opens)
    assert not wave.is_open_for(signup, closes)


def test_the_schedule_opens_and_closes_rolling_windows_at_local_midnight_across_a_clock_change(study: Study) -> None:
    """Two people who signed up an hour apart on either side of midnight in Los Angeles (the same UTC day)
    get windows a day apart, and the window closes at local midnight after summer time ended (3 November)."""
    study.timezone = "America/Los_Angeles"
    study.save()
    make_wave(study, "midline", opens_after_days=1, open_days=1)
    tz = zoneinfo.ZoneInfo("America/Los_Angeles")
    signups = {"late": dt.datetime(2024, 11, 1, 23, 30, tzinfo=tz), "early": dt.datetime(2024, 11, 2, 0, 30, tzinfo=tz)}
    people = {
        name: ParticipantFactory(study=study, stage="enrolled", consented_at=at, enrolled_at=at, email="")
        for name, at in signups.items()
    }
    late_opens, early_opens = dt.datetime(2024, 11, 2, tzinfo=tz), dt.datetime(2024, 11, 3, tzinfo=tz)
    late_closes = dt.datetime(2024, 11, 4, tzinfo=tz)
    assert late_closes.astimezone(dt.UTC) - late_opens.astimezone(dt.UTC) == dt.timedelta(hours=49)  # clocks went back

    assert "invitations_created=0" in run_schedule(late_opens - dt.timedelta(seconds=1))
    assert "invitations_created=1" in run_schedule(late_opens)
    assert "invitations_created=0" in run_schedule(early_opens - dt.timedelta(seconds=1))
    assert "invitations_created=1" in run_schedule(early_opens)
    late, early = (Invitation.objects.get(participant=people[name]) for name in ("late", "early"))
    assert (late.opens_at, late.closes_at) == (late_opens, late_closes)
    assert (early.opens_at, early.closes_at) == (early_opens, dt.datetime(2024, 11, 5, tzinfo=tz))
    assert "expired=0" in run_schedule(late_closes - dt.timedelta(seconds=1))
    assert "expired=1" in run_schedule(late_closes)
    late.refresh_from_db()
    early.refresh_from_db()
    assert (late.status, early.status) == ("expired", "invited")


def _evaluation_queries(n: int, at: dt.datetime) -> tuple[int, int]:
    """A fresh study of ``n`` enrolled people with one open wave: SQL statements to invite and claim them all."""
    Wave.objects.update(active=False)
    study = StudyFactory()
    make_wave(study, "baseline", max_reminders=1, reminder_interval_days=1)
    signup = at - dt.timedelta(hours=1)
    ParticipantFactory.create_batch(n, study=study, stage="enrolled", consented_at=signup, enrolled_at=signup)
    with CaptureQueriesContext(connection) as queries:
        created = messaging.create_invitations(at=at)
        messaging.expire_invitations(at=at)
        claimed = messaging.claim_due(at=at)
    with CaptureQueriesContext(connection) as reminding:
        reminded = messaging.claim_due(at=at + dt.timedelta(days=1, minutes=1))
    assert created == len(claimed) == len(reminded) == n
    assert {c.kind for c in claimed} == {"invitation"}
    assert {(c.kind, c.number) for c in reminded} == {("reminder", 1)}
    return len(queries), len(reminding)


def test_the_schedule_decides_for_many_participants_in_a_fixed_number_of_statements(study: Study) -> None:
    at = timezone.now()
    assert _evaluation_queries(3, at) == _evaluation_queries(40, at)


def test_target_population_included_waits_for_inclusion(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, study: Study
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    make_wave(study, "midline", target=Wave.Target.INCLUDED)

    assert "invitations_created=0" in run_schedule()
    Participant.objects.filter(pk=participant.pk).update(included_at=timezone.now())
    assert "invitations_created=1" in run_schedule()
    assert "invitations_created=0" in run_schedule()


@pytest.mark.parametrize("command", ["run_survey_schedule", "send_monthly_updates"])
@pytest.mark.parametrize(
    ("at", "message"), [("2024-10-29T09:00:00", "UTC offset"), ("next tuesday", "must be an ISO 8601 time")]
)
def test_the_clocked_commands_refuse_a_time_without_offset_or_not_a_time(
    baseline: Wave, command: str, at: str, message: str
) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match=message):
        call_command(command, "--at", at)


def test_the_extension_flag_lists_open_surveys_and_logs_the_showing_once(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, _, token = enrol(client, source, consent_doc, "p1")
    assert client.get("/api/v1/extension/surveys", HTTP_X_EXTENSION_TOKEN=token).json() == {"surveys": []}
    run_schedule()

    first = client.get("/api/v1/extension/surveys", HTTP_X_EXTENSION_TOKEN=token).json()
    client.get("/api/v1/extension/surveys", HTTP_X_EXTENSION_TOKEN=token)

    assert [s["wave"] for s in first["surveys"]] == ["baseline"]
    assert first["surveys"][0]["url"].startswith("http://testserver/survey/")
    assert first["surveys"][0]["reminder"] is False
    assert MessageLog.objects.filter(participant=participant, channel="extension").count() == 1
    assert client.get("/api/v1/extension/surveys", HTTP_X_EXTENSION_TOKEN="nope").status_code == 401


def test_a_withdrawal_under_delete_terms_erases_survey_answers_in_its_own_transaction(
    client: Client, source: RecruitmentSource, study: Study, baseline: Wave
) -> None:
    document = ConsentDocumentFactory(study=study, on_withdrawal=ConsentDocument.OnWithdrawal.DELETE)
    participant, key, _ = enrol(client, source, document, "p1")
    run_schedule()
    answer_all(client, link_in(mail.outbox[-1]))
    assert participant.survey_responses.exists()

    assert client.post(f"/p/{key}/withdraw/", {"confirm": "on", "reason": ""}).status_code == 302

    # No after-commit callback ran (none is captured here): the answers went with the withdrawal itself.
    assert not participant.survey_responses.exists()
    erased = AuditEvent.objects.get(action="participant.erased")
    assert erased.detail["survey_responses"] >= 1
