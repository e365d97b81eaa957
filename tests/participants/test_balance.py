"""Table S18, figure S11 and the CONSORT flow against values worked out by hand on small data."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from scipy import stats

from participants import balance
from participants.dashboard import ConsortRow
from participants.models import Assignment, ExtensionInstall, Study
from tests.factories import ParticipantFactory

D = dt.date


def subject(arm: str, **covariates: float | None) -> balance.Subject:
    return balance.Subject(arm=arm, is_control=arm == "control", covariates=covariates)


SUBJECTS = [
    subject("control", male=1, income=10),
    subject("control", male=0, income=30),
    subject("control", male=0, income=20),
    subject("bridging", male=1, income=40),
    subject("bridging", male=1, income=None),
    subject("news", male=0, income=60),
    subject("news", male=1, income=50),
    subject("news", male=0, income=70),
]


def row(rows: list[balance.BalanceRow], covariate: str, group: str) -> balance.BalanceRow:
    return next(r for r in rows if r.covariate == covariate and r.group == group)


def test_balance_compares_control_with_pooled_treatment_by_hand() -> None:
    rows = balance.balance_rows(SUBJECTS, ["income"])
    income = row(rows, "income", balance.TREATMENT)
    # control 10, 30, 20: mean 20, variance ((-10)^2 + 10^2 + 0) / 2 = 100, sd 10
    # treated 40, 60, 50, 70 (one missing): mean 55, variance (225 + 25 + 25 + 225) / 3 = 500 / 3
    assert (income.control_n, income.group_n) == (3, 4)
    assert income.control_mean == pytest.approx(20)
    assert income.control_sd == pytest.approx(10)
    assert income.group_mean == pytest.approx(55)
    assert income.group_sd == pytest.approx(math.sqrt(500 / 3))
    assert income.difference == pytest.approx(35)
    assert income.std_difference == pytest.approx(35 / math.sqrt((100 + 500 / 3) / 2))
    # Welch: standard error sqrt(100/3 + (500/3)/4) = sqrt(75); Welch-Satterthwaite df = 75^2 / (a^2/2 + b^2/3)
    a, b = 100 / 3, 500 / 12
    t, df = 35 / math.sqrt(75), 75**2 / (a**2 / 2 + b**2 / 3)
    assert df == pytest.approx(4.959, abs=1e-3)
    assert income.p_value == pytest.approx(2 * stats.t.sf(t, df))
    assert income.p_value == pytest.approx(0.01008, abs=1e-5)


def test_balance_has_a_row_per_arm_against_control_and_handles_a_single_value() -> None:
    rows = balance.balance_rows(SUBJECTS, ["male", "income"])
    assert {(r.covariate, r.group) for r in rows} == {
        (c, g) for c in ("male", "income") for g in (balance.TREATMENT, "bridging", "news")
    }
    bridging_male = row(rows, "male", "bridging")
    assert bridging_male.group_mean == 1.0
    assert bridging_male.control_mean == pytest.approx(1 / 3)
    assert bridging_male.difference == pytest.approx(2 / 3)
    # control sd sqrt(1/3), bridging sd 0: standardized by sqrt((1/3 + 0) / 2)
    assert bridging_male.std_difference == pytest.approx((2 / 3) / math.sqrt(1 / 6))
    bridging_income = row(rows, "income", "bridging")
    assert bridging_income.group_n == 1
    assert bridging_income.group_sd is None
    assert bridging_income.std_difference is None
    assert bridging_income.p_value is None


def test_identical_groups_show_no_difference_and_no_p_value_without_variance() -> None:
    same = [subject("control", x=1), subject("control", x=1), subject("a", x=1), subject("a", x=1)]
    (only, _) = balance.balance_rows(same, ["x"])
    assert only.difference == 0
    assert only.std_difference is None
    assert only.p_value is None


def test_retention_counts_each_day_those_included_and_not_yet_gone() -> None:
    stays = [
        balance.Stay("control", D(2024, 7, 1), None),
        balance.Stay("control", D(2024, 7, 2), D(2024, 7, 3)),
        balance.Stay("news", D(2024, 7, 1), D(2024, 7, 2)),
        balance.Stay("news", D(2024, 7, 3), None),
    ]
    points = balance.retention_curve(stays, D(2024, 7, 1), D(2024, 7, 3))
    by_key = {(p.arm, p.day): (p.present, p.ever_included) for p in points}
    assert by_key == {
        ("control", D(2024, 7, 1)): (1, 2),
        ("control", D(2024, 7, 2)): (2, 2),
        ("control", D(2024, 7, 3)): (1, 2),
        ("news", D(2024, 7, 1)): (1, 2),
        ("news", D(2024, 7, 2)): (0, 2),
        ("news", D(2024, 7, 3)): (1, 2),
    }
    assert next(p for p in points if p.arm == "control" and p.day == D(2024, 7, 2)).share == 1.0


def test_someone_leaves_on_withdrawal_or_when_the_last_install_is_removed() -> None:
    assert balance.left_on(None, D(2024, 8, 1), installs_left=0) == D(2024, 8, 1)
    assert balance.left_on(None, D(2024, 8, 1), installs_left=1) is None
    assert balance.left_on(D(2024, 7, 20), D(2024, 8, 1), installs_left=0) == D(2024, 7, 20)
    assert balance.left_on(None, None, installs_left=0) is None


def test_consort_flow_lists_every_wave_under_every_arm() -> None:
    arms = [ConsortRow("Control", "control", 10, 8, 6, 1), ConsortRow("News", "news", 9, 9, 7, 0)]
    waves = [("Baseline", "Control", 6, 6), ("Midline", "Control", 6, 4), ("Baseline", "News", 7, 7)]
    control, news = balance.consort_flow(arms, waves)
    assert (control.assigned, control.installed, control.included, control.withdrawn) == (10, 8, 6, 1)
    assert [(w.wave, w.invited, w.completed) for w in control.waves] == [("Baseline", 6, 6), ("Midline", 6, 4)]
    assert [(w.wave, w.invited, w.completed) for w in news.waves] == [("Baseline", 7, 7), ("Midline", 0, 0)]


@pytest.mark.django_db
def test_stays_read_inclusion_withdrawal_and_uninstalls_in_local_days(study: Study) -> None:
    control, news = study.arms.get(is_control=True), study.arms.exclude(is_control=True).first()
    assert news is not None
    at = dt.datetime(2024, 7, 1, 14, tzinfo=dt.UTC)  # 10:00 in New York
    stayed = ParticipantFactory(study=study, included_at=at)
    withdrew = ParticipantFactory(study=study, included_at=at, withdrawn_at=at + dt.timedelta(days=5))
    uninstalled = ParticipantFactory(study=study, included_at=at)
    ParticipantFactory(study=study)  # never included: not in the curve
    ParticipantFactory(study=study, included_at=at, is_test=True)
    for i, (person, arm) in enumerate(((stayed, control), (withdrew, news), (uninstalled, news))):
        Assignment.objects.create(participant=person, arm=arm, stratum="s", position=i)
    ExtensionInstall.objects.create(
        participant=uninstalled, install_key="a", token_hash="h1", uninstalled_at=at + dt.timedelta(days=9)
    )
    ExtensionInstall.objects.create(participant=stayed, install_key="b", token_hash="h2")
    got = sorted(balance.stays(study), key=lambda s: (s.arm, s.left_on or D(9999, 1, 1)))
    assert got == [
        balance.Stay(control.name, D(2024, 7, 1), None),
        balance.Stay(news.name, D(2024, 7, 1), D(2024, 7, 6)),
        balance.Stay(news.name, D(2024, 7, 1), D(2024, 7, 10)),
    ]
