"""Fixtures and HTTP helpers for the participant journey."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from participants.models import ConsentDocument, Participant, RecruitmentSource, Study
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms

ELIGIBLE = {
    "device": "laptop",
    "chrome": "yes",
    "platforms": ["facebook", "reddit"],
    "desktop_share": "40",
    "party": "democrat",
    "interest": "yes",
}


@pytest.fixture
def study() -> Study:
    study = StudyFactory()
    paper_arms(study)
    return study


@pytest.fixture
def source(study: Study) -> RecruitmentSource:
    return SourceFactory(study=study, slug="repdata", pid_param="rid")


@pytest.fixture
def consent_doc(study: Study) -> ConsentDocument:
    return ConsentDocumentFactory(study=study)


def join(client: Client, source: RecruitmentSource, pid: str, **extra: str) -> Any:
    return client.get(f"/join/{source.slug}/", {source.pid_param: pid, **extra})


def screen(client: Client, answers: dict[str, Any] | None = None) -> Any:
    return client.post("/signup/screener/", answers or ELIGIBLE)


def consent_form(document: ConsentDocument) -> dict[str, Any]:
    data: dict[str, Any] = {"version": document.version}
    data.update({f"q{i}": "on" for i, _ in enumerate(document.questions)})
    return data


def give_consent(client: Client, document: ConsentDocument) -> Any:
    return client.post("/signup/consent/", consent_form(document))


def sign_up(client: Client, source: RecruitmentSource, pid: str, document: ConsentDocument) -> Participant:
    """Vendor link, eligible screener and consent, through HTTP; the participant at the end."""
    assert join(client, source, pid).status_code == 302
    assert screen(client).status_code == 302
    assert give_consent(client, document).status_code == 302
    return Participant.objects.get(source=source, vendor_pid=pid)


def install_page_secrets(client: Client) -> tuple[str, str]:
    """The enrolment code and status key shown on the install page."""
    html = client.get("/signup/install/").content.decode()
    code = re.search(r'data-testid="enrolment-code">([A-Z0-9-]+)<', html)
    key = re.search(r'href="/p/([^/"]+)/" data-testid="status-link"', html)
    assert code, html
    assert key, html
    return code.group(1), key.group(1)
