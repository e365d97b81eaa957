"""The launch checklist's survey waves, through the study and wave admin pages; the instrument library migration."""

from __future__ import annotations

import datetime as dt
import html
import importlib

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client

from participants.models import Study
from participants.roles import PI, create_roles
from surveys import library
from surveys.launch_checks import wave_problems
from surveys.models import Instrument, Question, Wave
from tests.factories import StudyFactory, login
from tests.participants.study_admin import change_status, library_instrument, ready_study, study_form, wave_form

pytestmark = pytest.mark.django_db

STUDIES = "/admin/participants/study/"
WAVES = "/admin/surveys/wave/"
MIGRATION = "0004_load_instrument_library"


@pytest.fixture(autouse=True)
def roles() -> dict[str, Group]:
    return create_roles()


@pytest.fixture
def pi() -> Client:
    return login("pi", PI)


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def checklist(client: Client, study: Study) -> str:
    return text(client.get(f"{STUDIES}{study.pk}/checklist/"))


def status_of(study: Study) -> str:
    study.refresh_from_db()
    return study.status


def test_recruiting_waits_for_a_baseline_wave_and_starts_once_one_is_added_in_the_admin(pi: Client) -> None:
    study = ready_study()
    study.waves.all().delete()

    before = checklist(pi, study)
    refused = change_status(pi, study, Study.Status.RECRUITING)
    added = pi.post(f"{WAVES}add/", wave_form(study))
    after = checklist(pi, study)
    allowed = change_status(pi, study, Study.Status.RECRUITING)

    assert "Participants are included only once they complete the baseline survey: add an active baseline" in before
    assert "7 of 8 checks pass" in before
    assert "Survey waves are ready: Participants are included only once" in text(refused)
    assert added.status_code == 302, text(added)
    assert "8 of 8 checks pass" in after
    assert "Baseline survey (baseline, prc-baseline; opens at signup, open 14 days): ready" in after
    assert f"{study.name} is now recruiting." in text(allowed)
    assert status_of(study) == Study.Status.RECRUITING


def test_a_study_that_does_not_wait_for_the_baseline_recruits_without_waves(pi: Client) -> None:
    study = ready_study()
    study.waves.all().delete()

    form_page = text(pi.get(f"{STUDIES}{study.pk}/change/"))
    saved = pi.post(f"{STUDIES}{study.pk}/change/", study_form(study, inclusion_needs_baseline=False))
    page = checklist(pi, study)
    allowed = change_status(pi, study, Study.Status.RECRUITING)

    assert saved.status_code == 302, text(saved)
    assert 'name="inclusion_needs_baseline"' in form_page
    assert "No survey waves; inclusion does not wait for a baseline survey." in page
    assert f"{study.name} is now recruiting." in text(allowed)


def test_an_external_wave_without_its_link_and_secret_shows_each_reason_and_blocks_recruiting(pi: Client) -> None:
    study = ready_study()
    midline = wave_form(study, slug="midline", name="Midline survey", kind=Wave.Kind.MIDLINE, mode="external")
    midline |= {"instrument": library_instrument("prc-midline").pk, "opens_after_days": "60"}

    added = pi.post(f"{WAVES}add/", midline)
    page = checklist(pi, study)
    refused = change_status(pi, study, Study.Status.RECRUITING)

    assert added.status_code == 302, text(added)
    assert '<li class="line-ok">' in page  # the baseline wave is fine
    assert (
        "Midline survey (midline, external tool; opens 60 days after signup, open 14 days): External mode needs the"
        " survey tool's link. External mode needs the callback secret" in page
    )
    assert "Midline survey: External mode needs the survey tool's link." in text(refused)
    assert status_of(study) == Study.Status.DRAFT


def test_a_wave_that_closes_before_it_opens_blocks_recruiting_until_its_window_is_mended(pi: Client) -> None:
    study = ready_study()
    fixed = {"opens_after_days": "", "open_days": "", "opens_at_0": "2027-03-10", "opens_at_1": "00:00:00"}
    fixed |= {"closes_at_0": "2027-03-01", "closes_at_1": "00:00:00"}
    pi.post(f"{WAVES}add/", wave_form(study, slug="endline", name="Endline survey", kind="endline", **fixed))
    endline = Wave.objects.get(study=study, slug="endline")

    refused = change_status(pi, study, Study.Status.RECRUITING)
    mended = wave_form(study, slug="endline", name="Endline survey", kind="endline", **fixed)
    pi.post(f"{WAVES}{endline.pk}/change/", mended | {"closes_at_0": "2027-03-24"})
    allowed = change_status(pi, study, Study.Status.RECRUITING)

    assert "Endline survey: Its window must open before it closes." in text(refused)
    assert f"{study.name} is now recruiting." in text(allowed)


