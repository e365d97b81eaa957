"""Consent (versions, replay, re-consent, printing) and withdrawal through the participant pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from participants import tokens
from participants.models import (
    Assignment,
    AuditEvent,
    ConsentDocument,
    ConsentRecord,
    ExtensionInstall,
    Heartbeat,
    Participant,
    Payment,
    RecruitmentSource,
    sha256_hex,
)
from participants.services import withdraw_participant
from participants.signals import participant_withdrawn
from tests.factories import ConsentDocumentFactory
from tests.participants.conftest import consent_form, give_consent, install_page_secrets, join, screen, sign_up

pytestmark = pytest.mark.django_db


def test_consent_record_keeps_version_hashed_ip_agent_and_answers(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "c1")
    screen(client)
    client.post("/signup/consent/", consent_form(consent_doc), HTTP_USER_AGENT="Chrome/130", REMOTE_ADDR="203.0.113.9")
    record = ConsentRecord.objects.get()
    assert record.document == consent_doc
    assert record.ip_hash == sha256_hex(f"{settings.PRC_HASH_SALT}:203.0.113.9")
    assert "203.0.113.9" not in record.ip_hash
    assert record.user_agent == "Chrome/130"
    assert record.answers == {"I am 18 or older": True, "I agree to take part": True}


def test_consent_without_every_box_ticked_is_refused(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "c1")
    screen(client)
    response = client.post("/signup/consent/", {"version": consent_doc.version, "q0": "on"})
    assert response.status_code == 400
    assert ConsentRecord.objects.count() == 0
    assert Assignment.objects.count() == 0


def test_consent_before_screening_is_refused(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "c1")
    response = give_consent(client, consent_doc)
    assert response.status_code == 400
    assert "screening questions first" in response.content.decode()
    assert Assignment.objects.count() == 0


def test_replayed_consent_is_idempotent(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "c1")
    screen(client)
    first = give_consent(client, consent_doc)
    code, _key = install_page_secrets(client)
    second = give_consent(client, consent_doc)
    assert first["Location"] == second["Location"] == "/signup/install/"
    assert ConsentRecord.objects.count() == 1
    assert Assignment.objects.count() == 1
    # Nothing was reissued: the first code still works, and the page does not show it again.
    assert Participant.objects.get().enrolment_code_hash == tokens.hash_enrolment_code(code)
    assert 'data-testid="enrolment-code"' not in client.get("/signup/install/").content.decode()
    assert AuditEvent.objects.filter(action="consent.given").count() == 1


def test_the_current_document_is_the_latest_already_in_force(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    ConsentDocumentFactory(
        study=source.study, version="3.0", text="Future terms", effective_at=timezone.now() + dt.timedelta(days=3)
    )
    join(client, source, "c1")
    screen(client)
    page = client.get("/signup/consent/").content.decode()
    assert consent_doc.text in page
    assert "Future terms" not in page


def test_consent_to_a_superseded_version_is_refused(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "c1")
    screen(client)
    ConsentDocumentFactory(study=source.study, version="2.0", effective_at=timezone.now() - dt.timedelta(minutes=1))
    response = give_consent(client, consent_doc)
    assert response.status_code == 400
    assert "has changed" in response.content.decode()
    assert ConsentRecord.objects.count() == 0


def test_a_new_version_asks_enrolled_participants_to_consent_again(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    participant = sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)
    assert participant.has_current_consent()
    new = ConsentDocumentFactory(
        study=source.study, version="2.0", text="Updated terms", questions=["I accept the update"]
    )
    participant.refresh_from_db()
    assert not participant.has_current_consent()
    status = client.get(f"/p/{key}/").content.decode()
    assert "consent information has been updated" in status
    form = client.get(f"/p/{key}/consent/?renew=1").content.decode()
    assert "Updated terms" in form

    renewed = client.post(f"/p/{key}/consent/", consent_form(new))
    assert renewed["Location"] == f"/p/{key}/"
    assert participant.has_current_consent()
    assert "consent information has been updated" not in client.get(f"/p/{key}/").content.decode()
    assert Assignment.objects.count() == 1  # re-consent never re-randomizes
    assert AuditEvent.objects.filter(action="consent.renewed").count() == 1


def test_participant_can_view_and_print_what_they_agreed_to(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)
    page = client.get(f"/p/{key}/consent/").content.decode()
    assert consent_doc.text in page
    assert "version 1.0" in page
    assert "I agree to take part" in page
    assert "window.print()" in page


def test_unknown_status_key_is_404(client: Client, source: RecruitmentSource, consent_doc: ConsentDocument) -> None:
    sign_up(client, source, "c1", consent_doc)
    assert client.get("/p/not-the-key/").status_code == 404
    assert client.post("/p/not-the-key/withdraw/", {"confirm": "on"}).status_code == 404
    assert Participant.objects.get().withdrawn_at is None


def test_status_page_lists_payments_so_far(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    participant = sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)
    Payment.objects.create(
        participant=participant,
        amount="5.00",
        reason="Baseline survey",
        idempotency_key="a",
        status="paid",
        paid_at=timezone.now(),
    )
    Payment.objects.create(participant=participant, amount="2.50", reason="Week one", idempotency_key="b")
    Payment.objects.create(
        participant=participant, amount="9.00", reason="Void", idempotency_key="c", status="cancelled"
    )
    page = client.get(f"/p/{key}/").content.decode()
    assert "Baseline survey" in page
    assert "<dt>Paid to you</dt><dd>$5.00</dd>" in page
    assert "<dt>Still to be paid</dt><dd>$2.50</dd>" in page
    assert "Void" not in page


def withdraw_via_page(client: Client, key: str, **form: Any) -> Any:
    return client.post(f"/p/{key}/withdraw/", {"confirm": "on", **form})


def test_self_service_withdrawal_needs_confirmation(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)
    assert client.get(f"/p/{key}/withdraw/").status_code == 200
    assert client.post(f"/p/{key}/withdraw/", {}).status_code == 400
    assert Participant.objects.get().withdrawn_at is None


def test_withdrawal_stops_collection_and_keeps_data_when_the_consent_says_keep(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    participant = sign_up(client, source, "c1", consent_doc)
    code, key = install_page_secrets(client)
    token = client.post(
        "/api/v1/extension/register", {"enrolment_code": code, "install_key": "k" * 10}, content_type="application/json"
    ).json()["token"]
    client.post("/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token)
    Payment.objects.create(participant=participant, amount="5.00", reason="Baseline", idempotency_key="k1")
    Participant.objects.filter(pk=participant.pk).update(email="a@example.org")

    assert withdraw_via_page(client, key, reason="Too busy")["Location"] == f"/p/{key}/"
    participant.refresh_from_db()
    assert participant.withdrawn_at is not None
    assert participant.stage == "withdrawn"
    assert not participant.has_current_consent()
    reply = client.post(
        "/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token
    )
    assert reply.json()["collect"] is False
    assert Heartbeat.objects.count() == 1  # the earlier one is kept, nothing new stored
    assert participant.email == "a@example.org"
    assert participant.screener_answers
    assert Payment.objects.get().status == "owed"  # earned payments are kept
    assert "You have left the study" in client.get(f"/p/{key}/").content.decode()
    audit = AuditEvent.objects.get(action="participant.withdrawn")
    assert audit.actor_label == f"participant {participant.public_id}"
    assert audit.detail == {"reason_given": True, "erase": False}  # the reason itself stays off the audit trail
    assert participant.withdrawal_reason == "Too busy"


def test_withdrawal_erases_personal_data_when_the_consent_says_delete(
    client: Client, source: RecruitmentSource, study: Any
) -> None:
    document = ConsentDocumentFactory(study=study, on_withdrawal=ConsentDocument.OnWithdrawal.DELETE)
    participant = sign_up(client, source, "c1", document)
    code, key = install_page_secrets(client)
    token = client.post(
        "/api/v1/extension/register", {"enrolment_code": code, "install_key": "k" * 10}, content_type="application/json"
    ).json()["token"]
    client.post("/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token)
    Participant.objects.filter(pk=participant.pk).update(email="a@example.org")

    withdraw_via_page(client, key)
    participant.refresh_from_db()
    assert (participant.email, participant.screener_answers, participant.strata) == ("", {}, {})
    assert Heartbeat.objects.count() == 0
    assert ExtensionInstall.objects.count() == 1
    assert Assignment.objects.filter(participant=participant).exists()  # the randomization record stays
    assert ConsentRecord.objects.filter(participant=participant).exists()


def test_withdrawal_is_idempotent_and_announced_once(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, django_capture_on_commit_callbacks: Any
) -> None:
    participant = sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)
    heard: list[dict[str, Any]] = []

    def receiver(sender: type, **kwargs: Any) -> None:
        heard.append(kwargs)

    participant_withdrawn.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            withdraw_via_page(client, key)
            first_time = Participant.objects.get().withdrawn_at
            assert withdraw_participant(participant=participant, by=None, reason="again") is False
            withdraw_via_page(client, key)
    finally:
        participant_withdrawn.disconnect(receiver)
    assert Participant.objects.get().withdrawn_at == first_time
    assert AuditEvent.objects.filter(action="participant.withdrawn").count() == 1
    assert len(heard) == 1
    assert heard[0]["participant"].pk == participant.pk
    assert heard[0]["erase"] is False


def test_a_failing_receiver_does_not_undo_the_withdrawal(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, django_capture_on_commit_callbacks: Any
) -> None:
    sign_up(client, source, "c1", consent_doc)
    _, key = install_page_secrets(client)

    def broken(sender: type, **kwargs: Any) -> None:
        raise RuntimeError("surveys is down")

    participant_withdrawn.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            withdraw_via_page(client, key)
    finally:
        participant_withdrawn.disconnect(broken)
    assert Participant.objects.get().withdrawn_at is not None


def test_researcher_withdrawal_is_audited_with_their_name(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    participant = sign_up(client, source, "c1", consent_doc)
    pi = get_user_model().objects.create_user("pi", password="x")
    assert withdraw_participant(participant=participant, by=pi, reason="Asked by email") is True
    audit = AuditEvent.objects.get(action="participant.withdrawn")
    assert (audit.actor, audit.actor_label) == (pi, "pi")


def test_withdrawn_participant_cannot_register_the_extension(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "c1", consent_doc)
    code, key = install_page_secrets(client)
    withdraw_via_page(client, key)
    response = client.post(
        "/api/v1/extension/register", {"enrolment_code": code, "install_key": "k" * 10}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "code_unknown"
