"""Effect estimates of a study through the database: the survey panel, runs and progress, blinding, the pages."""

from __future__ import annotations

from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from participants import prereg
from participants.models import Arm, AuditEvent, Participant, Study
from participants.roles import PI, READER
from rankers.management.commands.enroll_test_participant import create_test_participant
from surveys import effects, services
from surveys.models import EffectRun, Invitation, Wave
from tests.factories import login
from tests.surveys.conftest import make_wave, run_schedule

pytestmark = pytest.mark.django_db

BASE = {"party_id": "democrat", "gender": "female", "age": 2, "education": 5, "income": 4, "socmed_use": 4}


def complete(participant: Participant, wave: Wave, answers: dict[str, Any]) -> None:
    invitation = Invitation.objects.get(participant=participant, wave=wave)
    services.complete_invitation(invitation=invitation, at=timezone.now(), answers={**BASE, **answers})


def survey_two_waves(study: Study, per_arm: int) -> Study:
    """``per_arm`` control and Uprank Bridging participants; bridging lowers outparty hostility at midline."""
    rng = np.random.default_rng(4)
    baseline = make_wave(study, "baseline", target=Wave.Target.CONSENTED, open_days=None)
    midline = make_wave(study, "midline", target=Wave.Target.INCLUDED, open_days=None)
    people = [
        (
            create_test_participant(arm=Arm.objects.get(study=study, slug=slug), past_baseline=True, is_test=False)[0],
            slug,
        )
        for slug in ["control"] * per_arm + ["uprank_bridging"] * per_arm
    ]
    run_schedule()
    for person, slug in people:
        warmth, inparty = int(rng.integers(10, 60)), int(rng.integers(60, 95))
        complete(person, baseline, {"ft_in": inparty, "ft_out": warmth, "gss_trust": int(rng.integers(0, 100))})
        shift = 25 if slug == "uprank_bridging" else 0
        midline_warmth = min(100, warmth + shift + int(rng.integers(-5, 6)))
        complete(person, midline, {"ft_in": inparty, "ft_out": midline_warmth, "gss_trust": int(rng.integers(0, 100))})
    return study


@pytest.fixture
def surveyed(study: Study) -> Study:
    return survey_two_waves(study, per_arm=15)


def test_baseline_answers_are_coded_as_table_s18s_covariates() -> None:
    coded = effects.covariates(
        {"gender": "male", "ethnicity": "white_or_caucasian", "age": 3, "education": 4, "party_id": "independent",
         "party_leaner": "democrat", "income": 7, "socmed_use": 3}
    )  # fmt: skip
    assert coded == {
        "Male": 1.0,
        "White": 1.0,
        "Young": 0.0,
        "Bachelors": 0.0,
        "Democrat": 1.0,
        "IncomeK": 175.0,
        "SocialMediaMoreThan90Min": 0.0,
    }
    missing = effects.covariates({"gender": "prefer_not_to_say", "party_id": "republican"})
    assert missing["Male"] is None
    assert missing["Democrat"] == 0.0
    assert missing["IncomeK"] is None


def test_survey_panel_has_a_row_per_completed_response_with_standardized_indexes(surveyed: Study) -> None:
    panel = effects.survey_panel(surveyed)
    assert len(panel) == 60
    assert set(panel["period"]) == {0, 1}
    assert (panel["post"] == (panel["period"] == 1)).all()
    assert set(panel.loc[panel["is_control"], "arm"]) == {"control"}
    baseline_control = panel[(panel["period"] == 0) & panel["is_control"]]
    assert baseline_control["affective_polarization"].mean() == pytest.approx(0, abs=1e-9)
    assert baseline_control["affective_polarization"].std() == pytest.approx(1)


def test_a_run_estimates_the_planted_effect_pooled_and_per_arm_and_reports_progress(surveyed: Study) -> None:
    seen: list[tuple[int, int]] = []
    run = effects.run_effects(study=surveyed, progress=lambda done, total: seen.append((done, total)))
    assert run.status == EffectRun.Status.DONE
    assert run.done == run.total == len(seen) == len(effects.SURVEY_OUTCOMES) * 6
    assert seen[-1] == (run.total, run.total)
    by_key = {(e["outcome"], e["sample"]): e for e in run.estimates}
    pooled = by_key[("affective_polarization", "pooled")]
    bridging = by_key[("affective_polarization", "uprank_bridging")]
    assert pooled["ci_high"] < 0  # warmer towards the outparty: less polarized
    assert bridging["estimate"] == pytest.approx(pooled["estimate"])  # the only treated arm with anyone in it
    assert pooled["n_participants"] == 30
    assert {"spec": "S3", "outcome": "affective_polarization", "sample": "add_news"} in run.notes


