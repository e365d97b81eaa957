"""Sessions hold nothing secret: the enrolment code and status key are shown once and never stored server-side."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from participants.models import ConsentDocument, Participant, RecruitmentSource
from participants.tasks import clear_expired_sessions
from tests.participants.conftest import give_consent, install_page_secrets, join, screen

pytestmark = pytest.mark.django_db


def stored_sessions_text() -> str:
    return " ".join(str(session.get_decoded()) for session in Session.objects.all())


def test_enrolment_code_and_status_key_never_reach_the_session_store(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "s1")
    screen(client)
    give_consent(client, consent_doc)
    # Between the consent answer and the install page: only the participant's pk is stored.
    assert list(Session.objects.get().get_decoded()) == ["prc_participant"]

    code, key = install_page_secrets(client)

    assert code not in stored_sessions_text()
    assert key not in stored_sessions_text()
    assert list(Session.objects.get().get_decoded()) == ["prc_participant"]


def test_the_install_page_shows_the_code_once_and_offers_a_fresh_one_after(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "s2")
    screen(client)
    give_consent(client, consent_doc)
    first_code, _ = install_page_secrets(client)

    reload = client.get("/signup/install/").content.decode()
    assert first_code not in reload
    assert 'data-testid="status-link"' not in reload
    fresh = client.post("/signup/install/").content.decode()

    assert 'data-testid="enrolment-code"' in fresh
    assert first_code not in fresh
    register = client.post(
        "/api/v1/extension/register", {"enrolment_code": first_code, "install_key": "k" * 10},
        content_type="application/json",
    )  # fmt: skip
    assert register.status_code == 400  # the first code stopped working when the fresh one was issued
    assert Participant.objects.get().enrolment_code_hash


def test_a_code_cookie_from_another_participant_is_not_shown(
    source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    first, second = Client(), Client()
    for client, pid in ((first, "s3"), (second, "s4")):
        join(client, source, pid)
        screen(client)
        give_consent(client, consent_doc)
    second.cookies["prc_install"] = first.cookies["prc_install"].value  # the first one's signed hand-over

    page = second.get("/signup/install/").content.decode()

    assert 'data-testid="enrolment-code"' not in page


def _session(key: str, expires_in: dt.timedelta) -> None:
    Session.objects.create(session_key=key, session_data="e30:", expire_date=timezone.now() + expires_in)


def test_expired_sessions_are_cleared_by_the_scheduled_task_and_the_command(settings) -> None:
    assert "participants.tasks.clear_expired_sessions" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    _session("expired" + "x" * 25, -dt.timedelta(minutes=1))
    _session("current" + "x" * 25, dt.timedelta(hours=1))

    clear_expired_sessions.delay()

    assert list(Session.objects.values_list("session_key", flat=True)) == ["current" + "x" * 25]
    _session("expired" + "y" * 25, -dt.timedelta(minutes=1))
    call_command("clearsessions")
    assert Session.objects.count() == 1
