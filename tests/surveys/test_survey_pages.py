"""A wave answered through our own pages: invitation email, save and resume, validation, piping, completion."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from participants.models import ConsentDocument, Participant, RecruitmentSource
from surveys.library import ISSUES
from surveys.models import Invitation, MessageLog, Response, Wave
from tests.surveys.conftest import age_install, answer_all, enrol, fill, link_in, run_schedule

pytestmark = pytest.mark.django_db


def test_baseline_from_invitation_email_to_completion_includes_the_participant(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, key, _ = enrol(client, source, consent_doc, "p1")
    age_install(participant)

    output = run_schedule()

    assert "invitations_created=1" in output
    assert "emails_sent=1" in output
    assert mail.outbox[-1].to == ["p1@example.org"]
    url = link_in(mail.outbox[-1])
    assert client.get(f"/p/{key}/").context["next_survey"].url == url
    progress = answer_all(client, url, {"party_id": "democrat"})

    assert progress[0] == "Page 1 of 10"
    assert progress[-1] == "Page 10 of 10"
    done = client.get(url)
    assert "already completed" in done.content.decode()
    participant.refresh_from_db()
    assert participant.baseline_completed_at is not None
    assert participant.included_at is not None
    assert participant.ranker_survey["party_id"] == "democrat"
    # The first answer everywhere: extremely liberal (7 on the paper's scale), and 5 on every issue.
    assert participant.baseline_issue_positions == {"ideology": 7, **dict.fromkeys(ISSUES, 5)}
    response = Response.objects.get(participant=participant)
    assert response.completed_at is not None
    assert set(response.indexes) >= {"wellbeing", "affective_polarization", "knowledge", "neely", "trust"}
    assert MessageLog.objects.filter(participant=participant, kind="invitation", status="sent").count() == 1


def test_missing_and_out_of_range_answers_are_shown_next_to_the_question_and_kept(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    url = link_in(mail.outbox[-1])
    client.post(url, {"action": "next", "party_id": "republican"})
    client.post(url, fill(client.get(url)))
    page = client.get(url)
    data = fill(page, {"browser_mobile__facebook": "140", "browser_mobile__x": "", "gender": ""})

    refused = client.post(url, data)

    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Please enter a whole number from 0 to 100." in html
    assert "Please move the slider or tick “Not applicable”" in html
    assert "Please choose an answer." in html
    assert 'value="140"' in html  # what was entered is kept
    assert Response.objects.get(participant=participant).page == 3


def test_answers_are_saved_per_page_and_the_link_resumes_where_the_participant_left(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    enrol(client, source, consent_doc, "p1")
    run_schedule()
    url = link_in(mail.outbox[-1])
    client.post(url, {"action": "next", "party_id": "independent"})

    later = Client().get(url)  # another browser, same link

    assert "Page 2 of 10" in later.content.decode()
    assert "closer to the Republican or Democratic Party" in later.content.decode()
    back = Client().post(url, {"action": "back"})
    assert back.status_code == 302
    again = Client().get(url)
    assert 'value="independent"' in again.content.decode()
    assert "checked" in again.content.decode()


@pytest.mark.parametrize(
    ("answers", "outparty_voters", "strong"),
    [
        ({"party_id": "republican"}, "toward Democratic voters", "a strong Republican or not a very strong Republican"),
        ({"party_id": "democrat"}, "toward Republican voters", "a strong Democrat or not a very strong Democrat"),
        ({"party_id": "independent", "party_leaner": "republican"}, "toward Democratic voters", None),
        ({"party_id": "no_preference", "party_leaner": "democrat"}, "toward Republican voters", None),
        (
            {"party_id": "other", "party_id__write_in": "Green", "party_leaner": "democrat"},
            "toward Republican voters",
            None,
        ),
    ],
)
def test_party_words_are_piped_from_each_party_answer(
    client: Client,
    source: RecruitmentSource,
    consent_doc: ConsentDocument,
    baseline: Wave,
    answers: dict[str, str],
    outparty_voters: str,
    strong: str | None,
) -> None:
    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    url = link_in(mail.outbox[-1])
    assert client.post(url, {"action": "next", **answers}).status_code == 302
    second = client.get(url).content.decode()
    if strong:
        assert strong in second
    else:
        assert "closer to the Republican or Democratic Party" in second
    for _ in range(3):
        client.post(url, fill(client.get(url), answers))

    thermometers = client.get(url).content.decode()

    assert outparty_voters in thermometers
    assert "[outparty" not in thermometers
    assert "[inparty" not in thermometers
    response = Response.objects.get(participant=participant)
    assert response.answers.get("party_id_write_in") == answers.get("party_id__write_in")


def republican_invited_to_a_midline(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> tuple[Participant, str]:
    """A participant who answered the baseline as a Republican, and their link to a midline just opened."""
    from tests.surveys.conftest import make_wave

    participant, _, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    answer_all(client, link_in(mail.outbox[-1]), {"party_id": "republican"})
    make_wave(baseline.study, "midline", payment_amount="5.00")
    run_schedule()
    return participant, link_in(mail.outbox[-1])


def test_follow_up_wave_pipes_from_the_baseline_answers(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, url = republican_invited_to_a_midline(client, source, consent_doc, baseline)
    client.post(url, fill(client.get(url)))

    page = client.get(url).content.decode()

    assert "Page 2 of 6" in page
    assert "toward Democratic voters" in page
    assert "friends who are Republicans" in page
    assert Invitation.objects.filter(participant=participant, completed_at__isnull=True).count() == 1


def test_an_unknown_or_tampered_link_is_not_found(client: Client, baseline: Wave) -> None:
    assert client.get("/survey/1:forged/").status_code == 404


def test_included_needs_baseline_even_after_a_week(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    participant, _, token = enrol(client, source, consent_doc, "p1")
    age_install(participant)

    beat = client.post("/api/v1/extension/heartbeat", {}, content_type="application/json", HTTP_X_EXTENSION_TOKEN=token)

    assert beat.json()["included"] is False
    assert Participant.objects.get(pk=participant.pk).included_at is None


def test_completing_a_paid_wave_owes_its_payment_once_and_the_status_page_shows_it(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    from decimal import Decimal

    from surveys import services
    from tests.surveys.conftest import make_wave

    participant, key, _ = enrol(client, source, consent_doc, "p1")
    run_schedule()
    answer_all(client, link_in(mail.outbox[-1]))
    midline = make_wave(baseline.study, "midline", payment_amount=Decimal("5.00"))
    status = client.get(f"/p/{key}/").content.decode()
    assert "Midline survey: open now" not in status
    run_schedule()
    assert "Midline survey: open now" in client.get(f"/p/{key}/").content.decode()
    answer_all(client, link_in(mail.outbox[-1]))
    invitation = Invitation.objects.get(participant=participant, wave=midline)

    services.complete_invitation(invitation=invitation, at=invitation.completed_at)  # a repeat changes nothing

    payments = list(participant.payments.values_list("amount", "reason", "status"))
    assert payments == [(Decimal("5.00"), "Midline survey", "owed")]
    assert "Not scheduled yet" in client.get(f"/p/{key}/").content.decode()


def test_saving_a_page_of_a_follow_up_reads_the_baseline_answers_and_the_questions_once(
    client: Client, source: RecruitmentSource, consent_doc: ConsentDocument, baseline: Wave
) -> None:
    """Every participant pays for each page they save: the page shown, the page saved and the choice of the next
    page share one read of the baseline answers (the party words) and one of the instrument's questions."""
    participant, url = republican_invited_to_a_midline(client, source, consent_doc, baseline)
    data = fill(client.get(url))

    with CaptureQueriesContext(connection) as queries:
        assert client.post(url, data).status_code == 302

    selects = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert sum('SELECT "surveys_response"."answers" AS "answers"' in sql for sql in selects) == 1
    assert sum(sql.startswith('SELECT "surveys_question"."id"') for sql in selects) == 1
    assert not any(sql.startswith('SELECT "participants_participant"."id"') for sql in selects)
    assert Response.objects.get(participant=participant, wave__kind="midline").page == 2
    assert "toward Democratic voters" in client.get(url).content.decode()  # still piped from the baseline
