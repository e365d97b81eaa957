"""What a closed study does to signups and heartbeats, and one browser per participant (install_key)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from participants.models import (
    AuditEvent,
    ConsentDocument,
    ExtensionInstall,
    Heartbeat,
    Participant,
    RecruitmentSource,
    Study,
)
from tests.participants.conftest import give_consent, install_page_secrets, join, screen, sign_up

pytestmark = pytest.mark.django_db


def register(client: Client, code: str, install_key: str) -> Any:
    body = {"enrolment_code": code, "install_key": install_key}
    return client.post("/api/v1/extension/register", body, content_type="application/json")


def close(study: Study) -> None:
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)  # the transition service is i14's


def test_a_closed_studys_heartbeat_says_stop_collecting_and_stores_nothing(
    client: Client, study: Study, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "hb-1", consent_doc)
    token = register(client, install_page_secrets(client)[0], "browser-aaaa").json()["token"]
    close(study)

    response = client.post(
        "/api/v1/extension/heartbeat", {"heartbeat_id": "h1"}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip

    assert response.status_code == 200
    assert response.json() == {"collect": False, "included": False, "study_closed": True, "heartbeat_interval_s": 3600}
    assert Heartbeat.objects.count() == 0


def test_an_open_studys_heartbeat_says_collect_and_not_closed(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "hb-2", consent_doc)
    token = register(client, install_page_secrets(client)[0], "browser-bbbb").json()["token"]

    body = client.post(
        "/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()

    assert (body["collect"], body["study_closed"]) == (True, False)
    assert Heartbeat.objects.count() == 1


def test_a_closed_study_takes_no_new_signups(client: Client, study: Study, source: RecruitmentSource) -> None:
    close(study)

    response = join(client, source, "late-1")

    assert response.status_code == 404
    assert Participant.objects.count() == 0


def test_someone_half_way_through_signup_when_the_study_closes_sees_that_it_has_ended(
    client: Client, study: Study, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    assert join(client, source, "mid-1").status_code == 302
    assert screen(client).status_code == 302
    close(study)

    response = give_consent(client, consent_doc)

    assert response.status_code == 410
    assert "This study has ended" in response.content.decode()
    participant = Participant.objects.get()
    assert (participant.consented_at, participant.consents.count()) == (None, 0)


def test_an_enrolment_code_from_before_the_close_no_longer_registers(
    client: Client, study: Study, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "code-1", consent_doc)
    code = install_page_secrets(client)[0]
    close(study)

    response = register(client, code, "browser-cccc")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "study_closed",
        "message": "This study has ended and is not taking new participants.",
        "field": "enrolment_code",
    }
    assert ExtensionInstall.objects.count() == 0


def test_an_install_key_registered_to_another_participant_is_refused_and_logged(
    source: RecruitmentSource, consent_doc: ConsentDocument, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = Client(), Client()
    alice = sign_up(first, source, "vendor-id-1", consent_doc)
    bob = sign_up(second, source, "vendor-id-2", consent_doc)  # the same browser, a second vendor identity
    assert register(first, install_page_secrets(first)[0], "one-browser").status_code == 201

    response = register(second, install_page_secrets(second)[0], "one-browser")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "install_key_in_use",
        "message": "This browser is already registered to another participant of this study.",
        "field": "install_key",
    }
    assert list(ExtensionInstall.objects.values_list("participant", flat=True)) == [alice.pk]
    bob.refresh_from_db()
    assert (bob.enrolled_at, bob.enrolment_code_used_at) == (None, None)
    refusal = AuditEvent.objects.get(action="extension.install_key_refused")
    assert (refusal.object_id, refusal.detail["registered_to"]) == (bob.public_id, alice.public_id)
    assert "one-browser" not in str(refusal.detail)
    assert "install key already registered" in caplog.text


def test_the_same_participant_may_register_their_install_key_again(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument
) -> None:
    sign_up(client, source, "again-1", consent_doc)
    code = install_page_secrets(client)[0]

    assert register(client, code, "my-browser").status_code == 201
    assert register(client, code, "my-browser").status_code == 200
    assert not AuditEvent.objects.filter(action="extension.install_key_refused").exists()


def test_an_install_key_may_be_reused_in_another_study(consent_doc: ConsentDocument) -> None:
    from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms

    other_study = StudyFactory()
    paper_arms(other_study)
    other_source = SourceFactory(study=other_study, slug="other", pid_param="rid")
    other_doc = ConsentDocumentFactory(study=other_study)
    first, second = Client(), Client()
    sign_up(first, consent_doc.study.sources.create(name="S", slug="s", pid_param="rid"), "x-1", consent_doc)
    sign_up(second, other_source, "x-2", other_doc)

    assert register(first, install_page_secrets(first)[0], "shared-browser").status_code == 201
    assert register(second, install_page_secrets(second)[0], "shared-browser").status_code == 201