def test_only_one_run_per_study_at_a_time_and_a_dead_one_is_failed(surveyed: Study) -> None:
    stuck = EffectRun.objects.create(study=surveyed)
    with pytest.raises(effects.AlreadyRunning):
        effects.run_effects(study=surveyed)
    EffectRun.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - effects.STALE_AFTER * 2)
    assert effects.run_effects(study=surveyed).status == EffectRun.Status.DONE
    stuck.refresh_from_db()
    assert stuck.status == EffectRun.Status.FAILED


def test_the_command_runs_the_estimates_by_hand_with_progress(surveyed: Study) -> None:
    out = StringIO()
    call_command("compute_effects", "--study", surveyed.slug, stdout=out)
    text = out.getvalue()
    assert f"{surveyed.slug}: 1/" in text
    assert f"{surveyed.slug}: done," in text
    assert EffectRun.objects.get(study=surveyed).status == EffectRun.Status.DONE


def test_blinded_page_shows_only_the_pooled_estimate_and_names_no_arm(surveyed: Study) -> None:
    effects.run_effects(study=surveyed)
    page = login("reader", READER).get("/research/effects/", {"study": surveyed.slug})
    assert page.status_code == 200
    assert {e.sample for e in page.context["estimates"]} == {"pooled"}
    html = page.content.decode()
    assert "Blinded:" in html
    assert 'id="effects-chart-sd"' in html
    assert 'id="effects-chart-minutes"' not in html  # no S1 estimate: no chart in minutes
    assert "uprank_bridging" not in html
    assert "add_news" not in html
    assert "unblind-form" not in html  # only a PI may unblind


def test_a_reader_cannot_unblind_and_a_pi_can_with_a_reason_audited(surveyed: Study) -> None:
    effects.run_effects(study=surveyed)
    refused = login("reader", READER).post("/research/effects/unblind/", {"study": surveyed.slug, "reason": "x"})
    assert refused.status_code == 403
    assert not prereg.is_unblinded(surveyed)
    pi = login("pi", PI)
    assert "unblind-form" in pi.get("/research/effects/", {"study": surveyed.slug}).content.decode()
    no_reason = pi.post("/research/effects/unblind/", {"study": surveyed.slug, "reason": ""})
    assert no_reason.status_code == 400
    done = pi.post("/research/effects/unblind/", {"study": surveyed.slug, "reason": "endline closed"})
    assert done.status_code == 302
    assert AuditEvent.objects.get(action="effects.unblinded").actor_label == "pi"
    page = login("reader2", READER).get("/research/effects/", {"study": surveyed.slug})
    assert {e.sample for e in page.context["estimates"]} == {"pooled", "uprank_bridging"}
    assert "Unblinded" in page.content.decode()


def test_recompute_queues_the_study_and_the_page_shows_a_run_in_progress(
    surveyed: Study, django_capture_on_commit_callbacks: Any
) -> None:
    reader = login("reader", READER)
    with django_capture_on_commit_callbacks(execute=True):
        response = reader.post("/research/effects/recompute/", {"study": surveyed.slug})
    assert response.status_code == 302
    assert EffectRun.objects.get(study=surveyed).status == EffectRun.Status.DONE  # tasks run eagerly in tests
    EffectRun.objects.create(study=surveyed, total=12, done=3)
    html = reader.get("/research/effects/", {"study": surveyed.slug}).content.decode()
    assert "Computing estimates: 3 of 12" in html
    assert 'http-equiv="refresh"' in html


def test_nightly_task_covers_live_studies_and_skips_one_already_running(surveyed: Study) -> None:
    from surveys.tasks import compute_effects

    EffectRun.objects.create(study=surveyed)
    assert compute_effects() == {surveyed.slug: "already running"}
    EffectRun.objects.all().delete()
    assert compute_effects() == {surveyed.slug: "done"}


def test_balance_page_shows_table_s18_retention_consort_and_s19(surveyed: Study) -> None:
    page = login("reader", READER).get("/research/balance/", {"study": surveyed.slug})
    assert page.status_code == 200
    rows = {(r.covariate, r.group): r for r in page.context["balance"]}
    income = rows[("IncomeK", "Treatment")]
    assert (income.control_n, income.group_n) == (15, 15)
    assert income.control_mean == income.group_mean == 62.5
    html = page.content.decode()
    assert 'id="retention-chart"' in html
    assert 'id="consort-flow"' in html
    assert "Midline survey: completed / invited" in html
    assert "(1) Treatment" in html
    control = next(arm for arm in page.context["consort"] if arm.arm == "Control")
    assert [(w.wave, w.completed) for w in control.waves] == [("Baseline survey", 15), ("Midline survey", 15)]
