"""Fixtures for survey tests: the library loaded, a study with the paper's arms and waves, and HTTP helpers."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django import forms
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from participants.models import ConsentDocument, ExtensionInstall, Participant, RecruitmentSource, Study
from surveys.models import Instrument, Wave
from tests.factories import ConsentDocumentFactory, SourceFactory, StudyFactory, paper_arms
from tests.participants.conftest import install_page_secrets, sign_up

LINK = re.compile(r"https?://[^\s]+/survey/([^/\s]+)/")


@pytest.fixture
def study() -> Study:
    call_command("load_instruments", stdout=StringIO())
    study = StudyFactory()
    paper_arms(study)
    return study


@pytest.fixture
def source(study: Study) -> RecruitmentSource:
    return SourceFactory(study=study, slug="panel", pid_param="pid")


@pytest.fixture
def consent_doc(study: Study) -> ConsentDocument:
    return ConsentDocumentFactory(study=study)


def make_wave(study: Study, kind: str = "baseline", **fields: Any) -> Wave:
    defaults: dict[str, Any] = {"opens_after_days": 0, "open_days": 30, "target": Wave.Target.INSTALLED}
    defaults.update(fields)
    return Wave.objects.create(
        study=study,
        slug=kind,
        name=f"{kind.title()} survey",
        kind=kind,
        instrument=Instrument.objects.get(slug=f"prc-{kind if kind != 'other' else 'midline'}"),
        **defaults,
    )


@pytest.fixture
def baseline(study: Study) -> Wave:
    return make_wave(study, "baseline")


def enrol(
    client: Client, source: RecruitmentSource, document: ConsentDocument, pid: str, email: str = ""
) -> tuple[Participant, str, str]:
    """Sign up through HTTP and register the extension: (participant, status key, extension token)."""
    participant = sign_up(client, source, pid, document)
    code, key = install_page_secrets(client)
    token = client.post(
        "/api/v1/extension/register",
        {"enrolment_code": code, "install_key": f"install-key-{pid}"},
        content_type="application/json",
    ).json()["token"]
    Participant.objects.filter(pk=participant.pk).update(email=email or f"{pid}@example.org")
    participant.refresh_from_db()
    return participant, key, token


def run_schedule(at: dt.datetime | None = None) -> str:
    out = StringIO()
    args = ["--at", at.isoformat()] if at else []
    call_command("run_survey_schedule", *args, stdout=out)
    return out.getvalue()


def link_in(message: mail.EmailMessage) -> str:
    found = LINK.search(str(message.body))
    assert found, message.body
    return f"/survey/{found.group(1)}/"


def fill(page: Any, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid POST for the page in ``page.context``: first choice, 50 on number fields, overrides last."""
    data: dict[str, Any] = {"action": "next"}
    for name, field in page.context["form"].fields.items():
        if isinstance(field, forms.TypedChoiceField | forms.TypedMultipleChoiceField):
            data[name] = str(field.choices[0][0])
        elif isinstance(field, forms.IntegerField):
            data[name] = "50"
        elif isinstance(field, forms.CharField) and not name.endswith("__write_in"):
            data[name] = "An answer"
    data.update(overrides or {})
    return data


def answer_all(client: Client, url: str, overrides: dict[str, Any] | None = None, limit: int = 20) -> list[str]:
    """Answer every page of the survey at ``url``; the progress labels seen, in order."""
    progress = []
    for _ in range(limit):
        page = client.get(url)
        if "form" not in (page.context or {}):
            return progress
        progress.append(re.search(r'data-testid="progress">([^<]+)<', page.content.decode()).group(1))  # type: ignore[union-attr]
        posted = client.post(url, fill(page, overrides))
        assert posted.status_code == 302, posted.content.decode()[:3000]
    raise AssertionError("survey did not end")


def age_install(participant: Participant, days: float = 8) -> None:
    ExtensionInstall.objects.filter(participant=participant).update(
        installed_at=timezone.now() - dt.timedelta(days=days)
    )


PAYMENT = Decimal("5.00")
