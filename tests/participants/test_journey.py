"""The whole participant journey through HTTP, from the vendor's link to inclusion after a week."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from participants import services
from participants.models import (
    AuditEvent,
    ConsentDocument,
    ExtensionInstall,
    Heartbeat,
    Participant,
    RecruitmentSource,
    VendorEvent,
)
from participants.randomization import stratum_code
from tests.participants.conftest import ELIGIBLE, give_consent, install_page_secrets, join, screen

pytestmark = pytest.mark.django_db


def test_vendor_link_to_included_participant(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    entry = join(client, source, "RD 123/ä")
    assert entry.status_code == 302
    assert entry["Location"] == "/signup/"
    participant = Participant.objects.get(source=source)
    assert participant.vendor_pid == "RD 123/ä"
    assert client.get("/signup/").status_code == 200
    assert client.get("/signup/screener/").status_code == 200

    assert screen(client)["Location"] == "/signup/consent/"
    consent_page = client.get("/signup/consent/")
    assert consent_doc.text in consent_page.content.decode()

    assert give_consent(client, consent_doc)["Location"] == "/signup/install/"
    code, status_key = install_page_secrets(client)
    participant.refresh_from_db()
    assert participant.stage == Participant.Stage.CONSENTED
    # Unstratified: everyone in one stratum, stored as its opaque code.
    assert participant.assignment.stratum == stratum_code(participant.study.randomization_seed, "all")
    assert participant.vendor_outcome == "complete"
    assert participant.has_current_consent()

    back = client.get("/signup/return/")
    assert back["Location"] == "https://vendor.example/complete?id=RD%20123%2F%C3%A4"

    registered = client.post(
        "/api/v1/extension/register",
        {
            "enrolment_code": code.lower().replace("-", " "),
            "install_key": "install-abc-123",
            "extension_version": "1.2",
        },
        content_type="application/json",
    )
    assert registered.status_code == 201, registered.content
    body = registered.json()
    assert body["user_id"] == participant.public_id
    assert body["config"]["slate_sizes"]["facebook"]["posts"] == [10, 35]
    assert body["config"]["slate_sizes"]["reddit"] == {"posts": 50, "comments": None}
    token = body["token"]

    alive = client.post(
        "/api/v1/extension/heartbeat",
        {"platform": "reddit"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert alive.json() == {"collect": True, "included": False, "study_closed": False, "heartbeat_interval_s": 3600}

    # A week later (the install row is moved back in time rather than sleeping).
    ExtensionInstall.objects.filter(participant=participant).update(
        installed_at=timezone.now() - dt.timedelta(days=7, minutes=1)
    )
    later = client.post(
        "/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token
    )
    assert later.json()["included"] is False  # a week installed, but the baseline survey is not done yet

    services.record_baseline_completion(participant=participant, at=timezone.now(), ranker_survey={})
    again = client.post(
        "/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token
    )
    assert again.json()["included"] is True
    participant.refresh_from_db()
    assert participant.included_at is not None
    assert participant.stage == Participant.Stage.ENROLLED
    assert Heartbeat.objects.filter(install__participant=participant).count() == 3

    status = client.get(f"/p/{status_key}/")
    assert status.status_code == 200
    assert "Not scheduled yet" in status.content.decode()

    kinds = list(VendorEvent.objects.filter(participant=participant).values_list("kind", "outcome"))
    assert kinds == [("inbound", ""), ("redirect", "complete")]
    actions = set(AuditEvent.objects.filter(object_id=participant.public_id).values_list("action", flat=True))
    assert {
        "consent.given",
        "assignment.created",
        "vendor.outcome",
        "extension.registered",
        "participant.included",
    } <= actions


def test_participant_is_not_included_before_the_inclusion_days(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    source.study.inclusion_days = 10
    source.study.save()
    join(client, source, "p1")
    screen(client)
    give_consent(client, consent_doc)
    code, _ = install_page_secrets(client)
    token = client.post(
        "/api/v1/extension/register", {"enrolment_code": code, "install_key": "k" * 10}, content_type="application/json"
    ).json()["token"]
    ExtensionInstall.objects.update(installed_at=timezone.now() - dt.timedelta(days=8))
    reply = client.post(
        "/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token
    )
    assert reply.json()["included"] is False
    assert Participant.objects.get().included_at is None


def test_stratified_study_puts_party_into_the_stratum(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    source.study.strata_fields = ["party"]
    source.study.save()
    join(client, source, "p1")
    screen(client, {**ELIGIBLE, "party": "republican"})
    give_consent(client, consent_doc)
    participant = Participant.objects.get()
    assert participant.strata == {"party": "republican"}
    # Stored as an opaque code: the assignment outlives an erasure, the party must not.
    assert participant.assignment.stratum == stratum_code(source.study.randomization_seed, "party=republican")


def test_no_participant_page_or_api_reveals_the_arm(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "p1")
    screen(client)
    give_consent(client, consent_doc)
    code, key = install_page_secrets(client)
    arm = Participant.objects.get().assignment.arm
    register = client.post(
        "/api/v1/extension/register", {"enrolment_code": code, "install_key": "k" * 10}, content_type="application/json"
    )
    pages = [client.get("/signup/install/"), client.get(f"/p/{key}/"), client.get(f"/p/{key}/consent/"), register]
    for page in pages:
        text = page.content.decode()
        assert arm.slug not in text
        assert arm.name not in text
    assert set(register.json()) == {"token", "user_id", "config"}


def test_reloading_the_vendor_link_in_the_same_browser_resumes_signup(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    join(client, source, "p1")
    screen(client)
    again = join(client, source, "p1")
    assert again["Location"] == "/signup/"
    assert client.get("/signup/")["Location"] == "/signup/consent/"
    assert Participant.objects.count() == 1
