"""The survey dashboard (completion by wave and arm, reminders, Table S19) and the audited CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.utils import timezone

from participants.models import Arm, AuditEvent, Participant, Study
from participants.roles import PI, READER
from rankers.management.commands.enroll_test_participant import create_test_participant
from surveys import services
from surveys.models import Invitation, Wave
from tests.factories import login
from tests.surveys.conftest import make_wave, run_schedule

pytestmark = pytest.mark.django_db

ANSWERS = {"party_id": "democrat", "ft_in": 80, "ft_out": 20, "sd_in": 6, "sd_out": 2, "gss_trust": 40}


def people(study: Study, slug: str, n: int) -> list[Participant]:
    arm = Arm.objects.get(study=study, slug=slug)
    return [create_test_participant(arm=arm, past_baseline=True, is_test=False)[0] for _ in range(n)]


def complete(participant: Participant, wave: Wave, **answers: Any) -> None:
    invitation = Invitation.objects.get(participant=participant, wave=wave)
    services.complete_invitation(invitation=invitation, at=timezone.now(), answers={**ANSWERS, **answers})


@pytest.fixture
def surveyed(study: Study) -> Study:
    control, bridging = people(study, "control", 4), people(study, "uprank_bridging", 2)
    baseline = make_wave(study, "baseline", target=Wave.Target.CONSENTED, open_days=None)
    midline = make_wave(study, "midline", target=Wave.Target.INCLUDED, open_days=None)
    run_schedule()
    for n, person in enumerate(control + bridging):
        complete(person, baseline, ft_in=60 + 10 * n, ft_out=40 - 5 * n, sd_out=1 + n % 3, note="free text")
    for person in (control[0], control[1], bridging[0]):
        complete(person, midline)
    Participant.objects.filter(pk=control[0].pk).update(email="someone@example.org")
    return study


def test_researchers_see_completion_and_reminders_by_wave_and_arm(surveyed: Study) -> None:
    page = login("reader", READER).get("/research/surveys/", {"study": surveyed.slug})

    assert page.status_code == 200
    rows = {(r.wave, r.arm): (r.invited, r.completed, r.reminders_cancelled) for r in page.context["totals"]}
    assert rows[("Midline survey", "Control")] == (4, 2, 6)
    assert rows[("Midline survey", "Uprank Bridging")] == (2, 1, 3)
    assert rows[("Baseline survey", "Control")] == (4, 4, 12)
    html = page.content.decode()
    assert 'id="completion-chart"' in html
    assert "Differential attrition" in html


def test_differential_attrition_regresses_follow_up_completion_on_treatment(surveyed: Study) -> None:
    models = login("reader", READER).get("/research/surveys/", {"study": surveyed.slug}).context["attrition"]

    treatment = {c.name: c for c in models[0].coefficients}
    assert models[0].n == 6
    assert treatment["(Intercept)"].estimate == pytest.approx(2 / 4)  # control completion rate
    assert treatment["Treatment"].estimate == pytest.approx(1 / 2 - 2 / 4)
    by_title = {model.title: model for model in models}
    each_arm = {c.name for c in by_title["(3) Each arm"].coefficients}
    assert each_arm == {"(Intercept)", "Uprank Bridging"}
    interaction = {c.name for c in by_title["(2) Treatment x predicted survival"].coefficients}
    assert interaction == {"(Intercept)", "Treatment", "Survival score", "Treatment x survival score"}


def test_the_csv_export_is_pseudonymous_standardized_and_audited(surveyed: Study) -> None:
    response = login("pi", PI).get("/research/surveys/responses.csv", {"study": surveyed.slug})

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 9
    assert all(row["participant"].startswith("p_") for row in rows)
    assert "someone@example.org" not in response.content.decode()
    baseline_control = [row for row in rows if row["wave"] == "baseline" and row["arm"] == "control"]
    z = [float(row["z.affective_polarization"]) for row in baseline_control]
    assert sum(z) == pytest.approx(0.0, abs=1e-9)  # standardized against the control group at baseline
    assert rows[0]["ft_in"] == "60"
    event = AuditEvent.objects.get(action="export.survey_responses")
    assert (event.actor_label, event.detail["rows"], event.detail["free_text"]) == ("pi", 9, False)


def test_people_without_a_research_role_cannot_see_or_export(surveyed: Study, client: Any) -> None:
    assert client.get("/research/surveys/").status_code == 302
    assert login("nobody").get("/research/surveys/responses.csv", {"study": surveyed.slug}).status_code == 403
    assert not AuditEvent.objects.filter(action="export.survey_responses").exists()


def test_test_participants_are_left_out_of_the_survey_pages_and_the_export(surveyed: Study) -> None:
    tester = people(surveyed, "control", 1)[0]
    Participant.objects.filter(pk=tester.pk).update(is_test=True)
    run_schedule()
    complete(tester, Wave.objects.get(study=surveyed, kind="baseline"), ft_in=0, ft_out=100)

    export = login("pi", PI).get("/research/surveys/responses.csv", {"study": surveyed.slug})
    page = login("reader", READER).get("/research/surveys/", {"study": surveyed.slug})

    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert len(rows) == 9
    assert tester.public_id not in {row["participant"] for row in rows}
    totals = {(r.wave, r.arm): (r.invited, r.completed) for r in page.context["totals"]}
    assert totals[("Baseline survey", "Control")] == (4, 4)