def test_the_inclusion_rule_is_read_only_once_the_study_has_left_draft(pi: Client) -> None:
    study = ready_study(Study.Status.RECRUITING)

    page = text(pi.get(f"{STUDIES}{study.pk}/change/"))
    pi.post(
        f"{STUDIES}{study.pk}/change/",
        study_form(study, inclusion_needs_baseline=False, inclusion_days=3, change_reason="shorter"),
    )

    assert 'name="inclusion_needs_baseline"' not in page
    assert 'name="inclusion_days"' not in page
    study.refresh_from_db()
    assert (study.inclusion_needs_baseline, study.inclusion_days) == (True, 7)


@pytest.mark.parametrize(
    ("fields", "questions", "reason"),
    [
        ({"mode": "external", "callback_secret": "s"}, 0, "External mode needs the survey tool's link."),
        ({"mode": "external", "external_url": "https://tool.example/s", "callback_secret": "s"}, 0, "contain {pid}"),
        ({"mode": "external", "external_url": "https://tool.example/s?p={pid}"}, 0, "needs the callback secret"),
        ({}, 0, "Its instrument prc-baseline has no questions."),
        ({"opens_at": dt.datetime(2027, 3, 1, tzinfo=dt.UTC)}, 5, "either fixed dates or days after signup"),
        ({"opens_after_days": None, "closes_at": dt.datetime(2027, 3, 1, tzinfo=dt.UTC)}, 5, "open before it closes"),
        ({"target": Wave.Target.INCLUDED}, 5, "would include nobody"),
    ],
)
def test_each_wave_problem_has_its_reason(fields: dict[str, object], questions: int, reason: str) -> None:
    study = StudyFactory(status=Study.Status.DRAFT)
    wave = Wave(study=study, kind=Wave.Kind.BASELINE, instrument=Instrument(slug="prc-baseline"), opens_after_days=0)
    for name, value in fields.items():
        setattr(wave, name, value)

    problems = wave_problems(wave, question_count=questions)

    assert any(reason in problem for problem in problems), problems


def test_a_complete_wave_has_no_problems() -> None:
    study = StudyFactory(status=Study.Status.DRAFT)
    fixed = {"opens_at": dt.datetime(2027, 3, 1, tzinfo=dt.UTC), "closes_at": dt.datetime(2027, 3, 8, tzinfo=dt.UTC)}
    wave = Wave(study=study, kind=Wave.Kind.MIDLINE, instrument=Instrument(slug="prc-midline"), **fixed)
    external = Wave(
        study=study,
        kind=Wave.Kind.BASELINE,
        instrument=Instrument(slug="prc-baseline"),
        opens_after_days=0,
        mode=Wave.Mode.EXTERNAL,
        external_url="https://tool.example/s?p={pid}",
        callback_secret="s",
    )

    assert wave_problems(wave, question_count=5) == []
    assert wave_problems(external, question_count=0) == []


def test_the_migration_loads_the_whole_library_into_an_empty_database_and_can_run_again() -> None:
    Instrument.objects.all().delete()
    migration = importlib.import_module(f"surveys.migrations.{MIGRATION}")
    historical = MigrationLoader(connection).project_state(("surveys", MIGRATION)).apps

    migration.load_library(historical, connection.schema_editor())
    first = list(Question.objects.order_by("id").values_list("instrument__slug", "position", "key"))
    migration.load_library(historical, connection.schema_editor())

    assert sorted(Instrument.objects.values_list("slug", flat=True)) == ["prc-baseline", "prc-endline", "prc-midline"]
    assert len(first) == sum(len(spec["questions"]) for spec in library.INSTRUMENTS)
    assert list(Question.objects.order_by("id").values_list("instrument__slug", "position", "key")) == first
