"""The dress rehearsal (``manage.py simulate_study``): synthetic people through the real endpoints, and the
estimators recovering what it planted.

One small rehearsal runs once for the module (about 30 people over three simulated weeks; tens of seconds on a
loaded two-core machine), then each test reads what it left in the database.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from participants.models import BehaviourEvent, DailyBehaviour, Participant, Payment, Study
from prc_site import simulation
from rankers.models import Slate
from surveys import effects, estimators
from surveys.models import InFeedPrompt, Question, Response

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("simulation")]

SLUG = "sim-test"
PLANTED_TRUST = 0.8  # SDs of the population's trust (the GSS answer, 15 points per SD)
PLANTED_MINUTES = 12.0  # active minutes a day
REHEARSAL = [
    "--slug", SLUG, "--participants", "30", "--weeks", "2", "--seed", "7", "--arms", "control,uprank_bridging",
    "--baseline-days", "2", "--inclusion-days", "2", "--rank-every", "3",
    "--effect", f"trust={PLANTED_TRUST}", "--effect", f"active_minutes={PLANTED_MINUTES}",
]  # fmt: skip


@pytest.fixture(scope="module")
def rehearsed(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """Run the rehearsal once, committed (the slate writer has its own connection); empty the database after."""
    with django_db_blocker.unblock():
        call_command("load_instruments", stdout=StringIO())
        out = StringIO()
        call_command("simulate_study", *REHEARSAL, stdout=out)
        try:
            yield out.getvalue()
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def study(rehearsed: str, db: None) -> Study:
    return Study.objects.get(slug=SLUG)


def test_the_rehearsal_goes_through_every_endpoint_into_a_study_marked_simulated(study: Study, rehearsed: str) -> None:
    assert study.simulated
    assert study.name.startswith("SIMULATED")
    people = Participant.objects.filter(study=study)
    assert people.count() == 30
    assert not people.filter(is_test=True).exists()  # the study's own data: counted by its pages and estimates
    enrolled = people.filter(enrolled_at__isnull=False)
    assert enrolled.count() >= 20
    assert people.filter(stage=Participant.Stage.SCREENED_OUT).exists()
    assert enrolled.filter(included_at__isnull=False).count() >= 20
    # Every slate answered and every event accepted is stored.
    assert Slate.objects.filter(study_id=study.pk).count() == tallied(rehearsed, "slates") > 50
    assert BehaviourEvent.objects.filter(study_id=study.pk).count() == tallied(rehearsed, "events") > 5000
    assert DailyBehaviour.objects.filter(study_id=study.pk).count() > 150
    assert Response.objects.filter(wave__study=study, completed_at__isnull=False).count() > 50
    assert InFeedPrompt.objects.filter(participant__study=study, answered_at__isnull=False).exists()
    assert Payment.objects.filter(participant__study=study, kind=Payment.Kind.SURVEY).count() > 20
    # Every stored time is simulated: nothing after the last simulated day.
    last_day = max(p.enrolled_at for p in enrolled if p.enrolled_at)
    assert last_day < dt.datetime.now(dt.UTC) - dt.timedelta(days=7)


def tallied(output: str, name: str) -> int:
    return int(next(line for line in output.splitlines() if line.strip().startswith(f"{name}:")).split(":")[1])


def test_s3_recovers_the_planted_survey_effect_within_its_confidence_interval(study: Study) -> None:
    """The index is standardized against this sample's control baseline, so the planted effect reads in that
    sample's SD: the population SD (15 points of the GSS answer) over the sample's."""
    baseline = Response.objects.filter(
        wave__study=study,
        wave__kind="baseline",
        completed_at__isnull=False,
        participant__assignment__arm__is_control=True,
    )
    sample_sd = statistics.stdev(r.answers["gss_trust"] for r in baseline) / 15
    expected = PLANTED_TRUST / sample_sd
    panel = effects.survey_panel(study)
    for arm in (None, "uprank_bridging"):
        estimate = estimators.estimate_survey(panel, "trust", arm=arm)
        assert estimate is not None
        assert estimate.ci_low <= expected <= estimate.ci_high, (expected, estimate)
        assert estimate.p_value < 0.05, estimate


def test_outcomes_with_nothing_planted_are_not_significantly_different_from_zero(study: Study) -> None:
    panel = effects.survey_panel(study)
    for outcome in ("wellbeing", "affective_polarization"):
        estimate = estimators.estimate_survey(panel, outcome)
        assert estimate is not None
        assert estimate.ci_low <= 0 <= estimate.ci_high, estimate
        assert estimate.p_value > 0.05, estimate


def test_s1_on_the_rolled_up_daily_panel_recovers_the_planted_active_minutes(study: Study) -> None:
    panel, outcomes = effects.daily_panel(study)
    assert outcomes == ("active_minutes", "views", "engagements")
    for arm in (None, "uprank_bridging"):
        estimate = estimators.estimate_daily(panel, "active_minutes", arm=arm, baseline_days=study.baseline_days)
        assert estimate is not None
        assert estimate.ci_low <= PLANTED_MINUTES <= estimate.ci_high, estimate
        assert estimate.p_value < 0.05, estimate


def test_the_daily_panel_follows_each_participant_from_installation_until_they_leave(study: Study) -> None:
    panel, _ = effects.daily_panel(study)
    tz = ZoneInfo(study.timezone)
    last_day = panel["day"].max()
    for person in Participant.objects.filter(study=study, enrolled_at__isnull=False):
        days = panel.loc[panel["participant"] == person.pk, "day"]
        install = person.installs.get()
        leaves = install.uninstalled_at.astimezone(tz).date() if install.uninstalled_at else None
        assert days.min().date() == person.enrolled_at.astimezone(tz).date()
        assert days.max().date() == (leaves - dt.timedelta(days=1) if leaves else last_day.date())
        assert len(days) == days.nunique() == (days.max() - days.min()).days + 1


def test_the_command_prints_each_estimate_beside_what_was_planted(rehearsed: str) -> None:
    line = next(row for row in rehearsed.splitlines() if "S3 trust " in row and "pooled" in row)
    assert f"planted +{PLANTED_TRUST:.3f}" in line
    assert "planted +0.000" in next(row for row in rehearsed.splitlines() if "S3 wellbeing " in row)
    line = next(row for row in rehearsed.splitlines() if "S1 active_minutes" in row and "uprank_bridging" in row)
    assert f"planted +{PLANTED_MINUTES:.3f}" in line


def test_a_plan_draws_the_same_people_from_the_same_seed_and_others_from_another() -> None:
    plan = simulation.Plan(slug="x", participants=50, weeks=3, seed=3)
    assert simulation.population(plan) == simulation.population(plan)
    other = simulation.population(simulation.Plan(slug="x", participants=50, weeks=3, seed=4))
    assert [p.activity for p in other] != [p.activity for p in simulation.population(plan)]


def test_planted_minutes_add_to_a_persons_day_and_nothing_else_changes() -> None:
    plan = simulation.Plan(slug="x", participants=5, weeks=3, seed=1)
    person = simulation.population(plan)[2]
    untreated = simulation.active_minutes(plan, person, 10, 0.0)
    assert simulation.active_minutes(plan, person, 10, 20.0) == untreated + 20


def test_survey_answers_follow_the_latent_level_of_each_planted_outcome() -> None:
    """Thermometers and friend comfort move apart with polarization; the GSS answer falls as trust rises."""
    questions = [
        Question(key="ft_in", kind="thermometer", min_value=0, max_value=100),
        Question(key="ft_out", kind="thermometer", min_value=0, max_value=100),
        Question(key="gss_trust", kind="slider", min_value=0, max_value=100),
        Question(key="sd_in", kind="likert", options=[{"value": v, "label": str(v)} for v in range(1, 8)]),
    ]
    rng = np.random.default_rng(0)
    calm = simulation.survey_form(questions, {"affective_polarization": 0, "wellbeing": 0, "trust": 0}, rng, "x")
    hot = simulation.survey_form(questions, {"affective_polarization": 1, "wellbeing": 0, "trust": 1}, rng, "x")
    assert (calm["ft_in"], calm["ft_out"], calm["gss_trust"], calm["sd_in"]) == (50, 50, 50, 4)
    # A quarter of the 7-point scale per SD: 4 + 1.5 steps, rounded to even.
    assert (hot["ft_in"], hot["ft_out"], hot["gss_trust"], hot["sd_in"]) == (65, 35, 35, 5)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("affective_polarization=-0.2", ("affective_polarization", {"a": -0.2, "b": -0.2})),
        ("active_minutes:b=10", ("active_minutes", {"b": 10.0})),
    ],
)
def test_an_effect_names_an_outcome_and_optionally_one_arm(text: str, parsed: tuple[str, dict[str, float]]) -> None:
    assert simulation.parse_effect(text, ["control", "a", "b"]) == parsed


@pytest.mark.parametrize("text", ["happiness=1", "trust:control=1", "trust:zz=1", "trust=lots", "trust"])
def test_an_effect_on_an_unknown_outcome_or_arm_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        simulation.parse_effect(text, ["control", "a"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arms", "control,nonsense"], "Unknown arms"),
        (["--arms", "control"], "treatment arm"),
        (["--weeks", "1"], "too few"),
        (["--effect", "trust:add_news=1", "--arms", "control,uprank_bridging"], "not a treatment arm"),
    ],
)
def test_the_command_refuses_a_plan_it_cannot_run(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate_study", "--slug", "sim-refused", *args, stdout=StringIO())
    assert not Study.objects.filter(slug="sim-refused").exists()


@pytest.mark.django_db
def test_the_command_is_refused_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("simulate_study", "--slug", "sim-prod", stdout=StringIO())
