"""External mode: the link forwards the pseudonymous id; the tool's signed callback records the completion."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client

from participants.models import AuditEvent, ConsentDocument, Payment, RecruitmentSource, Study
from participants.vendors import sign_query
from surveys.models import Invitation, Response, Wave
from tests.surveys.conftest import enrol, link_in, make_wave, run_schedule
from tests.threads import run_at_once

pytestmark = pytest.mark.django_db
SECRET = "callback-secret"


@pytest.fixture
def external(study: Study) -> Wave:
    return make_wave(
        study,
        "midline",
        mode=Wave.Mode.EXTERNAL,
        external_url="https://survey.example/jfe/form/SV_1?pid={pid}&wave={wave}",
        callback_secret=SECRET,
    )


def signed(query: str, secret: str = SECRET) -> str:
    return f"{query}&sig={sign_query(query, secret)}"


def test_the_link_forwards_to_the_external_tool_with_the_pseudonymous_id(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, external: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()

    forwarded = client.get(link_in(mail.outbox[-1]))

    assert forwarded.status_code == 302
    assert forwarded["Location"] == f"https://survey.example/jfe/form/SV_1?pid={participant.public_id}&wave=midline"
    assert participant.email not in forwarded["Location"]


def test_a_signed_callback_completes_the_wave_once(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, external: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    query = signed(f"study={external.study.slug}&wave=midline&pid={participant.public_id}")

    first = client.post(f"/api/v1/surveys/callback?{query}")
    again = client.get(f"/api/v1/surveys/callback?{query}")

    assert first.status_code == 200
    assert first.json() == {"completed": True}
    assert again.status_code == 200
    assert "Thank you" in again.content.decode()
    invitation = Invitation.objects.get(participant=participant)
    assert invitation.completed_at is not None
    assert Response.objects.get(participant=participant).source == "external"
    assert AuditEvent.objects.filter(action="survey.completed", object_id=participant.public_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_callbacks_arriving_at_once_complete_the_wave_and_owe_its_payment_once(
    source: RecruitmentSource, consent_doc: ConsentDocument, study: Study
) -> None:
    wave = make_wave(
        study,
        "midline",
        mode=Wave.Mode.EXTERNAL,
        external_url="https://survey.example/s?pid={pid}",
        callback_secret=SECRET,
        payment_amount="5.00",
    )
    participant, _, _ = enrol(Client(), source, consent_doc, "p1")
    run_schedule()
    query = signed(f"study={study.slug}&wave={wave.slug}&pid={participant.public_id}")

    replies = run_at_once(4, lambda _: Client().post(f"/api/v1/surveys/callback?{query}"))

    assert [(r.status_code, r.json()) for r in replies] == [(200, {"completed": True})] * 4  # type: ignore[attr-defined]
    assert Response.objects.filter(participant=participant, completed_at__isnull=False).count() == 1
    payment = Payment.objects.get(participant=participant)
    assert (payment.kind, payment.amount, payment.status) == ("survey", Decimal("5.00"), "owed")
    assert AuditEvent.objects.filter(action="survey.completed", object_id=participant.public_id).count() == 1


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("study={study}&wave=midline&pid={pid}&sig=00", 403, "bad_signature"),
        ("study={study}&wave=midline&pid={pid}", 403, "bad_signature"),
        ("SIGNED:study={study}&wave=midline&pid=p_unknown", 404, "unknown_participant"),
        ("SIGNED:study={study}&wave=endline&pid={pid}", 404, "unknown_wave"),
    ],
)
def test_a_bad_callback_is_refused_logged_and_changes_nothing(
    client: Client,
    source: RecruitmentSource,
    consent_doc: ConsentDocument,
    external: Wave,
    query: str,
    status: int,
    code: str,
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    filled = query.format(study=external.study.slug, pid=participant.public_id)
    if filled.startswith("SIGNED:"):
        filled = signed(filled.removeprefix("SIGNED:"))

    refused = client.post(f"/api/v1/surveys/callback?{filled}")

    assert refused.status_code == status
    assert refused.json()["error"]["code"] == code
    assert Invitation.objects.get(participant=participant).completed_at is None
    assert not Response.objects.filter(completed_at__isnull=False).exists()
    assert AuditEvent.objects.filter(action="survey.callback_refused", detail__code=code).count() == 1


def test_a_callback_after_the_window_closed_is_refused(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, external: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    Invitation.objects.update(closes_at=Invitation.objects.get().opens_at)
    query = signed(f"study={external.study.slug}&wave=midline&pid={participant.public_id}")

    refused = client.post(f"/api/v1/surveys/callback?{query}")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "closed"
    assert Invitation.objects.get().completed_at is None
