"""A whole survey wave in the real browser: the invitation link, every page, completion, the status page."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from playwright.sync_api import Page, expect

from participants.models import Participant
from surveys.models import Invitation, Response
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms
from tests.participants.conftest import install_page_secrets, sign_up
from tests.surveys.conftest import make_wave

pytestmark = pytest.mark.django_db(transaction=True)


def test_participant_answers_the_baseline_in_the_browser_from_the_email_link(live_server: object, page: Page) -> None:
    from django.test import Client

    call_command("load_instruments", stdout=StringIO())
    study = StudyFactory()
    paper_arms(study)
    document = ConsentDocumentFactory(study=study)
    source = SourceFactory(study=study, slug="panel")
    client = Client()
    participant = sign_up(client, source, "browser-1", document)
    _, key = install_page_secrets(client)
    Participant.objects.filter(pk=participant.pk).update(email="browser@example.org")
    make_wave(study, "baseline", target="consented")
    call_command("run_survey_schedule", stdout=StringIO())
    link = re.search(r"/survey/[^/\s]+/", mail.outbox[-1].body).group(0)  # type: ignore[union-attr]

    page.goto(f"{live_server}{link}")
    expect(page.get_by_test_id("progress")).to_have_text("Page 1 of 10")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()  # nothing chosen: the error is shown, nothing saved
    page.check("input[name=party_id][value=democrat]")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("a strong Democrat or not a very strong Democrat")).to_be_visible()
    for page_number in range(2, 11):
        # Wait for the next page itself: reading the form before it has loaded answers the old page twice.
        expect(page.get_by_test_id("progress")).to_have_text(f"Page {page_number} of 10")
        for group in {name for name in page.locator("input[type=radio]").evaluate_all("els => els.map(e => e.name)")}:
            page.locator(f"input[type=radio][name='{group}']").first.check()
        for box in page.locator("input[type=number]").all():
            box.fill("50")
        button = page.get_by_role("button", name=re.compile("Continue|Submit"))
        button.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")

    page.goto(f"{live_server}/p/{key}/")
    expect(page.get_by_test_id("next-survey")).to_have_text("Not scheduled yet")
    assert Response.objects.get(participant=participant).completed_at is not None
    assert Invitation.objects.get(participant=participant).reminders_cancelled == 3
